"""Turn/role targeting, and the load-time checks of evaluator specs against the versions."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from prompttracker.cli import app
from prompttracker.config.loader import load_project
from prompttracker.config.models import EvaluatorSpec, ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.conversation import simulate
from prompttracker.errors import ConfigError
from prompttracker.evaluators import registry
from prompttracker.evaluators.base import TargetMissing, select_target
from prompttracker.llm import router
from prompttracker.llm.base import JsonSchema
from prompttracker.llm.tool_results import file_search_result
from prompttracker.messages import AssistantTurn, Message
from prompttracker.results import EvaluationResult
from tests.project_factory import DATASET, write_project
from tests.test_evaluators_tools import call, hosted, make_context

STORE_FILES = {
    1: file_search_result(["returns"], [{"file_id": "f1", "filename": "returns.md"}]),
    2: file_search_result(["shipping"], [{"file_id": "f2", "filename": "shipping.md"}]),
}
# Turn 1 looks an order up and searches the returns policy; turn 2 searches shipping; turn 3
# is the simulated user's closing line (no assistant answer).
_TWO_TURNS = make_context(
    [
        (
            "Where is order 12345?",
            "It ships Friday.",
            [call("lookup_order", order_id="12345"), hosted("file_search", STORE_FILES[1])],
        ),
        ("Can I return it?", "Yes, within 30 days.", [hosted("file_search", STORE_FILES[2])]),
    ],
    {"file_search_results": [STORE_FILES[1], STORE_FILES[2]]},
)
_CLOSING = Message(role="user", content="Thanks, bye.", turn=3)
CTX = replace(
    _TWO_TURNS,
    conversation=_TWO_TURNS.conversation.model_copy(
        update={"messages": (*_TWO_TURNS.conversation.messages, _CLOSING)}
    ),
)


async def evaluate(type_: str, config: dict[str, Any], **spec: Any) -> EvaluationResult:
    built = EvaluatorSpec(type=type_, config=config, **spec)
    assert registry.config_problems(built) == []
    return await registry.build(built).evaluate(CTX)


# --- selection --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("turn", "role", "content", "focus"),
    [
        (None, None, "Yes, within 30 days.", "the last assistant message"),
        (None, "user", "Thanks, bye.", "the last user message"),
        (1, None, "It ships Friday.", "turn 1's assistant message"),
        (1, "user", "Where is order 12345?", "turn 1's user message"),
        (3, "user", "Thanks, bye.", "turn 3's user message"),
    ],
)
def test_message_checks_select_one_message(
    turn: int | None, role: str | None, content: str, focus: str
) -> None:
    target = select_target(CTX.conversation, "message", turn, role)
    assert target.message is not None and target.message.content == content
    assert target.focus == focus
    # The judges' context: the conversation up to and including the message.
    assert target.conversation.messages[-1] == target.message


@pytest.mark.parametrize(
    ("scope", "turn", "role", "reason"),
    [
        ("message", 4, None, "turn 4 was not played: the conversation has 3 turn(s)"),
        ("message", 3, "assistant", "turn 3 has no assistant message"),
        ("conversation", 9, None, "turn 9 was not played: the conversation has 3 turn(s)"),
    ],
)
def test_missing_targets_say_why(scope: Any, turn: int, role: str | None, reason: str) -> None:
    with pytest.raises(TargetMissing, match=re.escape(reason)):
        select_target(CTX.conversation, scope, turn, role)


def test_conversation_checks_narrow_to_one_turn_with_its_tool_results() -> None:
    whole = select_target(CTX.conversation, "conversation")
    assert whole.conversation is CTX.conversation
    target = select_target(CTX.conversation, "conversation", 2)
    assert [m.turn for m in target.conversation.messages] == [2, 2]
    assert target.conversation.metadata["file_search_results"] == [STORE_FILES[2]]
    assert target.conversation.turn_count == 1
    assert target.focus == "turn 2"


# --- a message check --------------------------------------------------------------------------


async def test_keyword_default_looks_at_the_last_assistant_message() -> None:
    assert (await evaluate("keyword", {"required_keywords": ["30 days"]})).passed is True
    assert (await evaluate("keyword", {"required_keywords": ["Friday"]})).passed is False


async def test_keyword_on_one_turn_and_role() -> None:
    result = await evaluate("keyword", {"required_keywords": ["Friday"]}, turn=1)
    assert result.passed is True
    assert result.details["target"] == "turn 1's assistant message"
    result = await evaluate("keyword", {"required_keywords": ["12345"]}, turn=1, role="user")
    assert result.passed is True
    result = await evaluate("keyword", {"required_keywords": ["12345"]}, turn=2, role="user")
    assert result.passed is False


async def test_a_turn_beyond_the_conversation_is_a_failed_evaluation() -> None:
    result = await evaluate("length", {}, turn=5)
    assert (result.score, result.passed, result.error) == (0, False, None)
    assert result.status == "failed"
    assert result.feedback == (
        "Nothing to evaluate: turn 5 was not played: the conversation has 3 turn(s)."
    )


async def test_llm_judge_judges_the_targeted_message_in_its_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prompts: list[str] = []

    async def fake_complete(
        config: ModelConfig,
        settings: Any,
        *,
        system_prompt: str,
        messages: Sequence[Message],
        response_format: JsonSchema | None = None,
        **call_layer: Any,
    ) -> AssistantTurn:
        prompts.append(messages[-1].content)
        return AssistantTurn(content=json.dumps({"feedback": "ok", "score": 90}))

    monkeypatch.setattr(router, "complete", fake_complete)
    result = await evaluate("llm_judge", {}, turn=1)
    assert result.passed is True
    [prompt] = prompts
    assert "RESPONSE TO EVALUATE (turn 1's assistant message):\nIt ships Friday." in prompt
    assert "Can I return it?" not in prompt  # later turns are not context

    prompts.clear()
    result = await evaluate("conversation_judge", {}, turn=2)
    [prompt] = prompts  # one assistant message judged…
    assert "turn 2):\nYes, within 30 days." in prompt
    assert "USER: Where is order 12345?" in prompt  # …in the context of the turns before it
    assert result.details["total_messages"] == 1


# --- a conversation check ---------------------------------------------------------------------


async def test_function_call_on_one_turn() -> None:
    config = {"expected_functions": ["lookup_order"]}
    assert (await evaluate("function_call", config)).passed is True
    assert (await evaluate("function_call", config, turn=1)).passed is True
    result = await evaluate("function_call", config, turn=2)
    assert (result.score, result.passed) == (0, False)
    assert result.details["target"] == "turn 2"


async def test_file_search_on_one_turn_reads_that_turns_tool_calls() -> None:
    config = {"expected_files": ["shipping.md"]}
    assert (await evaluate("file_search", config)).passed is True
    assert (await evaluate("file_search", config, turn=2)).passed is True
    result = await evaluate("file_search", config, turn=1)
    assert result.passed is False
    assert result.details["searched_files"] == ["returns.md"]
    result = await evaluate("file_search", config, turn=7)
    assert (result.passed, result.error) == (False, None)
    assert "turn 7 was not played" in result.feedback


async def test_role_assistant_is_accepted_by_conversation_checks() -> None:
    config = {"expected_functions": ["lookup_order"]}
    assert (await evaluate("function_call", config, role="assistant")).passed is True


def test_role_user_is_rejected_for_conversation_checks() -> None:
    [problem] = registry.config_problems(
        EvaluatorSpec(type="function_call", role="user", config={})
    )
    assert problem.startswith("role: user — function_call reads the assistant's messages")


# --- load time --------------------------------------------------------------------------------

PROMPT = """\
name: Orders
versions:
  - version: 1
    status: active
    system_prompt: You help with orders.
    user_prompt: "{{{{ opening_message }}}}"
    model_config: {{ provider: openai, api: chat_completions, model: gpt-4o-mini }}
  - version: 2
    system_prompt: You help with orders.
    user_prompt: "{{{{ opening_message }}}}"
    model_config:
      provider: openai
      api: responses
      model: gpt-4.1-mini
      tools: [file_search, web_search, code_interpreter]
      tool_config:
        file_search: {{ vector_store_ids: [vs_1] }}
        functions: [{{ name: lookup_order }}]
  - version: 3
    system_prompt: ""
    user_prompt: "{{{{ opening_message }}}}"
    model_config:
      provider: openai
      api: assistants
      assistant_id: asst_1
      tools: [file_search]
