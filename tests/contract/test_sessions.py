"""Our sessions, judges and simulated user, through the real SDK, against the official spec.

Prism checks every request; the ``prism`` fixture fails a test on any request it rejected.
Prism answers with the spec's examples; where an example cannot drive our code, the test
reshapes that answer (never the request) and says why.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from prompttracker.config.models import ModelConfig
from prompttracker.conversation import simulate
from prompttracker.errors import LLMCallError
from prompttracker.evaluators.judges import JUDGE_SCHEMA, ask_judge
from prompttracker.interlocutor import LLMInterlocutor
from prompttracker.llm.base import SessionOptions
from prompttracker.llm.openai_assistants import AssistantsSession
from prompttracker.llm.router import open_session
from prompttracker.messages import Message
from tests.contract.prism import PrismServer, Reshaper

pytestmark = pytest.mark.contract

HISTORY = (
    Message(role="user", content="Where is my order #12345?", turn=1),
    Message(role="assistant", content="It shipped yesterday.", turn=1),
)
LOOKUP_ORDER = {
    "name": "lookup_order",
    "description": "Look up an order by its number",
    "parameters": {
        "type": "object",
        "properties": {"order_id": {"type": "string"}},
        "required": ["order_id"],
    },
}
ORDER_STATUS = {"status": "charged_twice"}


def chat_config(**fields: Any) -> ModelConfig:
    return ModelConfig(provider="openai", api="chat_completions", model="gpt-4o-mini", **fields)


def responses_config(**fields: Any) -> ModelConfig:
    return ModelConfig(provider="openai", api="responses", model="gpt-4.1-mini", **fields)


# --- reshaping Prism's answers -----------------------------------------------------------------


def chat_text(content: str) -> Reshaper:
    """A chat completion that answers in text.

    Prism's example fills every optional field, so its completion always asks for tool calls
    (and carries a refusal): no text turn could ever end. A real text answer has neither.
    """

    def reshape(request: Any, answer: Any) -> Any:
        choice = answer["choices"][0]
        choice["message"].update(content=content, refusal=None)
        choice["message"].pop("tool_calls", None)
        choice["message"].pop("function_call", None)
        choice["finish_reason"] = "stop"
        return answer

    return reshape


def chat_function_round(arguments: dict[str, Any], then: str) -> Reshaper:
    """First a call of ``lookup_order``; once the request carries its answer, text."""
    text = chat_text(then)

    def reshape(request: Any, answer: Any) -> Any:
        if any(message["role"] == "tool" for message in request["messages"]):
            return text(request, answer)
        call = {
            "id": "call_lookup_1",
            "type": "function",
            "function": {"name": "lookup_order", "arguments": json.dumps(arguments)},
        }
        choice = answer["choices"][0]
        choice["message"].update(content=None, refusal=None, tool_calls=[call])
        choice["message"].pop("function_call", None)
        choice["finish_reason"] = "tool_calls"
        return answer

    return reshape


def responses_function_round(arguments: dict[str, Any]) -> Reshaper:
    """First a ``function_call`` item; once the request carries its output, Prism's example.

    Prism's example response holds one text message, so the function round trip (the
    ``function_call_output`` request) would never be sent without this.
    """

    def reshape(request: Any, answer: Any) -> Any:
        items = request.get("input")
        if isinstance(items, list) and any(
            isinstance(item, dict) and item.get("type") == "function_call_output" for item in items
        ):
            return answer
        answer["id"] = "resp_function_round"
        answer["output"] = [
            {
                "type": "function_call",
                "id": "fc_lookup_1",
                "call_id": "call_lookup_1",
                "name": "lookup_order",
                "arguments": json.dumps(arguments),
                "status": "completed",
            }
        ]
        return answer

    return reshape


def responses_text(text: str) -> Reshaper:
    """Prism's example response with its one text part replaced by ``text``."""

    def reshape(request: Any, answer: Any) -> Any:
        answer["output"][0]["content"][0]["text"] = text
        return answer

    return reshape


def as_value(output: Any) -> Any:
    """A function's output as recorded: some routes keep the JSON text, some the value."""
    return json.loads(output) if isinstance(output, str) else output


def example_text(answer: dict[str, Any]) -> str:
    """The text of Prism's example response (the spec's own)."""
    return str(answer["output"][0]["content"][0]["text"])


# --- Chat Completions ---------------------------------------------------------------------------


# Prism is not OpenAI's own host, so the cap goes out as max_tokens unless the settings say
# otherwise (Settings.max_tokens_param): the spec accepts both names.
@pytest.mark.parametrize("cap", ["max_tokens", "max_completion_tokens"])
async def test_chat_completions_turns(prism: PrismServer, cap: str) -> None:
    prism.reshape("POST", "/chat/completions", chat_text("Refunds take 5 days."))
    config = chat_config(temperature=0.3, top_p=1, max_tokens=200)
    options = SessionOptions(system_prompt="You are a support agent.", history=HISTORY)
    settings = prism.settings() if cap == "max_tokens" else prism.settings(max_tokens_param=cap)
    session = open_session(config, settings, options)
    try:
        first = await prism.expect_ok(session.send("I was charged twice."))
        await prism.expect_ok(session.send("When do I get the money back?"))
    finally:
        await session.aclose()

    assert first.content == "Refunds take 5 days."
    sent = [call.body for call in prism.calls("POST", "/chat/completions")]
    assert len(sent) == 2
    assert [m["role"] for m in sent[1]["messages"]] == [
        "system",
        *("user", "assistant"),  # the history
        *("user", "assistant"),  # turn 1
        "user",
    ]
    assert sent[0][cap] == 200
    assert not {"max_tokens", "max_completion_tokens"} - {cap} & set(sent[0])
    assert sent[0]["temperature"] == 0.3
    prism.assert_all_accepted()


