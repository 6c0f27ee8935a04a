"""The one loop: max_turns, the end marker, API errors mid-conversation."""

from __future__ import annotations

import pytest

from prompttracker.config.models import ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.conversation import simulate
from prompttracker.errors import LLMCallError
from prompttracker.interlocutor import flip_roles, split_end_marker
from prompttracker.llm.base import Session, SessionOptions
from prompttracker.messages import AssistantTurn, Message, Usage


class ScriptedSession(Session):
    """Answers from a script; raises LLMCallError where the script says so."""

    conversation_mode = "scripted"

    def __init__(self, replies: list[str | Exception]) -> None:
        super().__init__(ModelConfig(provider="mock", model="m"), Settings(), SessionOptions())
        self.replies = list(replies)
        self.received: list[str] = []

    async def _send(self, user_message: str) -> AssistantTurn:
        self.received.append(user_message)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        n = len(self.received)
        return AssistantTurn(
            content=reply, response_id=f"r{n}", usage=Usage(input_tokens=10, output_tokens=n)
        )


class ScriptedUser:
    def __init__(self, lines: list[str]) -> None:
        self.lines = list(lines)
        self.seen: list[list[Message]] = []

    async def reply(self, messages: list[Message]) -> tuple[str, bool]:
        self.seen.append(list(messages))
        return split_end_marker(self.lines.pop(0))


async def test_plays_until_max_turns():
    session = ScriptedSession(["a1", "a2", "a3"])
    user = ScriptedUser(["u2", "u3", "never used"])
    result = await simulate(session, user, "u1", max_turns=3)
    assert session.received == ["u1", "u2", "u3"]
    assert [m.role for m in result.messages] == ["user", "assistant"] * 3
    assert [m.turn for m in result.messages] == [1, 1, 2, 2, 3, 3]
    assert result.turn_count == 3
    assert result.stop_reason == "max_turns"
    assert result.completed and result.error is None
    assert result.response_ids == ("r1", "r2", "r3")
    assert result.usage == Usage(input_tokens=30, output_tokens=6)
    assert result.conversation_mode == "scripted"
    # the interlocutor is not asked after the last turn
    assert len(user.seen) == 2


async def test_end_marker_keeps_text_before_it_and_never_reaches_the_assistant():
    session = ScriptedSession(["a1", "a2"])
    user = ScriptedUser(["u2", "Thanks, bye! [END_CONVERSATION] ignored"])
    result = await simulate(session, user, "u1", max_turns=5)
    assert result.stop_reason == "interlocutor_ended"
    assert session.received == ["u1", "u2"]
    assert result.messages[-1] == Message(role="user", content="Thanks, bye!", turn=3)
    assert result.turn_count == 2
    assert all("[END_CONVERSATION]" not in m.content for m in result.messages)


async def test_bare_end_marker_adds_no_message():
    result = await simulate(
        ScriptedSession(["a1"]), ScriptedUser(["[END_CONVERSATION]"]), "u1", max_turns=5
    )
    assert result.stop_reason == "interlocutor_ended"
    assert [m.content for m in result.messages] == ["u1", "a1"]


async def test_api_error_mid_conversation_keeps_finished_turns():
    session = ScriptedSession(["a1", LLMCallError("openai: 500 server error")])
    result = await simulate(session, ScriptedUser(["u2"]), "u1", max_turns=5)
    assert result.stop_reason == "error"
    assert not result.completed
    assert result.error == "prompt under test: openai: 500 server error"
    assert [m.content for m in result.messages] == ["u1", "a1", "u2"]
    assert result.turn_count == 1


async def test_blank_first_message_lets_the_interlocutor_open():
    user = ScriptedUser(["Hello, I was charged twice", "[END_CONVERSATION]"])
    session = ScriptedSession(["Sorry to hear that"])
    result = await simulate(session, user, "  ", max_turns=3)
    assert session.received == ["Hello, I was charged twice"]
    assert user.seen[0] == []
    assert result.turn_count == 1


async def test_single_turn_without_interlocutor():
    session = ScriptedSession(["only answer", "unused"])
    result = await simulate(session, None, "question", max_turns=5)
    assert result.stop_reason == "single_turn"
    assert result.turn_count == 1
    assert result.final_response == "only answer"


async def test_blank_first_message_without_interlocutor_is_an_error():
    result = await simulate(ScriptedSession([]), None, "", max_turns=1)
    assert result.stop_reason == "error"
    assert "empty" in (result.error or "")


def test_flip_roles_swaps_user_and_assistant():
    flipped = flip_roles(
        [
            Message(role="user", content="hi", turn=1),
            Message(role="assistant", content="yo", turn=1),
        ]
    )
    assert [(m.role, m.content) for m in flipped] == [("assistant", "hi"), ("user", "yo")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", ("plain", False)),
        ("bye [END_CONVERSATION]", ("bye", True)),
        ("[END_CONVERSATION]", ("", True)),
        ("  spaced  ", ("spaced", False)),
    ],
)
def test_split_end_marker(text, expected):
    assert split_end_marker(text) == expected


async def test_an_empty_simulated_user_message_ends_the_conversation_invalid() -> None:
    session = ScriptedSession(["Hello, how can I help?", "never sent"])
    result = await simulate(session, ScriptedUser(["   "]), "Hi", max_turns=3)

    assert session.received == ["Hi"]  # the empty turn never reached the assistant
    assert (result.stop_reason, result.error) == ("simulated_user_invalid", None)
    assert result.invalid == "the simulated user wrote nothing at turn 2: its message was empty"
    assert result.metadata["invalid"]["check"] == "empty"
    assert [m.role for m in result.messages] == ["user", "assistant"]  # nothing empty is kept


async def test_an_empty_opening_by_the_simulated_user_is_invalid_too() -> None:
    session = ScriptedSession(["never sent"])
    result = await simulate(session, ScriptedUser([""]), "", max_turns=3)

    assert session.received == []
    assert (result.stop_reason, result.messages) == ("simulated_user_invalid", ())
    assert result.invalid is not None and "at turn 1" in result.invalid


async def test_a_simulated_user_that_repeats_itself_is_stopped_before_the_assistant_sees_it():
    session = ScriptedSession(["Let me check.", "Found it.", "never sent"])
    line = "My order 12345 arrived broken, I want a refund"
    result = await simulate(session, ScriptedUser([line, line]), "Hi there", max_turns=5)

    assert session.received == ["Hi there", line]
    assert result.stop_reason == "simulated_user_invalid"
    assert result.metadata["invalid"] == {
        "by": "simulator checks",
        "check": "repeats",
        "turn": 3,
        "reason": result.invalid,
    }
    assert result.invalid and result.invalid.startswith(
        "the simulated user repeated itself at turn 3"
    )
    # What it wrote is kept as its last word, for the transcript, and never sent.
    assert (result.messages[-1].role, result.messages[-1].content, result.turn_count) == (
        "user",
        line,
        2,
    )


async def test_the_first_message_from_the_dataset_is_not_checked() -> None:
    """The row's own opening is the person's text, not the simulator's."""
    session = ScriptedSession(["a1"])
    result = await simulate(session, None, "Assistant: how can I help you?", max_turns=1)
    assert (result.stop_reason, result.invalid) == ("single_turn", None)
