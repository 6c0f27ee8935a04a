"""The format evaluator: JSON (required keys, JSON Schema, strict), Markdown, plain text."""

from __future__ import annotations

import json
from typing import Any

import pytest

from prompttracker.config.models import EvaluatorSpec
from prompttracker.evaluators import registry
from prompttracker.results import EvaluationResult
from tests.test_evaluators_tools import make_context

ORDER_SCHEMA = {
    "type": "object",
    "required": ["order_id", "status"],
    "properties": {
        "order_id": {"type": "string"},
        "status": {"enum": ["shipped", "delayed"]},
        "eta_days": {"type": "integer", "minimum": 0},
    },
}


async def check(config: dict[str, Any], answer: str) -> EvaluationResult:
    spec = EvaluatorSpec(type="format", config=config)
    assert registry.config_problems(spec) == []
    return await registry.build(spec).evaluate(make_context([("q", answer, ())]))


# plain text and markdown


async def test_plain_text_is_the_default_and_needs_text() -> None:
    result = await check({}, "Hello.")
    assert (result.score, result.passed, result.feedback) == (100, True, "Valid plain text.")
    result = await check({}, "")
    assert (result.score, result.passed, result.feedback) == (0, False, "Empty response.")


async def test_markdown_headers_when_required() -> None:
    assert (await check({"format": "markdown"}, "Just *text*.")).passed is True
    result = await check({"format": "markdown", "require_headers": True}, "Just *text*.")
    assert (result.score, result.passed, result.feedback) == (
        50,
        False,
        "Missing markdown headers.",
    )
    result = await check({"format": "markdown", "require_headers": True}, "Intro\n## Prices\n- 1")
    assert (result.score, result.passed) == (100, True)
    assert (await check({"format": "markdown"}, "")).score == 0


# JSON


async def test_json_must_parse() -> None:
    result = await check({"format": "json"}, '{"a": 1,}')
    assert (result.score, result.passed) == (0, False)
    assert result.feedback.startswith("Invalid JSON: ")
    assert "line 1" in result.feedback
    assert (await check({"format": "json"}, "[1, 2]")).passed is True
    # A Markdown fence is not JSON: an app parsing the reply would fail too.
    assert (await check({"format": "json"}, '```json\n{"a": 1}\n```')).passed is False


@pytest.mark.parametrize(
    ("answer", "score", "passed", "missing"),
    [
        ('{"order_id": "1", "status": "shipped", "eta_days": 2}', 100, True, []),
        ('{"order_id": "1"}', 33, False, ["status", "eta_days"]),
        ('{"order_id": "1", "status": "shipped"}', 67, False, ["eta_days"]),
        ("{}", 0, False, ["order_id", "status", "eta_days"]),
    ],
)
async def test_json_required_keys_score_the_share_present(
    answer: str, score: int, passed: bool, missing: list[str]
) -> None:
    config = {"format": "json", "required_keys": ["order_id", "status", "eta_days"]}
    result = await check(config, answer)
    assert (result.score, result.passed) == (score, passed)
    assert result.details["missing_keys"] == missing


async def test_json_required_keys_need_an_object() -> None:
    result = await check({"format": "json", "required_keys": ["a"]}, '["a"]')
    assert (result.score, result.passed) == (0, False)
    assert "top level is a JSON array, not an object" in result.feedback


async def test_json_schema_valid() -> None:
    answer = json.dumps({"order_id": "1", "status": "delayed", "eta_days": 3})
    result = await check({"format": "json", "schema": ORDER_SCHEMA}, answer)
    assert (result.score, result.passed) == (100, True)
    assert result.feedback == "Valid JSON matching the schema."