async def test_chat_completions_function_round(prism: PrismServer) -> None:
    prism.reshape(
        "POST", "/chat/completions", chat_function_round({"order_id": "12345"}, "Refunded.")
    )
    config = chat_config(tool_config={"functions": [LOOKUP_ORDER]})
    options = SessionOptions(
        system_prompt="Look orders up.", function_outputs={"lookup_order": ORDER_STATUS}
    )
    session = open_session(config, prism.settings(), options)
    try:
        turn = await prism.expect_ok(session.send("Order #12345 was charged twice."))
    finally:
        await session.aclose()

    assert turn.content == "Refunded."
    assert [(c.name, c.arguments, as_value(c.output)) for c in turn.tool_calls] == [
        ("lookup_order", {"order_id": "12345"}, ORDER_STATUS)
    ]
    first, second = (call.body for call in prism.calls("POST", "/chat/completions"))
    assert first["tools"] == [{"type": "function", "function": LOOKUP_ORDER}]
    call_message, tool_message = second["messages"][-2:]
    assert call_message["tool_calls"][0]["id"] == "call_lookup_1"
    assert tool_message == {
        "role": "tool",
        "tool_call_id": "call_lookup_1",
        "content": json.dumps(ORDER_STATUS),
    }
    prism.assert_all_accepted()


# --- Responses ----------------------------------------------------------------------------------


async def test_responses_turns(prism: PrismServer) -> None:
    config = responses_config(temperature=0.2, max_tokens=300)
    options = SessionOptions(system_prompt="You are a support agent.", history=HISTORY)
    session = open_session(config, prism.settings(), options)
    try:
        first = await prism.expect_ok(session.send("I was charged twice."))
        await prism.expect_ok(session.send("When do I get the money back?"))
    finally:
        await session.aclose()

    calls = prism.calls("POST", "/responses")
    assert len(calls) == 2
    assert first.content == example_text(calls[0].answer)
    assert first.response_id == calls[0].answer["id"]
    assert calls[0].body["instructions"] == "You are a support agent."
    assert calls[0].body["max_output_tokens"] == 300
    assert len(calls[0].body["input"]) == 3  # the history, then the message
    # Turn 2 chains on turn 1 and resends the instructions: the API does not carry them over.
    assert calls[1].body["previous_response_id"] == first.response_id
    assert calls[1].body["instructions"] == "You are a support agent."
    prism.assert_all_accepted()


async def test_stateless_responses_send_the_whole_conversation_unstored(
    prism: PrismServer,
) -> None:
    config = responses_config(conversation_state="stateless")
    options = SessionOptions(system_prompt="You are a support agent.", history=HISTORY)
    session = open_session(config, prism.settings(), options)
    try:
        first = await prism.expect_ok(session.send("I was charged twice."))
        await prism.expect_ok(session.send("When do I get the money back?"))
    finally:
        await session.aclose()

    calls = prism.calls("POST", "/responses")
    assert [c.body["store"] for c in calls] == [False, False]
    assert all("previous_response_id" not in c.body for c in calls)
    assert len(calls[1].body["input"]) == 3 + 2  # history, turn 1 (both sides), the message
    assert calls[1].body["input"][3] == {
        "type": "message",
        "role": "assistant",
        "content": first.content,
    }
    prism.assert_all_accepted()


async def test_responses_function_round(prism: PrismServer) -> None:
    prism.reshape("POST", "/responses", responses_function_round({"order_id": "12345"}))
    config = responses_config(tool_config={"functions": [LOOKUP_ORDER]})
    options = SessionOptions(
        system_prompt="Look orders up.", function_outputs={"lookup_order": ORDER_STATUS}
    )
    session = open_session(config, prism.settings(), options)
    try:
        turn = await prism.expect_ok(session.send("Order #12345 was charged twice."))
    finally:
        await session.aclose()

    first, second = prism.calls("POST", "/responses")
    assert turn.content == example_text(second.answer)
    assert [(c.name, c.arguments, as_value(c.output)) for c in turn.tool_calls] == [
        ("lookup_order", {"order_id": "12345"}, ORDER_STATUS)
    ]
    assert first.body["tools"] == [{"type": "function", **LOOKUP_ORDER, "strict": False}]
    assert second.body["previous_response_id"] == "resp_function_round"
    assert second.body["input"] == [
        {
            "type": "function_call_output",
            "call_id": "call_lookup_1",
            "output": json.dumps(ORDER_STATUS),
        }
    ]
    prism.assert_all_accepted()


