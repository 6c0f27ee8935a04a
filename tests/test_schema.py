"""`pt schema`: JSON Schemas that accept every bundled example file and refuse broken ones,
agree with pt's own validation, and are published up to date in schemas/."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from jsonschema import Draft202012Validator
from pydantic import ValidationError
from typer.testing import CliRunner

from prompttracker.cli import app
from prompttracker.config.models import Dataset, EvaluatorSpec, Prompt
from prompttracker.config.settings import Settings
from prompttracker.evaluators.base import EvaluationContext, Evaluator, EvaluatorConfig
from prompttracker.evaluators.registry import config_problems, evaluator_types
from prompttracker.results import EvaluationResult
from prompttracker.schemas import SchemaKind, json_schema, schema_text

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()

EXAMPLES = [
    *((SchemaKind.PROMPT, p) for p in sorted((REPO / "prompts").glob("*.yaml"))),
    *((SchemaKind.DATASET, p) for p in sorted((REPO / "datasets").glob("*.yaml"))),
    (SchemaKind.SETTINGS, REPO / "prompttracker.yaml"),
]

PROMPT: dict[str, Any] = yaml.safe_load("""
name: Billing support
versions:
  - version: 1
    status: active
    system_prompt: You are a support agent.
    user_prompt: "{{ opening_message }}"
    model_config: { provider: openai, api: chat_completions, model: gpt-4o-mini }
tests:
  - name: refunds
    dataset: billing
    evaluators:
      - type: keyword
        config: { required_keywords: [refund] }
      - type: llm_judge
        config: { threshold_score: 60 }
""")
DATASET: dict[str, Any] = yaml.safe_load("""
rows:
  - name: double charge
    variables: { opening_message: "I was charged twice" }
    interlocutor_simulation_prompt: You were charged twice.
