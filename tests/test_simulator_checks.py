"""The checks on each simulated-user turn: what breaks down, and what ordinary customers say."""

from __future__ import annotations

import pytest

from prompttracker import interlocutor, simulator_checks
from prompttracker.messages import Message
from prompttracker.simulator_checks import CHECKS, SimulatorProblem, check_user_turn


def conversation(*contents: str) -> list[Message]:
    """User and assistant messages in turn, starting with the user, numbered as turns."""
    roles = ("user", "assistant")
    return [
        Message(role=roles[i % 2], content=content, turn=i // 2 + 1)  # type: ignore[arg-type]
        for i, content in enumerate(contents)
    ]


def problem(text: str, history: list[Message] | None = None, turn: int = 3) -> SimulatorProblem:
    found = check_user_turn(text, turn, history or [])
    assert found is not None, f"no problem found in {text!r}"
    assert found.turn == turn
    assert found.check in CHECKS
    return found


def assert_fine(text: str, history: list[Message] | None = None) -> None:
    assert check_user_turn(text, 3, history or []) is None


ORDER = conversation(
    "Hi, I want a refund for order 123",
    "I'm sorry to hear that. Could you tell me why you'd like a refund?",
)


def test_checks_are_named_and_described() -> None:
    assert list(CHECKS) == ["cut", "empty", "repeats", "echoes", "as_assistant", "protocol_leak"]
    assert all(description for description in CHECKS.values())


@pytest.mark.parametrize("text", ["][", "...", "{ }", "?!"])
def test_a_message_with_nothing_in_it_counts_as_empty(text: str) -> None:
    found = check_user_turn(text, 1, [])
    assert found is not None and found.check == "empty"
    assert "(no letters, digits or emoji: it says nothing)" in found.detail


@pytest.mark.parametrize("text", ["👍", "ok", "5", "¿Sí?"])
def test_a_short_answer_that_says_something_is_fine(text: str) -> None:
    assert check_user_turn(text, 2, []) is None


def test_an_answer_cut_at_the_token_cap_is_reported_first() -> None:
    found = check_user_turn("I would like to know when my", 2, [], cut=True)
    assert found is not None and found.check == "cut"
    assert found.describe() == (
        "the simulated user was cut off at turn 2: 'I would like to know when my' (its answer "
        "hit the token cap: raise the interlocutor setting's max_tokens)"
    )
    assert check_user_turn("I would like to know when my refund arrives", 2, []) is None


def test_describe_names_the_turn_and_quotes_the_text() -> None:
    history = conversation("I want a refund for order 123", "Which order was that?")
    found = problem("I want a refund for order 123", history)
    assert found.describe() == (
        "the simulated user repeated itself at turn 3: "
        "'I want a refund for order 123' (also its turn 1 message)"
    )


# empty


@pytest.mark.parametrize("text", ["", "   ", "\n\t \n", "\u200b\u200b"])
def test_empty_message(text: str) -> None:
    found = problem(text, ORDER)
    assert found.check == "empty"
    assert "empty" in found.detail or "whitespace" in found.detail
    assert found.describe().startswith("the simulated user wrote nothing at turn 3")


def test_empty_wins_over_everything() -> None:
    history = conversation("", "Hello?")
    assert problem("", history).check == "empty"


# repeats


def test_repeats_an_earlier_message_word_for_word() -> None:
    found = problem("Hi, I want a refund for order 123", ORDER)
    assert found.check == "repeats"
    assert "'Hi, I want a refund for order 123'" in found.detail
    assert "turn 1" in found.detail


def test_repeats_after_normalising() -> None:
    found = problem("  hi, i want a REFUND \n  for order 123!!! ", ORDER)
    assert found.check == "repeats"
    assert "refund" in found.describe().casefold()


def test_repeats_near_identically() -> None:
    history = conversation(
        "The package arrived damaged and I want my money back.",
        "I'm sorry. Do you have a photo of the damage?",
    )
    found = problem("The package arrived damaged, and I want my money back", history)
    assert found.check == "repeats"
    assert "nearly its turn 1 message" in found.detail


def test_repeats_an_older_message_not_only_the_last() -> None:
    history = conversation(
        "My internet keeps dropping every evening",
        "Have you tried restarting the router?",
        "Yes, twice already.",
        "Okay. Which model is it?",
    )
    found = problem("My internet keeps dropping every evening", history, turn=3)
    assert found.check == "repeats"
    assert "turn 1" in found.detail


@pytest.mark.parametrize("text", ["ok", "Thanks!", "yes", "No."])
def test_short_messages_may_come_twice(text: str) -> None:
    history = conversation(text, "Anything else?", text, "Sure, anything else?")
    assert_fine(text, history)


def test_a_corrected_number_is_not_a_repeat() -> None:
    history = conversation("My order number is 12345", "I can't find order 12345.")
    assert_fine("My order number is 12354", history)


def test_an_assistant_line_is_not_the_user_repeating_itself() -> None:
    history = conversation("Hello", "I want a refund for order 123")
    assert problem("I want a refund for order 123", history, turn=2).check == "echoes"


# echoes


def test_echoes_the_assistants_last_message() -> None:
    found = problem(ORDER[1].content, ORDER, turn=2)
    assert found.check == "echoes"
    assert "Could you tell me why" in found.detail
    assert "(also the assistant's turn 1 message)" in found.detail
    assert found.describe().startswith("the simulated user echoed the assistant at turn 2")


def test_echoes_the_assistant_near_identically() -> None:
    history = conversation("Hello", "Could you confirm the email address on your account?")
    found = problem("could you confirm the e-mail address on your account", history, turn=2)
    assert found.check == "echoes"
    assert "(nearly the assistant's turn 1 message)" in found.detail


def test_echoes_a_sentence_copied_from_the_assistant() -> None:
    history = conversation(
        "My laptop won't turn on",
        "Let's check a few things. Please hold the power button for 30 seconds, "
        "then plug in the charger and wait for the light.",
    )
    found = problem("Please hold the power button for 30 seconds.", history, turn=2)
    assert found.check == "echoes"
    assert "copied from" in found.detail
    assert "'Please hold the power button for 30 seconds.'" in found.detail


def test_echoes_the_assistant_with_a_few_words_added() -> None:
    history = conversation(
        "Where is my parcel?",
        "Your parcel is at the local depot and will be delivered tomorrow morning.",
    )
    found = problem(
        "Okay: your parcel is at the local depot and will be delivered tomorrow morning.",
        history,
        turn=2,
    )
    assert found.check == "echoes"
    assert "mostly" in found.detail


def test_quoting_what_the_assistant_said_is_not_an_echo() -> None:
    history = conversation(
        "Where is my order?",
        "Your order #A-99812 has shipped and will arrive on Tuesday.",
    )
    assert_fine("When on Tuesday will order #A-99812 arrive? I work until 5.", history)


def test_answering_the_assistants_question_is_not_an_echo() -> None:
    history = conversation("I want to return a jacket", "Sure! What's your order number?")
    assert_fine("yes, 12345", history)
    assert_fine("It's 12345", history)


def test_a_short_goodbye_after_a_closing_is_not_an_echo() -> None:
    history = conversation("Got it, thanks", "Thanks, bye!")
    assert_fine("Thanks, bye", history)
    history = conversation("That's all", "You're welcome! Have a great day.")
    assert_fine("Thanks, bye", history)


def test_only_the_assistants_messages_are_echoed() -> None:
    history = [Message(role="system", content="Please describe your problem in detail.", turn=0)]
    assert_fine("Please describe your problem in detail.", history)


# as_assistant


@pytest.mark.parametrize(
    "text",
    [
        "Assistant: Sure, I can look into that for you.",
        "**AI:** Here is what I found.",
        "bot: your refund is on its way",
        "Agent : Let me check that order.",
    ],
)
def test_answers_with_the_assistants_role_label(text: str) -> None:
    found = problem(text, ORDER)
    assert found.check == "as_assistant"
    assert text.split(":")[0].strip() in found.detail
    assert "role label" in found.detail


@pytest.mark.parametrize(
    "text",
    [
        "Hello! How can I help you today?",
        "Thank you for reaching out. How may I assist you?",
        "Your refund has been processed. Is there anything else I can help you with?",
        "As an AI, I don't have access to your order history.",
        "As an AI language model I cannot process payments.",
        "I'm an AI assistant, so I can't see your account.",
        "I am just an AI language model.",
        "Don't worry, I’m here to help you with the refund.",
    ],
)
def test_answers_with_an_assistants_line(text: str) -> None:
    found = problem(text, ORDER)
    assert found.check == "as_assistant"
    assert "a line the assistant would say" in found.detail
    assert text[:20] in found.detail


@pytest.mark.parametrize(
    "text",
    [
        "Can you help me with my order?",
        "I need help with a refund",
        "Can you assist me with changing my address?",
        "How can I get help with my bill?",
        "As an AI researcher I'd like an invoice for the API credits.",
        "I am an AI engineer and the SDK keeps timing out.",
        "I'm here to pick up my order, where's the counter?",
        "Is there anything else I should send you?",
        "I spoke to an agent yesterday and nothing happened.",
        "Agents never call back.",
    ],
)
def test_customer_messages_are_not_the_assistant(text: str) -> None:
    assert_fine(text, ORDER)


# protocol_leak


@pytest.mark.parametrize("text", ["User: I want my money back", "**Customer:** hi", "USER: hello"])
def test_leaks_its_own_role_label(text: str) -> None:
    found = problem(text, ORDER)
    assert found.check == "protocol_leak"
    assert "role label" in found.detail
    assert text[:8] in found.detail


@pytest.mark.parametrize(
    "text",
    [
        "Great, that's all I needed. END_CONVERSATION",
        "Thanks! [END",
        "Bye [end conversation]",
        "Thank you (END CONVERSATION)",
    ],
)
def test_leaks_the_end_marker(text: str) -> None:
    found = problem(text, ORDER)
    assert found.check == "protocol_leak"
    assert "end marker" in found.detail
    assert text in found.detail


@pytest.mark.parametrize(
    "text",
    [
        '{"message": "I want a refund", "stop": false, "reason": ""}',
        'Here you go: "message": "I want a refund"',
        '{"stop": true}',
        '{"text": "I want a refund"}',
    ],
)
def test_leaks_the_answer_json(text: str) -> None:
    found = problem(text, ORDER)
    assert found.check == "protocol_leak"
    assert "JSON" in found.detail
    assert "refund" in found.detail or "stop" in found.detail


@pytest.mark.parametrize(
    "text",
    [
        "As a simulated user, I would now ask about shipping.",
        "(Staying in character) I still want my refund.",
        "Let's continue the role-play: I'm annoyed now.",
        "My persona is a busy nurse, so please be quick.",
        "My goal is to test the assistant's refund policy.",
        "I'm testing the assistant to see if it refunds.",
        "As the user I would say thanks.",
        "(The conversation has not started yet. Hi, I need a refund.",
        "Your character and goal: a customer who wants a refund",
        "Sorry, I broke character there. Where is my refund?",
    ],
)
def test_leaks_talk_about_the_role_play(text: str) -> None:
    found = problem(text, ORDER)
    assert found.check == "protocol_leak"
    assert "role-play" in found.detail
    assert found.describe().startswith("the simulated user leaked the test protocol at turn 3")


@pytest.mark.parametrize(
    "text",
    [
        "My character got deleted after the update, can you restore it?",
        "There's a typo in character names on my invoice.",
        "My goal is to test whether the router works after the reset.",
        "Can you end the conversation with my old account manager's email?",
        "The message says: payment declined. What does that mean?",
        "Stop the subscription please: I don't use it.",
        "My user name is jdoe and I can't log in.",
        "I'd like to play a role in your beta program.",
    ],
)
def test_customer_messages_do_not_leak(text: str) -> None:
    assert_fine(text, ORDER)


def test_copies_of_the_interlocutor_texts_still_match() -> None:
    assert interlocutor.OPENING.startswith(simulator_checks._OPENING_START)
    assert simulator_checks._INSTRUCTIONS_HEADING in interlocutor.INSTRUCTIONS
    assert check_user_turn(interlocutor.OPENING, 1, []) is not None
    assert check_user_turn(f"Bye {interlocutor.END_MARKER}", 2, ORDER) is not None


# order, quoting and size


def test_repeats_wins_over_a_leak() -> None:
    history = conversation("User: I want a refund for order 123", "Which order?")
    found = problem("User: I want a refund for order 123", history)
    assert found.check == "repeats"


def test_as_assistant_wins_over_a_leak() -> None:
    assert problem("Assistant: How can I help you? [END", ORDER).check == "as_assistant"


def test_long_text_is_quoted_shortly_around_the_problem() -> None:
    text = "I have been waiting for weeks. " * 20 + "As an AI, I know this. " + "More. " * 30
    found = problem(text, ORDER)
    quote = found.detail.split("' (")[0]
    assert "As an AI, I" in quote
    assert quote.startswith("'…") and quote.endswith("…")
    assert len(quote) <= 90
    assert "\n" not in problem("Line one\nAssistant: as an AI, I\n\nline", ORDER).detail


def test_ordinary_conversation_passes() -> None:
    history = conversation(
        "Hi, I ordered a blue kettle last week and it hasn't arrived.",
        "I'm sorry about that! Could you share your order number?",
        "Sure, it's 55821.",
        "Thanks. Order 55821 is delayed at the depot; it should arrive Friday.",
    )
    assert_fine("Friday is fine. Can I get a discount for the delay?", history)
    assert_fine("ok", history)


def test_huge_messages_and_history_are_checked() -> None:
    megabyte = "please refund my order now " * 40_000
    history = conversation(megabyte, megabyte[::-1], "x" * 1_000_000, "y " * 500_000)
    # Returns (quadratic matching would not); no timing asserted.
    assert problem(megabyte + "!", history).check == "repeats"
    check_user_turn("z" * 1_000_000, 3, history)
    check_user_turn("( " * 500_000, 3, history)
    check_user_turn("§" * 1_000_000, 3, history)
    check_user_turn(" " * 999_999 + "as an ai" + " " * 1_000_000, 3, history)