tests:
  - name: uses tools
    dataset: billing
    versions: {versions}
    evaluators:
{evaluators}
"""


def project(tmp_path: Path, versions: list[int], *evaluators: str) -> Path:
    lines = "\n".join(f"      - {e}" for e in evaluators)
    text = PROMPT.format(versions=versions, evaluators=lines)
    return write_project(tmp_path, prompts={"orders": text}, datasets={"billing": DATASET})


def problems(root: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_project(root)
    return [line.strip() for line in info.value.message.splitlines()[1:]]


ALL_TOOL_CHECKS = (
    "{ type: file_search, config: { expected_files: [a.md] } }",
    "{ type: web_search }",
    "{ type: code_interpreter }",
    "{ type: function_call, config: { expected_functions: [lookup_order] } }",
)


def test_a_version_with_every_tool_feeds_every_tool_check(tmp_path: Path) -> None:
    root = project(tmp_path, [2], *ALL_TOOL_CHECKS)
    assert load_project(root).prompts["orders"].tests[0].evaluators[0].type == "file_search"


def test_tool_checks_on_a_version_without_the_tools_are_config_errors(tmp_path: Path) -> None:
    root = project(tmp_path, [1, 2], *ALL_TOOL_CHECKS)
    found = problems(root)
    where = "prompts/orders.yaml: line {}: tests[0] (uses tools).evaluators"
    label = "version 1 (openai/chat_completions gpt-4o-mini)"
    assert found == [
        f"{where.format(32)}[0] (file_search): {label} does not use the file_search tool, so "
        "file_search has no results to check; add file_search to versions[0].model_config.tools "
        "(api: responses or assistants), or run this test on other `versions`",
        f"{where.format(33)}[1] (web_search): {label} does not use the web_search tool, so "
        "web_search has no results to check; add web_search to versions[0].model_config.tools "
        "(api: responses or assistants), or run this test on other `versions`",
        f"{where.format(34)}[2] (code_interpreter): {label} does not use the code_interpreter "
        "tool, so code_interpreter has no results to check; add code_interpreter to "
        "versions[0].model_config.tools (api: responses or assistants), or run this test on "
        "other `versions`",
        f"{where.format(35)}[3] (function_call): {label} defines no functions, so function_call "
        "has no calls to check; add them under versions[0].model_config.tool_config.functions, "
        "or run this test on other `versions`",
    ]


def test_the_active_version_is_checked_when_the_test_names_none(tmp_path: Path) -> None:
    root = project(tmp_path, [], "{ type: web_search }")  # versions: [] → the active v1
    [problem] = problems(root)
    assert "version 1 (openai/chat_completions gpt-4o-mini) does not use the web_search" in problem


def test_an_assistants_version_is_described_by_its_tools(tmp_path: Path) -> None:
    ok = project(tmp_path, [3], "{ type: file_search, config: { expected_files: [a.md] } }")
    load_project(ok)
    root = project(tmp_path, [3], "{ type: code_interpreter }")
    [problem] = problems(root)
    assert "version 3 (openai/assistants asst_1) does not use the code_interpreter tool" in problem
    assert "add code_interpreter to versions[2].model_config.tools" in problem


def test_turn_and_role_are_validated(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        [2],
        "{ type: length, turn: 0 }",
        "{ type: keyword, role: system }",
        "{ type: web_search, role: user }",
        "{ type: format, config: { format: json, schema: { type: objekt } } }",
    )
    found = problems(root)
    assert found[:2] == [
        "prompts/orders.yaml: line 32: tests[0].evaluators[0].turn: Input should be greater "
        "than or equal to 1",
        "prompts/orders.yaml: line 33: tests[0].evaluators[1].role: Input should be 'user' or "
        "'assistant'",
    ]
    # The prompt file did not validate, yet the evaluators that did are checked in the same pass.
    assert len(found) == 4
    assert found[2].startswith(
        "prompts/orders.yaml: line 34: tests[0] (uses tools).evaluators[2] (web_search): role: "
        "user — web_search reads"
    )
    assert found[3].startswith(
        "prompts/orders.yaml: line 35: tests[0] (uses tools).evaluators[3] (format): "
        "config.schema: schema is not a valid JSON Schema"
    )


def test_every_evaluator_problem_is_reported_at_once(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        [1],
        "{ type: web_search, role: user }",
        "{ type: format, config: { format: json, schema: { type: objekt } } }",
        "{ type: keyword, turn: 2, role: user, config: { required_keywords: [x] } }",
    )
    found = problems(root)
    assert len(found) == 3
    assert found[0].startswith(
        "prompts/orders.yaml: line 32: tests[0] (uses tools).evaluators[0] (web_search): role: user"
    )
    assert "does not use the web_search tool" in found[1]
    assert found[2].startswith(
        "prompts/orders.yaml: line 33: tests[0] (uses tools).evaluators[1] (format): "
        "config.schema: "
        "schema is not a valid JSON Schema"
    )


def test_pt_validate_exits_2_on_an_evaluator_the_version_cannot_feed(tmp_path: Path) -> None:
    project(tmp_path, [1], "{ type: file_search, config: { expected_files: [a.md] } }")
    result = CliRunner().invoke(app, ["validate"], catch_exceptions=False)
    assert result.exit_code == 2
    out = " ".join(result.output.split())
    assert "tests[0] (uses tools).evaluators[0] (file_search): version 1" in out
    assert "add file_search to versions[0].model_config.tools" in out
    assert "Hint: fix the files above" in out


class ScriptedUser:
    """A simulated user that says the given lines, then ends."""

    def __init__(self, *lines: str) -> None:
        self.lines = list(lines)

    async def reply(self, messages: list[Message]) -> tuple[str, bool]:
        return (self.lines.pop(0), False) if self.lines else ("", True)


async def test_per_turn_results_agree_with_what_the_session_recorded() -> None:
    config = ModelConfig(
        provider="mock",
        api="responses",
        model="m",
        tools=["file_search", "web_search"],
        tool_config={"functions": [{"name": "lookup_order"}]},
    )
    session = router.open_session(config, Settings())
    conversation = await simulate(
        session, ScriptedUser("Now a web search for the price, please."), "Where is 12345?", 3
    )
    metadata = conversation.metadata
    assert len(metadata["web_search_results"]) == 2  # turn 1 (first turn) and turn 2 (named)
    # Turn by turn, the tool calls give back exactly the conversation's result lists.
    per_turn = [
        select_target(conversation, "conversation", turn).conversation.metadata for turn in (1, 2)
    ]
    for key in ("file_search_results", "web_search_results"):
        assert [r for m in per_turn for r in m.get(key, [])] == metadata[key]
    assert "file_search_results" not in per_turn[1]

    ctx = replace(CTX, conversation=conversation)
    spec = EvaluatorSpec(type="file_search", turn=2, config={"expected_files": ["mock-"]})
    assert (await registry.build(spec).evaluate(ctx)).passed is False
    spec = spec.model_copy(update={"turn": 1})
    assert (await registry.build(spec).evaluate(ctx)).passed is True
    spec = EvaluatorSpec(
        type="function_call", turn=2, config={"expected_functions": ["lookup_order"]}
    )
    assert (await registry.build(spec).evaluate(ctx)).passed is False