async def test_json_schema_violations_cost_10_each_and_are_listed() -> None:
    answer = json.dumps({"order_id": 1, "status": "lost", "eta_days": -1})
    result = await check({"format": "json", "schema": ORDER_SCHEMA}, answer)
    assert (result.score, result.passed) == (70, False)
    paths = [e["path"] for e in result.details["schema_errors"]]
    assert paths == ["$.eta_days", "$.order_id", "$.status"]
    assert "schema violations (3)" in result.feedback
    assert "$.order_id: 1 is not of type 'string'" in result.feedback

    result = await check({"format": "json", "schema": ORDER_SCHEMA}, "{}")
    assert result.score == 80  # two missing required properties
    assert "'order_id' is a required property" in result.feedback


async def test_json_schema_with_required_keys_takes_half_for_missing_keys() -> None:
    config = {"format": "json", "schema": ORDER_SCHEMA, "required_keys": ["eta_days", "note"]}
    answer = json.dumps({"order_id": "1", "status": "shipped"})
    result = await check(config, answer)
    assert (result.score, result.passed) == (50, False)  # 100 - 50 x 2/2 missing


async def test_json_strict_rejects_keys_outside_required_keys_and_properties() -> None:
    config = {"format": "json", "schema": ORDER_SCHEMA, "strict": True}
    answer = json.dumps({"order_id": "1", "status": "shipped", "debug": True})
    result = await check(config, answer)
    assert (result.score, result.passed) == (80, False)
    assert result.details["extra_keys"] == ["debug"]
    assert "extra keys not allowed in strict mode: debug" in result.feedback

    config = {"format": "json", "required_keys": ["a"], "strict": True}
    assert (await check(config, '{"a": 1}')).passed is True
    result = await check(config, '{"a": 1, "b": 2}')
    assert (result.score, result.passed) == (80, False)


# config


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"format": "json", "schema": {"type": "objekt"}},
            "config.schema: schema is not a valid JSON Schema at type:",
        ),
        (
            {"format": "json", "schema": {"properties": {"a": {"minimum": "zero"}}}},
            "config.schema: schema is not a valid JSON Schema at properties/a/minimum:",
        ),
        (
            {"schema": {"type": "object"}},
            "config: schema only applies to format: json (format is 'plain_text'); set format",
        ),
        (
            {"format": "markdown", "required_keys": ["a"], "strict": True},
            "config: required_keys, strict only apply to format: json",
        ),
        ({"format": "json", "require_headers": True}, "config: require_headers only applies to"),
        ({"format": "yaml"}, "config.format: Input should be 'json', 'markdown' or 'plain_text'"),
        ({"format": "json", "max_parse_errors": 0}, "config.max_parse_errors: unknown config key"),
    ],
)
def test_format_config_problems(config: dict[str, Any], message: str) -> None:
    [problem] = registry.config_problems(EvaluatorSpec(type="format", config=config))
    assert problem.startswith(message)


def test_a_schema_pattern_known_to_backtrack_catastrophically_is_refused() -> None:
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^(a+)+$"}}}
    [problem] = registry.config_problems(
        EvaluatorSpec(type="format", config={"format": "json", "schema": schema})
    )
    assert problem.startswith(
        "config.schema: schema pattern '^(a+)+$' at /properties/code/pattern: it repeats "
        "without bound a group"
    )


async def test_schema_patterns_still_validate() -> None:
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^[A-Z]+$"}}}
    config = {"format": "json", "schema": schema}
    assert (await check(config, json.dumps({"code": "ABC"}))).passed is True
    failed = await check(config, json.dumps({"code": "abc"}))
    assert failed.passed is False and "'abc' does not match '^[A-Z]+$'" in failed.feedback


async def test_a_schema_pattern_that_backtracks_stops_at_the_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prompttracker.evaluators import patterns

    monkeypatch.setattr(patterns, "PATTERN_TIMEOUT_SECONDS", 0.05)
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": "(x|xx)+y"}}}
    spec = EvaluatorSpec(type="format", config={"format": "json", "schema": schema})
    context = make_context([("q", json.dumps({"code": "x" * 5000}), ())])
    (result,) = await registry.run_evaluators([spec], context)
    assert result.error is not None and "took longer than 0.05 s" in result.error
    assert result.passed is False