async def test_responses_hosted_tools(prism: PrismServer) -> None:
    config = responses_config(
        tools=["file_search", "web_search", "code_interpreter"],
        tool_config={
            "file_search": {"vector_store_ids": ["vs_abc123"], "max_num_results": 5},
            "web_search": {"search_context_size": "medium"},
            "code_interpreter": {"memory_limit": "4g"},
        },
    )
    session = open_session(config, prism.settings(), SessionOptions(system_prompt="Research."))
    try:
        await prism.expect_ok(session.send("What does our refund policy say?"))
    finally:
        await session.aclose()

    (call,) = prism.calls("POST", "/responses")
    assert [tool["type"] for tool in call.body["tools"]] == [
        "file_search",
        "web_search",
        "code_interpreter",
    ]
    assert call.body["include"] == [
        "file_search_call.results",
        "web_search_call.action.sources",
        "code_interpreter_call.outputs",
    ]
    prism.assert_all_accepted()


async def test_responses_on_a_conversation(prism: PrismServer) -> None:
    config = responses_config(conversation_state="conversation")
    session = open_session(config, prism.settings(), SessionOptions(system_prompt="Be brief."))
    try:
        await prism.expect_ok(session.send("Hello"))
        await prism.expect_ok(session.send("Are you there?"))
    finally:
        await session.aclose()

    (created,) = prism.calls("POST", "/conversations")
    turns = prism.calls("POST", "/responses")
    assert [call.body["conversation"] for call in turns] == [created.answer["id"]] * 2
    assert all("previous_response_id" not in call.body for call in turns)
    prism.assert_all_accepted()


# --- one-shot calls: the judges and the simulated user --------------------------------------------


@pytest.mark.parametrize("api", ["chat_completions", "responses"])
async def test_judge_structured_output(prism: PrismServer, api: str) -> None:
    verdict = json.dumps({"feedback": "Kind and correct.", "score": 90})
    if api == "chat_completions":
        prism.reshape("POST", "/chat/completions", chat_text(verdict))
        config = chat_config(temperature=0)
    else:
        prism.reshape("POST", "/responses", responses_text(verdict))
        config = responses_config(temperature=0)

    judgement = await prism.expect_ok(
        ask_judge(config, prism.settings(), "Did the agent offer a refund?")
    )

    assert (judgement.score, judgement.feedback) == (90, "Kind and correct.")
    (call,) = prism.exchanges
    if api == "chat_completions":
        sent_schema = call.body["response_format"]["json_schema"]
    else:
        sent_schema = call.body["text"]["format"]
    assert sent_schema["schema"] == JUDGE_SCHEMA.schema
    assert sent_schema["strict"] is True
    prism.assert_all_accepted()


async def test_simulated_conversation(prism: PrismServer) -> None:
    """Responses assistant, Chat Completions simulated user: the whole loop, two turns."""
    prism.reshape("POST", "/chat/completions", chat_text("And when will it arrive?"))
    settings = prism.settings()
    session = open_session(responses_config(), settings, SessionOptions(system_prompt="Help."))
    interlocutor = LLMInterlocutor(
        "You are a customer waiting for order #12345.", chat_config(temperature=0.7), settings
    )
    try:
        result = await simulate(session, interlocutor, "Where is my order?", max_turns=2)
    finally:
        await session.aclose()

    assert result.error is None, prism.explain(result.error or "")
    assert (result.turn_count, result.stop_reason) == (2, "max_turns")
    assert [m.content for m in result.messages if m.role == "user"] == [
        "Where is my order?",
        "And when will it arrive?",
    ]
    (simulated_user,) = prism.calls("POST", "/chat/completions")
    # The roles are flipped: the assistant's answer is the simulated user's input.
    assert [m["role"] for m in simulated_user.body["messages"]] == ["system", "assistant", "user"]
    prism.assert_all_accepted()


# --- Assistants (legacy) --------------------------------------------------------------------------


async def test_assistants_run_that_never_finishes_stops_at_the_deadline(
    prism: PrismServer,
) -> None:
    """Prism's run is ``queued`` forever: the turn ends at our deadline and cancels the run."""
    config = ModelConfig(provider="openai", api="assistants", assistant_id="asst_abc123")
    session = AssistantsSession(
        config,
        prism.settings(),
        SessionOptions(system_prompt="Be brief."),
        poll_interval=0.05,
        deadline_seconds=0.5,
    )
    try:
        with pytest.raises(LLMCallError, match=r"did not finish within 0\.5 s"):
            await session.send("Hello")
    finally:
        await session.aclose()

    (thread,) = prism.calls("POST", "/threads")
    prefix = f"/threads/{thread.answer['id']}"
    assert len(prism.calls("POST", f"{prefix}/messages")) == 1
    (run,) = prism.calls("POST", f"{prefix}/runs")
    assert run.body["assistant_id"] == "asst_abc123"
    run_path = f"{prefix}/runs/{run.answer['id']}"
    assert prism.calls("GET", run_path), "the run was never polled"
    assert prism.exchanges[-1].path == f"{run_path}/cancel"
    prism.assert_all_accepted()