""")
SETTINGS: dict[str, Any] = yaml.safe_load("""
concurrency: 4
providers: { openai: { base_url: "http://localhost:8000/v1" } }
judge: { provider: openai, api: chat_completions, model: gpt-4o-mini, temperature: 0 }
""")

RESPONSE_FORMAT = {  # as OpenAI's strict mode wants it: every key required, no others
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}


def pt(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def validator(kind: SchemaKind) -> Draft202012Validator:
    return Draft202012Validator(json_schema(kind))


def schema_errors(kind: SchemaKind, data: Any) -> list[str]:
    return [e.message for e in validator(kind).iter_errors(data)]


def pt_accepts(kind: SchemaKind, data: Any) -> bool:
    """What pt's own validation says (the models, and each evaluator's config)."""
    model = {SchemaKind.PROMPT: Prompt, SchemaKind.DATASET: Dataset}.get(kind, Settings)
    try:
        loaded = model.model_validate(data)
    except ValidationError:
        return False
    specs: list[EvaluatorSpec] = [
        spec for test in getattr(loaded, "tests", []) for spec in test.evaluators
    ]
    return not any(config_problems(spec) for spec in specs)


def changed(base: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(base)
    node: Any = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return data


def test_published_schemas_are_current():
    stale = [
        kind.file_name
        for kind in SchemaKind
        if not (REPO / "schemas" / kind.file_name).is_file()
        or (REPO / "schemas" / kind.file_name).read_text(encoding="utf-8") != schema_text(kind)
    ]
    assert not stale, (
        f"schemas/ is out of date with the models ({', '.join(stale)}): "
        "run `pt schema --all schemas` and commit the result"
    )


@pytest.mark.parametrize("kind", list(SchemaKind))
def test_schema_is_valid_draft_2020_12(kind):
    schema = json_schema(kind)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"prompttracker-{kind.value}.schema.json"
    assert schema["title"] and schema["description"]


@pytest.mark.parametrize(
    ("kind", "path"), EXAMPLES, ids=[str(p.relative_to(REPO)) for _, p in EXAMPLES]
)
def test_bundled_examples_validate(kind, path):
    assert schema_errors(kind, yaml.safe_load(path.read_text(encoding="utf-8"))) == []


def test_minimal_documents_validate():
    for kind, data in (
        (SchemaKind.PROMPT, PROMPT),
        (SchemaKind.DATASET, DATASET),
        (SchemaKind.SETTINGS, SETTINGS),
    ):
        assert schema_errors(kind, data) == [] and pt_accepts(kind, data), kind


BROKEN = {
    "prompt: unknown top-level key": (SchemaKind.PROMPT, changed(PROMPT, ("owner",), "me")),
    "prompt: misspelled model_config key": (
        SchemaKind.PROMPT,
        changed(PROMPT, ("versions", 0, "model_config", "temprature"), 0.3),
    ),
    "prompt: a number where text belongs": (
        SchemaKind.PROMPT,
        changed(PROMPT, ("versions", 0, "model_config", "model"), 4),
    ),
    "prompt: wrong type": (SchemaKind.PROMPT, changed(PROMPT, ("versions", 0, "version"), "two")),
    "prompt: YAML boolean for a number": (
        SchemaKind.PROMPT,
        changed(PROMPT, ("versions", 0, "version"), True),
    ),
    "prompt: no versions": (SchemaKind.PROMPT, changed(PROMPT, ("versions",), [])),
    "prompt: unknown provider": (
        SchemaKind.PROMPT,
        changed(PROMPT, ("versions", 0, "model_config", "provider"), "opneai"),
    ),
    "prompt: api of another provider": (
        SchemaKind.PROMPT,
        changed(PROMPT, ("versions", 0, "model_config", "api"), "messages"),
    ),
    "prompt: unknown evaluator type": (
        SchemaKind.PROMPT,
        changed(PROMPT, ("tests", 0, "evaluators", 0, "type"), "keywords"),
    ),
    "prompt: config key of another evaluator type": (
        SchemaKind.PROMPT,
        changed(PROMPT, ("tests", 0, "evaluators", 0, "config"), {"threshold_score": 60}),
    ),
    "prompt: wrong config type": (
        SchemaKind.PROMPT,
        changed(PROMPT, ("tests", 0, "evaluators", 1, "config", "threshold_score"), "high"),
    ),
    "prompt: response_format with an unknown key": (
        SchemaKind.PROMPT,
        changed(
            PROMPT,
            ("versions", 0, "model_config", "response_format"),
            {"schema": RESPONSE_FORMAT, "stict": True},
        ),
    ),
    "prompt: config value out of range": (
        SchemaKind.PROMPT,
        changed(PROMPT, ("tests", 0, "evaluators", 1, "config", "threshold_score"), 101),
    ),
    "dataset: unknown row key": (
        SchemaKind.DATASET,
        changed(DATASET, ("rows", 0, "persona"), "someone"),
    ),
    "dataset: conversational row without a simulated user": (
        SchemaKind.DATASET,
        changed(DATASET, ("rows", 0, "interlocutor_simulation_prompt"), "  "),
    ),
    "dataset: unknown mode": (SchemaKind.DATASET, changed(DATASET, ("mode",), "chat")),
    "settings: unknown key": (SchemaKind.SETTINGS, changed(SETTINGS, ("databse",), "x.db")),
    "settings: wrong type": (SchemaKind.SETTINGS, changed(SETTINGS, ("concurrency",), "eight")),
    "settings: unknown provider key": (
        SchemaKind.SETTINGS,
        changed(SETTINGS, ("providers", "openai", "key"), "sk-123"),
    ),
}


@pytest.mark.parametrize(("kind", "data"), BROKEN.values(), ids=list(BROKEN))
def test_broken_documents_are_refused_by_the_schema_and_by_pt(kind, data):
    assert schema_errors(kind, data), "the schema accepts it"
    assert not pt_accepts(kind, data), "pt accepts it: the schema is stricter than pt"


@pytest.mark.parametrize(
    "response_format",
    [RESPONSE_FORMAT, {"name": "reply", "schema": RESPONSE_FORMAT, "strict": False}],
    ids=["bare schema", "whole"],
)
def test_response_format_is_whole_or_a_bare_schema(response_format):
    data = changed(PROMPT, ("versions", 0, "model_config", "response_format"), response_format)
    data["tests"][0]["evaluators"].append(
        {"type": "format", "config": {"format": "json", "schema": "response_format"}}
    )
    assert schema_errors(SchemaKind.PROMPT, data) == []
    assert pt_accepts(SchemaKind.PROMPT, data)


def test_single_turn_rows_need_no_simulated_user():
    data = {"mode": "single_turn", "rows": [{"variables": {"opening_message": "Hi"}}]}
    assert schema_errors(SchemaKind.DATASET, data) == []
    assert pt_accepts(SchemaKind.DATASET, data)


def test_every_registered_evaluator_type_has_its_config_keys():
    schema = json_schema(SchemaKind.PROMPT)
    spec = schema["$defs"]["EvaluatorSpec"]
    types = evaluator_types()
    assert spec["properties"]["type"]["enum"] == list(types)
    branches = {b["if"]["properties"]["type"]["const"]: b["then"] for b in spec["allOf"]}
    for name, cls in types.items():
        ref = branches[name]["properties"]["config"]["$ref"].removeprefix("#/$defs/")
        keys = set(schema["$defs"][ref]["properties"])
        assert keys == {field.alias or key for key, field in cls.Config.model_fields.items()}


class TonePlugin(Evaluator):
    """Checks the tone (a stand-in for an evaluator type an installed package adds)."""

    type = "acme/tone"  # a '/' must be escaped in the $ref

    class Config(EvaluatorConfig):
        tone: Literal["formal", "casual"] = "formal"

    async def check(self, ctx: EvaluationContext) -> EvaluationResult:
        raise NotImplementedError


def test_evaluator_types_are_read_from_the_registry(monkeypatch):
    types = {**evaluator_types(), TonePlugin.type: TonePlugin}
    monkeypatch.setattr("prompttracker.evaluators.registry.evaluator_types", lambda: types)
    schema = json_schema(SchemaKind.PROMPT)
    assert schema["$defs"]["EvaluatorSpec"]["properties"]["type"]["enum"] == list(types)
    tone = changed(PROMPT, ("tests", 0, "evaluators", 0), {"type": "acme/tone", "config": {}})
    for config, valid in (({"tone": "casual"}, True), ({"tone": "rude"}, False)):
        data = changed(tone, ("tests", 0, "evaluators", 0, "config"), config)
        errors = list(Draft202012Validator(schema).iter_errors(data))
        assert (errors == []) is valid, errors


def test_cli_prints_the_schema_as_json():
    result = pt("schema", "prompt")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json_schema(SchemaKind.PROMPT)


def test_cli_writes_one_schema_or_all(tmp_path):
    result = pt("schema", "dataset", "-o", "out/dataset.json")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "dataset.json").read_text() == schema_text(SchemaKind.DATASET)
    result = pt("schema", "--all", "schemas")
    assert result.exit_code == 0, result.output
    for kind in SchemaKind:
        assert (tmp_path / "schemas" / kind.file_name).read_text() == schema_text(kind)


@pytest.mark.parametrize(
    "args",
    [
        ["schema", "prompts"],
        ["schema"],
        ["schema", "prompt", "--all", "schemas"],
        ["schema", "--all", "schemas", "-o", "x.json"],
    ],
    ids=["unknown kind", "no kind", "kind with --all", "--output with --all"],
)
def test_cli_bad_arguments_exit_2(args, tmp_path):
    result = pt(*args)
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "schemas").exists()
