"""``pt evaluators list``: every type with its keys, read from the Config models."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import Field
from rich.console import Console
from typer.testing import CliRunner

from prompttracker.cli import app
from prompttracker.evaluators import registry
from prompttracker.evaluators.base import EvaluationContext, Evaluator, EvaluatorConfig
from prompttracker.evaluators.catalog import catalog, describe, type_label
from prompttracker.report.evaluators import evaluators_view
from prompttracker.results import EvaluationResult

ALL_TYPES = [
    "length",
    "keyword",
    "exact_match",
    "pattern_match",
    "format",
    "llm_judge",
    "conversation_judge",
    "function_call",
    "file_search",
    "web_search",
    "code_interpreter",
    "python",
]


def test_the_catalog_lists_every_registered_type() -> None:
    assert [info.type for info in catalog()] == ALL_TYPES == list(registry.evaluator_types())


def test_keys_come_from_the_config_models() -> None:
    infos = {info.type: info for info in catalog()}
    for info in infos.values():
        fields = registry.evaluator_types()[info.type].Config.model_fields
        assert [k.name for k in info.keys] == [f.alias or n for n, f in fields.items()]

    web = {k.name: k for k in infos["web_search"].keys}
    assert (web["min_sources_cited"].type, web["min_sources_cited"].default) == ("int", 0)
    assert web["min_sources_cited"].constraints == "≥ 0"
    assert web["threshold_score"].constraints == "≥ 0, ≤ 100"
    fmt = {k.name: k for k in infos["format"].keys}
    assert "schema" in fmt  # the YAML spelling, not the Python field name
    assert fmt["schema"].type == 'dict[str, any] | "response_format" | null'
    assert fmt["format"].type == '"json" | "markdown" | "plain_text"'
    assert fmt["format"].default == "plain_text"
    patterns = {k.name: k for k in infos["pattern_match"].keys}["patterns"]
    assert (patterns.required, patterns.default, patterns.constraints) == (True, None, "not empty")
    assert infos["file_search"].requires_tool == "file_search"
    assert infos["function_call"].requires_tool == "function"
    assert (infos["length"].scope, infos["conversation_judge"].scope) == ("message", "conversation")
    assert infos["keyword"].description.startswith("Required keywords must appear")


def test_a_new_evaluator_is_described_without_any_list_to_maintain() -> None:
    class Sentiment(Evaluator):
        """The message sounds ``positive``.

        More detail that the one-line description leaves out.
        """

        type = "sentiment"
        scope = "message"

        class Config(EvaluatorConfig):
            mood: Literal["positive", "neutral"] = Field(default="positive", description="Mood")
            words: list[str] | None = None

        async def check(self, ctx: EvaluationContext) -> EvaluationResult:
            raise NotImplementedError

    info = describe(Sentiment)
    assert info.description == "The message sounds positive."
    assert [(k.name, k.type, k.default, k.description) for k in info.keys] == [
        ("mood", '"positive" | "neutral"', "positive", "Mood"),
        ("words", "list[str] | null", None, ""),
    ]


def test_type_label() -> None:
    assert type_label(dict[str, list[int]]) == "dict[str, list[int]]"
    assert type_label(bool | None) == "bool | null"


def test_the_view_shows_each_type_with_keys_and_defaults() -> None:
    console = Console(record=True, width=100)
    console.print(evaluators_view(catalog()))
    text = console.export_text()
    for name in ALL_TYPES:
        assert f"{name} — " in text
    assert "min_sources_consulted" in text
    assert "needs file_search in model_config.tools" in text
    assert "needs model_config.tool_config.functions" in text
    assert "looks at one message (default: the last assistant message)" in text
    lines = {line.split()[0]: line for line in text.splitlines() if line.strip()}
    assert lines["patterns"].split()[1:4] == ["list[str]", "(not", "empty)"]
    assert "required" in lines["patterns"]
    assert "`turn` (1-based) and `role`" in text


def test_pt_evaluators_list() -> None:
    result = CliRunner().invoke(app, ["evaluators", "list"], catch_exceptions=False)
    assert result.exit_code == 0
    for name in ALL_TYPES:
        assert f"{name} — " in result.output
    assert "expected_arguments" in result.output


def test_pt_evaluators_list_json() -> None:
    result = CliRunner().invoke(app, ["evaluators", "list", "--json"], catch_exceptions=False)
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert [item["type"] for item in data] == ALL_TYPES
    code = next(item for item in data if item["type"] == "code_interpreter")
    assert code["scope"] == "conversation"
    assert code["requires_tool"] == "code_interpreter"
    keys = {key["name"]: key for key in code["keys"]}
    assert keys["expected_language"] == {
        "name": "expected_language",
        "type": "str | null",
        "required": False,
        "default": None,
        "constraints": "",
        "description": "Language one of the runs must use, e.g. python",
    }
    assert keys["output_patterns"]["default"] == []
    assert keys["threshold_score"]["default"] == 80
