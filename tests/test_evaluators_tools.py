"""The tool checks: function_call, file_search, web_search, code_interpreter.

Conversations are built by hand in the shapes the sessions produce: ``ToolCall`` entries on the
assistant messages and the normalized results of ``llm/tool_results.py`` in the metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from prompttracker.config.models import DatasetRow, EvaluatorSpec, ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.evaluators import registry
from prompttracker.evaluators.base import EvaluationContext
from prompttracker.evaluators.functions import arguments_match
from prompttracker.evaluators.tools import file_matches
from prompttracker.llm.tool_results import (
    code_interpreter_result,
    file_search_result,
    web_search_result,
)
from prompttracker.messages import ConversationResult, Message, ToolCall
from prompttracker.results import EvaluationResult


def call(name: str, **arguments: Any) -> ToolCall:
    return ToolCall(id=f"call_{name}", type="function", name=name, arguments=arguments)


def hosted(kind: str, result: dict[str, Any]) -> ToolCall:
    return ToolCall(id=f"{kind}_1", type=kind, name=kind, output=result)


def make_context(
    turns: Sequence[tuple[str, str, Sequence[ToolCall]]], metadata: dict[str, Any] | None = None
) -> EvaluationContext:
    """One (user text, assistant text, assistant tool calls) triple per turn."""
    messages: list[Message] = []
    for number, (user, assistant, calls) in enumerate(turns, 1):
        messages.append(Message(role="user", content=user, turn=number))
        messages.append(
            Message(role="assistant", content=assistant, turn=number, tool_calls=tuple(calls))
        )
    return EvaluationContext(
        conversation=ConversationResult(
            messages=tuple(messages),
            turn_count=len(turns),
            completed=True,
            stop_reason="max_turns",
            metadata=metadata or {},
        ),
        row=DatasetRow(name="row-1"),
        system_prompt="You are an assistant.",
        model_config=ModelConfig(provider="mock"),
        judge_config=ModelConfig(provider="mock"),
        settings=Settings(),
    )


def with_results(key: str, *results: dict[str, Any]) -> EvaluationContext:
    """A one-turn conversation whose metadata holds ``results`` under ``key``."""
    return make_context([("q", "a", ())], {key: list(results)})


async def evaluate(
    type_: str, config: dict[str, Any], ctx: EvaluationContext, **spec: Any
) -> EvaluationResult:
    built = EvaluatorSpec(type=type_, config=config, **spec)
    assert registry.config_problems(built) == []
    return await registry.build(built).evaluate(ctx)


# --- function_call ----------------------------------------------------------------------------

ORDER_CALLS = make_context(
    [
        ("where is 12345?", "Checking.", [call("lookup_order", order_id="12345")]),
        ("and the refund?", "Done.", [call("refund", order_id="12345", amount=20)]),
    ]
)


async def test_function_call_all_expected_called_passes() -> None:
    result = await evaluate(
        "function_call", {"expected_functions": ["lookup_order", "refund"]}, ORDER_CALLS
    )
    assert (result.score, result.passed) == (100, True)
    assert result.details["called_functions"] == ["lookup_order", "refund"]
    assert "All expected functions were called" in result.feedback


@pytest.mark.parametrize(
    ("expected", "score", "passed"),
    [
        (["lookup_order", "cancel"], 50, False),  # 1 of 2 < 80
        (["lookup_order", "refund", "cancel"], 67, False),  # 2 of 3, rounded
        (["lookup_order", "refund", "cancel", "escalate", "x"], 40, False),
        (["cancel"], 0, False),
    ],
)
async def test_function_call_require_all_scores_the_share_called(
    expected: list[str], score: float, passed: bool
) -> None:
    result = await evaluate("function_call", {"expected_functions": expected}, ORDER_CALLS)
    assert (result.score, result.passed) == (score, passed)


async def test_function_call_missing_names_what_was_called() -> None:
    result = await evaluate(
        "function_call", {"expected_functions": ["lookup_order", "cancel"]}, ORDER_CALLS
    )
    assert result.feedback == "Missing function calls: cancel. Called: lookup_order, refund"


async def test_function_call_threshold_decides_the_pass() -> None:
    config = {"expected_functions": ["lookup_order", "cancel"], "threshold_score": 50}
    assert (await evaluate("function_call", config, ORDER_CALLS)).passed is True


async def test_function_call_any_mode_is_all_or_nothing() -> None:
    config = {"expected_functions": ["cancel", "refund"], "require_all": False}
    result = await evaluate("function_call", config, ORDER_CALLS)
    assert (result.score, result.passed) == (100, True)
    config = {"expected_functions": ["cancel", "escalate"], "require_all": False}
    result = await evaluate("function_call", config, ORDER_CALLS)
    assert (result.score, result.passed) == (0, False)
    assert "None of the expected functions were called" in result.feedback


async def test_function_call_without_expectations_passes_by_default() -> None:
    result = await evaluate("function_call", {}, make_context([("q", "a", ())]))
    assert (result.score, result.passed) == (100, True)


async def test_function_call_ignores_hosted_tool_calls() -> None:
    search = hosted("file_search", file_search_result(["q"], []))
    ctx = make_context([("q", "a", [search])])
    result = await evaluate("function_call", {"expected_functions": ["file_search"]}, ctx)
    assert (result.score, result.passed) == (0, False)
    assert result.details["called_functions"] == []


async def test_function_call_checks_arguments_as_a_subset() -> None:
    config = {
        "expected_functions": ["lookup_order", "refund"],
        "check_arguments": True,
        "expected_arguments": {"refund": {"amount": "20"}},  # "20" matches 20
    }
    result = await evaluate("function_call", config, ORDER_CALLS)
    assert (result.score, result.passed) == (100, True)

    config["expected_arguments"] = {"refund": {"amount": 25}}
    result = await evaluate("function_call", config, ORDER_CALLS)
    assert (result.score, result.passed) == (50, False)
    assert result.details["matched_functions"] == ["lookup_order"]
    assert result.details["argument_failures"] == [
        'refund: expected {"amount": 25}, got {"order_id": "12345", "amount": 20}'
    ]
    assert "Argument mismatches: refund: expected" in result.feedback


async def test_function_call_any_matching_call_counts() -> None:
    ctx = make_context(
        [
            ("a", "b", [call("lookup_order", order_id="1")]),
            ("c", "d", [call("lookup_order", order_id="2")]),
        ]
    )
    config = {
        "expected_functions": ["lookup_order"],
        "check_arguments": True,
        "expected_arguments": {"lookup_order": {"order_id": "2"}},
    }
    assert (await evaluate("function_call", config, ctx)).passed is True


async def test_function_call_arguments_are_ignored_without_check_arguments() -> None:
    ctx = make_context([("a", "b", [call("lookup_order", order_id="1")])])
    result = await evaluate("function_call", {"expected_functions": ["lookup_order"]}, ctx)
    assert result.passed is True


@pytest.mark.parametrize(
    ("expected", "actual", "matches"),
    [
        ({"a": 1}, {"a": 1, "b": 2}, True),  # extra keys are fine
        ({"a": 1, "c": 3}, {"a": 1}, False),  # every expected key must be there
        ({"a": {"b": "x"}}, {"a": {"b": "x", "c": 1}}, True),  # recursive subset
        ({"a": {"b": "x"}}, {"a": {"b": "y"}}, False),
        ({"a": {"b": "x"}}, {"a": "x"}, False),
        ({"ids": [1, 2]}, {"ids": [1, 2]}, True),
        ({"ids": [1, 2]}, {"ids": [2, 1]}, False),  # lists keep their order
        ({"ids": [1, 2]}, {"ids": [1, 2, 3]}, False),  # and their length
        ({"items": [{"sku": "A"}]}, {"items": [{"sku": "A", "qty": 2}]}, True),
        ({"n": 5}, {"n": "5"}, True),  # scalars compare as text, like the original
        ({"n": 5}, {"n": 5.0}, True),
        ({"ok": True}, {"ok": "true"}, True),
        ({"ok": True}, {"ok": False}, False),
        ({"x": None}, {"x": None}, True),
        ({"x": None}, {}, False),
        ({"x": "null"}, {"x": None}, False),
        ({}, {"anything": 1}, True),
    ],
)
def test_arguments_match(expected: Any, actual: Any, matches: bool) -> None:
    assert arguments_match(expected, actual) is matches


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {
                "expected_functions": ["a"],
                "check_arguments": True,
                "expected_arguments": {"b": {"x": 1}},
            },
            "expected_arguments names functions not in expected_functions: ['b']",
        ),
        (
            {"expected_functions": ["a"], "expected_arguments": {"a": {"x": 1}}},
            "expected_arguments is only compared with check_arguments: true",
        ),
        ({"threshold_score": 101}, "config.threshold_score: Input should be less than or equal"),
    ],
)
def test_function_call_config_problems(config: dict[str, Any], message: str) -> None:
    [problem] = registry.config_problems(EvaluatorSpec(type="function_call", config=config))
    assert message in problem


# --- file_search ------------------------------------------------------------------------------


def searched(*names: str) -> dict[str, Any]:
    files = [{"file_id": f"file-{i}", "filename": n, "score": 0.5} for i, n in enumerate(names)]
    return file_search_result(["refund policy"], files)


@pytest.mark.parametrize(
    ("name", "expected", "matches"),
    [
        ("refund_policy.pdf", "refund_policy.pdf", True),  # exact
        ("Refund_Policy.PDF", "refund_policy.pdf", True),  # any case
        ("2024-refund_policy-v2.pdf", "Refund_Policy", True),  # part of the name
        ("refund_policy.pdf", "*.pdf", True),  # glob
        ("refund_policy.pdf", "refund*.PDF", True),
        ("refund_policy.pdf.txt", "*.pdf", False),  # globs are anchored
        ("shipping.md", "refund", False),
        ("refund_policy.pdf", "refund?policy.pdf", True),
    ],
)
def test_file_matches(name: str, expected: str, matches: bool) -> None:
    assert file_matches(name, expected) is matches


async def test_file_search_all_found_passes() -> None:
    ctx = with_results(
        "file_search_results", searched("refund_policy.pdf"), searched("Shipping.md", "faq.txt")
    )
    result = await evaluate(
        "file_search", {"expected_files": ["refund_policy.pdf", "shipping.md"]}, ctx
    )
    assert (result.score, result.passed) == (100, True)
    assert result.details["searched_files"] == ["refund_policy.pdf", "Shipping.md", "faq.txt"]
    assert result.details["file_search_calls"] == 2


async def test_file_search_scores_the_share_found() -> None:
    ctx = with_results("file_search_results", searched("refund_policy.pdf"))
    config = {"expected_files": ["refund_policy.pdf", "shipping.md", "warranty.md"]}
    result = await evaluate("file_search", config, ctx)
    assert (result.score, result.passed) == (33.33, False)
    assert "Missing files: shipping.md, warranty.md" in result.feedback

    result = await evaluate("file_search", {**config, "require_all": False}, ctx)
    assert (result.score, result.passed) == (33.33, True)


async def test_file_search_without_searches_fails() -> None:
    result = await evaluate("file_search", {"expected_files": ["*"]}, with_results("x"))
    assert (result.score, result.passed) == (0, False)
    assert "Files searched: none (0 search(es))" in result.feedback


def test_file_search_needs_expected_files() -> None:
    assert registry.config_problems(EvaluatorSpec(type="file_search", config={}))
    [problem] = registry.config_problems(
        EvaluatorSpec(type="file_search", config={"expected_files": [" "]})
    )
    assert "at least one non-blank file name" in problem


# --- web_search -------------------------------------------------------------------------------

SOURCES = [
    {"url": "https://www.rei.com/tents/summit", "title": "REI"},
    {"url": "https://www.amazon.de/dp/B01", "title": "Amazon"},
]


def search(query: str, sources: list[dict[str, Any]], cited: int = 1) -> dict[str, Any]:
    return web_search_result(query, sources, citations=sources[:cited])


async def test_web_search_meeting_every_expectation_scores_100() -> None:
    ctx = with_results("web_search_results", search("Summit tent price", SOURCES))
    config = {
        "expected_queries": ["tent"],
        "expected_domains": ["rei.com"],
        "min_sources_consulted": 2,
        "min_sources_cited": 1,
    }
    result = await evaluate("web_search", config, ctx)
    assert (result.score, result.passed) == (100, True)
    assert result.details["queries"] == ["Summit tent price"]
    assert (result.details["sources_consulted"], result.details["sources_cited"]) == (2, 1)


@pytest.mark.parametrize(
    ("config", "score", "passed"),
    [
        ({}, 100, True),
        ({"expected_queries": ["weather"]}, 70, False),  # 40 + 0 + 20 + 5 + 5
        ({"expected_queries": ["tent", "weather"]}, 100, True),  # any one is enough
        ({"expected_queries": ["tent", "weather"], "require_all_queries": True}, 85, True),
        ({"expected_domains": ["example.org"]}, 80, True),  # 40 + 30 + 0 + 5 + 5
        ({"expected_domains": ["rei", "ebay", "x"], "require_all_domains": True}, 86.67, True),
        ({"min_sources_consulted": 4}, 97.5, True),  # 2 of 4 sources: 2.5 of 5
        ({"min_sources_cited": 3}, 96.67, True),
        ({"expected_queries": ["weather"], "threshold_score": 70}, 70, True),
    ],
)
async def test_web_search_scores_like_the_original(
    config: dict[str, Any], score: float, passed: bool
) -> None:
    ctx = with_results("web_search_results", search("Summit tent price", SOURCES))
    result = await evaluate("web_search", config, ctx)
    assert (result.score, result.passed) == (score, passed)


async def test_web_search_dedupes_sources_and_reads_cited_domains() -> None:
    ctx = with_results(
        "web_search_results",
        search("tent", SOURCES, cited=0),
        search("tent", SOURCES[:1], cited=0),
        web_search_result("", [], citations=[{"url": "https://shop.example.org/a"}]),
    )
    config = {"expected_domains": ["example.org"], "min_sources_consulted": 2}
    result = await evaluate("web_search", config, ctx)
    assert result.details["sources_consulted"] == 2
    assert result.details["matched_domains"] == ["example.org"]
    assert result.details["queries"] == ["tent"]
    assert result.score == 100


async def test_web_search_not_used() -> None:
    result = await evaluate("web_search", {}, with_results("x"))
    assert (result.score, result.passed) == (0, False)
    assert result.feedback == "Web search was not used."
    result = await evaluate("web_search", {"require_web_search": False}, with_results("x"))
    assert (result.score, result.passed) == (100, True)


async def test_web_search_not_required_still_scores_a_search() -> None:
    ctx = with_results("web_search_results", search("tent", SOURCES))
    config = {"require_web_search": False, "expected_queries": ["weather"]}
    result = await evaluate("web_search", config, ctx)
    assert (result.score, result.passed) == (70, False)


# --- code_interpreter -------------------------------------------------------------------------

CODE = "import statistics\nprices = [120, 135, 129]\nprint(statistics.mean(prices))"


def run(
    status: str = "completed", language: str = "python", files: list[str] | None = None
) -> dict[str, Any]:
    logs = ["mean (EUR): 128.0"]
    return code_interpreter_result(CODE, logs, files, status=status, language=language)


@pytest.mark.parametrize(
    ("config", "results", "score", "passed"),
    [
        ({}, [run()], 100, True),
        ({}, [run(), run(status="failed")], 80, True),  # 30 + 0 + 15 + 20 + 10 + 5
        ({"threshold_score": 90}, [run(status="failed")], 80, False),
        ({"require_successful_execution": False}, [run(status="failed")], 100, True),
        ({"expected_language": "Python"}, [run()], 100, True),
        ({"expected_language": "r"}, [run()], 85, True),
        ({"output_patterns": [r"\d+\.\d"]}, [run()], 100, True),
        ({"output_patterns": ["median"]}, [run()], 80, True),
        ({"output_patterns": ["128", "median"], "require_all_patterns": True}, [run()], 90, True),
        ({"output_patterns": ["mean ("]}, [run()], 100, True),  # not a regex: plain text
        ({"output_patterns": ["median ("]}, [run()], 80, True),
        ({"expect_files_created": True}, [run()], 90, True),
        ({"expect_files_created": True}, [run(files=["file-chart"])], 100, True),
        ({"min_code_lines": 3}, [run()], 100, True),
        ({"min_code_lines": 4}, [run()], 95, True),
        (
            {"expected_language": "r", "output_patterns": ["median"], "threshold_score": 80},
            [run()],
            65,
            False,
        ),
    ],
)
async def test_code_interpreter_scores_like_the_original(
    config: dict[str, Any], results: list[dict[str, Any]], score: float, passed: bool
) -> None:
    ctx = with_results("code_interpreter_results", *results)
    result = await evaluate("code_interpreter", config, ctx)
    assert result.score == score
    assert result.passed is passed


async def test_code_interpreter_reports_what_ran() -> None:
    ctx = with_results("code_interpreter_results", run(), run(status="failed", files=["f1"]))
    result = await evaluate("code_interpreter", {"expected_language": "python"}, ctx)
    assert result.details["execution_count"] == 2
    assert result.details["successful_count"] == 1
    assert result.details["total_code_lines"] == 6
    assert result.details["files_created"] == ["f1"]
    assert "Executions: 2 (1 successful)" in result.feedback
    assert "Expected language: python (matched)" in result.feedback


async def test_code_interpreter_not_used() -> None:
    result = await evaluate("code_interpreter", {}, with_results("x"))
    assert (result.score, result.passed) == (0, False)
    assert result.feedback == "Code interpreter was not used."
    result = await evaluate(
        "code_interpreter", {"require_code_execution": False}, with_results("x")
    )
    assert (result.score, result.passed) == (100, True)
