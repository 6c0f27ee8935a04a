"""The offline mock: deterministic, and useful as assistant, simulated user and judge."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from prompttracker.config.models import ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.conversation import simulate
from prompttracker.interlocutor import END_MARKER, LLMInterlocutor
from prompttracker.llm import router
from prompttracker.llm.base import JsonSchema, SessionOptions
from prompttracker.llm.mock import MOCK_JUDGEMENT, MockSession, mock_json, persona_sentences
from prompttracker.messages import Message

MOCK = ModelConfig(provider="mock", model="gpt-4o-mini")
PERSONA = (
    "You are a frustrated customer charged twice for order #12345. "
    "You want a refund and an apology."
)
JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "minimum": 0, "maximum": 100},
        "overall_score": {"type": "number"},
        "reasoning": {"type": "string"},
        "passed": {"type": "boolean"},
        "verdict": {"type": "string", "enum": ["pass", "fail", "unsure"]},
        "issues": {"type": "array", "items": {"type": "string"}},
        "criteria": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "score": {"type": "integer"}},
                "required": ["name", "score"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["score", "overall_score", "reasoning", "passed", "verdict", "issues", "criteria"],
    "additionalProperties": False,
}


def check(value: Any, schema: dict[str, Any], path: str = "$") -> None:
    """A hand-rolled validator for the subset the judges use (jsonschema is not installed)."""
    if "enum" in schema:
        assert value in schema["enum"], path
        return
    kind = schema["type"]
    if kind == "object":
        assert isinstance(value, dict), path
        assert set(schema.get("required", [])) <= set(value), path
        if schema.get("additionalProperties") is False:
            assert set(value) <= set(schema["properties"]), path
        for key, sub in schema["properties"].items():
            if key in value:
                check(value[key], sub, f"{path}.{key}")
    elif kind == "array":
        assert isinstance(value, list), path
        for i, item in enumerate(value):
            check(item, schema["items"], f"{path}[{i}]")
    elif kind == "string":
        assert isinstance(value, str), path
    elif kind == "integer":
        assert isinstance(value, int) and not isinstance(value, bool), path
    elif kind == "number":
        assert isinstance(value, int | float) and not isinstance(value, bool), path
    elif kind == "boolean":
        assert isinstance(value, bool), path
    if kind in ("integer", "number"):
        assert schema.get("minimum", value) <= value <= schema.get("maximum", value), path


def mock(**options: Any) -> MockSession:
    return MockSession(MOCK, Settings(), SessionOptions(**options))


async def test_same_inputs_same_answers() -> None:
    first, second = mock(system_prompt="Be kind."), mock(system_prompt="Be kind.")
    a = [await first.send("I was double-charged"), await first.send("Refund please")]
    b = [await second.send("I was double-charged"), await second.send("Refund please")]
    assert [t.content for t in a] == [t.content for t in b]
    assert [t.response_id for t in a] == [t.response_id for t in b]
    assert a[0].response_id != a[1].response_id
    for turn in a:
        assert turn.response_id is not None
        assert turn.response_id.startswith("mock-") and len(turn.response_id) == len("mock-") + 12
        assert turn.usage.input_tokens > 0 and turn.usage.output_tokens > 0
        assert turn.latency_ms >= 0


async def test_answers_depend_on_every_input() -> None:
    base = await mock(system_prompt="A").send("hello there")
    other_prompt = await mock(system_prompt="B").send("hello there")
    other_model = await MockSession(
        MOCK.model_copy(update={"model": "other"}), Settings(), SessionOptions(system_prompt="A")
    ).send("hello there")
    history = [
        Message(role="user", content="earlier", turn=1),
        Message(role="assistant", content="ok", turn=1),
    ]
    other_history = await mock(system_prompt="A", history=history).send("hello there")
    ids = {base.response_id, other_prompt.response_id, other_model.response_id}
    assert len(ids | {other_history.response_id}) == 4


async def test_each_repeat_samples_again_and_the_same_repeat_answers_the_same() -> None:
    first = await mock(system_prompt="A").send("hello there")
    plays = [await mock(system_prompt="A", sample=n).send("hello there") for n in range(6)]
    again = [await mock(system_prompt="A", sample=n).send("hello there") for n in range(6)]
    assert plays[0].response_id == first.response_id  # the first play is the plain answer
    assert len({p.response_id for p in plays}) == 6  # each repeat is a new sample …
    assert [p.content for p in plays] == [p.content for p in again]  # … the same every time
    assert len({p.content for p in plays}) > 1  # and the replies themselves vary


def test_determinism_survives_a_new_process() -> None:
    """hashlib, not the per-process salted ``hash``: a fresh interpreter gives the same answer."""
    code = (
        "import asyncio\n"
        "from prompttracker.config.models import ModelConfig\n"
        "from prompttracker.config.settings import Settings\n"
        "from prompttracker.llm.base import SessionOptions\n"
        "from prompttracker.llm.mock import MockSession\n"
        "s = MockSession(ModelConfig(provider='mock', model='m'), Settings(), SessionOptions())\n"
        "print(asyncio.run(s.send('hello')).response_id)\n"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert len(runs) == 1 and runs.pop().startswith("mock-")


async def test_assistant_quotes_the_user() -> None:
    turn = await mock(system_prompt="You are a billing agent.").send(
        "I need a refund for order 12345"
    )
    assert "I need a refund for order 12345" in turn.content
    assert END_MARKER not in turn.content


async def test_interlocutor_plays_the_persona_then_ends() -> None:
    """Through the real interlocutor and loop: persona follow-ups, then the marker ends it."""
    assistant = router.open_session(MOCK, Settings(), SessionOptions(system_prompt="Be brief."))
    interlocutor = LLMInterlocutor(PERSONA, MOCK, Settings())
    result = await simulate(assistant, interlocutor, "I was charged twice!", max_turns=10)

    assert result.stop_reason == "interlocutor_ended"
    assert result.completed
    assert result.turn_count == 3  # ended on its third reply: its history then holds 5 messages
    user_lines = [m.content for m in result.messages if m.role == "user"]
    assert user_lines[0] == "I was charged twice!"
    follow_ups = " ".join(user_lines[1:3])
    assert "I want a refund and an apology." in follow_ups or "order #12345" in follow_ups
    assert all(END_MARKER not in m.content for m in result.messages)
    assert user_lines[-1]  # the closing sentence before the marker is kept
    assert result.conversation_mode == "mock"
    assert result.metadata["mock"] is True


async def test_interlocutor_opens_and_closes_with_marker() -> None:
    system = f"Play a user. Write {END_MARKER} when done.\n\nYour character:\n{PERSONA}"
    opening = await mock(system_prompt=system).send("(write your opening message)")
    assert opening.content.startswith("Hi. I am a frustrated customer charged twice")
    four = [
        Message(role="assistant", content="Hi", turn=1),
        Message(role="user", content="Hello, how can I help?", turn=1),
        Message(role="assistant", content="Refund please", turn=2),
        Message(role="user", content="Sure.", turn=2),
    ]
    three = await mock(system_prompt=system, history=four[:3]).send("Anything else?")
    assert END_MARKER not in three.content
    closing = await mock(system_prompt=system, history=four).send("Anything else?")
    assert closing.content.endswith(f" {END_MARKER}")
    assert closing.content.removesuffix(END_MARKER).strip()


def test_persona_is_turned_to_first_person() -> None:
    system = f"Rules mention {END_MARKER}.\n\nYour character and goal:\n{PERSONA}"
    assert persona_sentences(system) == [
        "I am a frustrated customer charged twice for order #12345.",
        "I want a refund and an apology.",
    ]


async def test_judge_json_validates_against_the_schema() -> None:
    judge = mock(system_prompt="You are a judge.", response_format=JsonSchema("v", JUDGE_SCHEMA))
    turn = await judge.send("Transcript: ...")
    answer = json.loads(turn.content)
    check(answer, JUDGE_SCHEMA)
    assert 70 <= answer["score"] <= 100
    assert 70 <= answer["overall_score"] <= 100
    assert 70 <= answer["criteria"][0]["score"] <= 100
    assert answer["reasoning"] == MOCK_JUDGEMENT
    assert "no model was called" in answer["reasoning"]
    again = await mock(
        system_prompt="You are a judge.", response_format=JsonSchema("v", JUDGE_SCHEMA)
    ).send("Transcript: ...")
    assert again.content == turn.content


def test_mock_json_scores_vary_with_the_seed_and_respect_bounds() -> None:
    schema = {"type": "object", "properties": {"score": {"type": "integer"}}}
    scores = {mock_json(schema, f"seed-{i}")["score"] for i in range(40)}
    assert len(scores) > 5 and min(scores) >= 70 and max(scores) <= 100
    ten = {"type": "object", "properties": {"score": {"type": "integer", "maximum": 10}}}
    assert 7 <= mock_json(ten, "x")["score"] <= 10
    refs = {
        "$defs": {"Item": {"type": "object", "properties": {"label": {"type": "string"}}}},
        "type": "object",
        "properties": {"item": {"$ref": "#/$defs/Item"}, "note": {"type": ["string", "null"]}},
    }
    assert mock_json(refs, "x") == {"item": {"label": MOCK_JUDGEMENT}, "note": MOCK_JUDGEMENT}


async def test_labelled_as_mock() -> None:
    swapped = router.effective_config(
        ModelConfig(provider="openai", api="chat_completions", model="gpt-4o-mini"), mock=True
    )
    session = router.open_session(swapped, Settings())
    assert isinstance(session, MockSession)
    assert session.conversation_mode == "mock"
    assert session.config.label.startswith("mock")
    assert session.metadata == {"mock": True}


# --- tools ----------------------------------------------------------------------------------

TOOLS = ModelConfig.model_validate(
    {
        "provider": "mock",
        "api": "responses",
        "model": "gpt-4o-mini",
        "tools": ["file_search", "web_search", "code_interpreter"],
        "tool_config": {
            "functions": [
                {
                    "name": "lookup_order",
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "order_id": {"type": "string"},
                            "channel": {"type": "string", "enum": ["web", "phone"]},
                            "quantity": {"type": "integer"},
                        },
                        "required": ["order_id"],
                    },
                },
                {"name": "issue_refund"},
            ],
            "file_search": {"vector_store_ids": ["vs_abc", "vs_def"]},
        },
    }
)
OUTPUTS = {"lookup_order": {"status": "charged_twice"}}


def tool_mock(config: ModelConfig = TOOLS, **options: Any) -> MockSession:
    return MockSession(config, Settings(), SessionOptions(function_outputs=OUTPUTS, **options))


async def test_first_turn_calls_functions_and_hosted_tools() -> None:
    turn = await tool_mock(system_prompt="Be kind.").send("I was charged twice for order 12345")
    function, files, web, code = turn.tool_calls
    assert [c.type for c in turn.tool_calls] == [
        "function",
        "file_search",
        "web_search",
        "code_interpreter",
    ]
    # the first function, arguments valid against its schema, output from function_outputs
    assert function.name == "lookup_order"
    assert function.id.startswith("call_mock_")
    assert function.arguments["order_id"] == "mock"
    assert function.arguments["channel"] in ("web", "phone")
    assert isinstance(function.arguments["quantity"], int)
    assert function.output == {"status": "charged_twice"}
    assert 'I called lookup_order: {"status": "charged_twice"}.' in turn.content
    assert 'You said: "I was charged twice for order 12345"' in turn.content

    # hosted tools: normalized results, in tool_calls and in extras, plainly mock
    [file_result] = turn.extras["file_search_results"]
    [web_result] = turn.extras["web_search_results"]
    [code_result] = turn.extras["code_interpreter_results"]
    assert (files.output, web.output, code.output) == (file_result, web_result, code_result)
    assert file_result["query"] == "I was charged twice for order 12345"
    assert [f["filename"] for f in file_result["files"]] == [
        "mock-vs_abc-1.txt",
        "mock-vs_def-2.txt",
    ]
    assert file_result["scores"] == [0.9, 0.8]
    assert all(f["file_id"].startswith("file-mock-") for f in file_result["files"])
    assert web_result["status"] == "completed"
    assert web_result["sources"][0]["url"] == (
        "https://example.com/mock/i-was-charged-twice-for-order"
    )
    assert all("/mock/" in s["url"] for s in web_result["sources"])
    assert web_result["citations"] == web_result["sources"][:1]
    assert web_result["sources"][0]["domain"] == "example.com"
    assert code_result["code"].startswith("# mock code interpreter")
    assert code_result["logs"] == ["7"] and code_result["status"] == "completed"
    assert code_result["language"] == "python"
    assert "mock-vs_abc-1.txt" in turn.content and "it printed 7" in turn.content
    assert "https://example.com/mock/" in turn.content


async def test_tool_use_is_deterministic() -> None:
    async def play() -> list[Any]:
        session = tool_mock(system_prompt="Be kind.")
        turns = [await session.send("Where is order 12345?"), await session.send("lookup order")]
        return [t.model_dump(exclude={"latency_ms"}) for t in turns]

    first, second = await play(), await play()
    assert first == second
    assert [len(t["tool_calls"]) for t in first] == [4, 1]
    other = tool_mock(system_prompt="Be brief.")
    changed = await other.send("Where is order 12345?")
    assert changed.tool_calls[0].id != first[0]["tool_calls"][0]["id"]


async def test_later_turns_use_only_the_tools_they_name() -> None:
    session = tool_mock()
    await session.send("Hello")
    quiet = await session.send("Thanks")
    assert quiet.tool_calls == () and quiet.extras == {}
    assert "I called" not in quiet.content
    named = await session.send("Please issue refund and do a web search for it")
    assert [(c.type, c.name) for c in named.tool_calls] == [
        ("function", "issue_refund"),
        ("web_search", "web_search"),
    ]
    # no mock output for issue_refund: the default result names the call
    assert named.tool_calls[0].output == {
        "mock": True,
        "function": "issue_refund",
        "arguments": {},
        "result": "ok",
    }
    assert list(named.extras) == ["web_search_results"]
    both = await session.send("Run lookup_order and issue_refund")
    assert [c.name for c in both.tool_calls] == ["lookup_order", "issue_refund"]
    # tool names are matched as words, not inside other words
    assert (await session.send("my_lookup_orders please")).tool_calls == ()


async def test_judge_and_simulated_user_never_use_tools() -> None:
    judge = tool_mock(response_format=JsonSchema("v", JUDGE_SCHEMA))
    verdict = await judge.send("I was charged twice")
    check(json.loads(verdict.content), JUDGE_SCHEMA)
    assert verdict.tool_calls == () and verdict.extras == {}
    user = tool_mock(system_prompt=f"Write {END_MARKER} when done.\n\n{PERSONA}")
    opening = await user.send("(write your opening message)")
    assert opening.tool_calls == () and opening.extras == {}
    assert opening.content.startswith("Hi. I am")


async def test_file_search_without_stores_and_with_a_limit() -> None:
    bare = TOOLS.model_copy(
        update={
            "tools": ["file_search"],
            "tool_config": TOOLS.tool_config.model_copy(
                update={"functions": [], "file_search": None}
            ),
        }
    )
    turn = await tool_mock(bare).send("Return policy?")
    [result] = turn.extras["file_search_results"]
    assert [f["filename"] for f in result["files"]] == ["mock-vs_mock-1.txt"]
    assert [c.type for c in turn.tool_calls] == ["file_search"]
    limited = ModelConfig.model_validate(
        {
            "provider": "mock",
            "model": "m",
            "tools": ["file_search"],
            "tool_config": {
                "file_search": {"vector_store_ids": ["vs_1", "vs_2", "vs_3"], "max_num_results": 2}
            },
        }
    )
    turn = await tool_mock(limited).send("Return policy?")
    assert len(turn.extras["file_search_results"][0]["files"]) == 2


async def test_mock_swap_keeps_functions_and_the_loop_gathers_results() -> None:
    """Under --mock a chat_completions version with functions still calls them."""
    real = ModelConfig.model_validate(
        {
            "provider": "openai",
            "api": "chat_completions",
            "model": "gpt-4o-mini",
            "tool_config": {"functions": [{"name": "lookup_order"}]},
        }
    )
    swapped = router.effective_config(real, mock=True)
    assistant = router.open_session(swapped, Settings(), SessionOptions(function_outputs=OUTPUTS))
    interlocutor = LLMInterlocutor(PERSONA, MOCK, Settings())
    result = await simulate(assistant, interlocutor, "Where is order 12345?", max_turns=3)
    calls = [c for m in result.messages for c in m.tool_calls]
    assert [(c.name, c.output) for c in calls] == [("lookup_order", {"status": "charged_twice"})]
    assert result.messages[1].tool_calls == tuple(calls)  # on the first assistant turn
    assert all(not m.tool_calls for m in result.messages if m.role == "user")

    hosted = router.open_session(TOOLS, Settings(), SessionOptions())
    result = await simulate(hosted, interlocutor, "Where is order 12345?", max_turns=3)
    assert result.turn_count == 3
    first_turn = result.messages[1]
    for kind in ("file_search", "web_search", "code_interpreter"):
        # only the first turn used them (the persona's follow-ups name no tool)
        [call] = [c for c in first_turn.tool_calls if c.type == kind]
        assert result.metadata[f"{kind}_results"] == [call.output]
