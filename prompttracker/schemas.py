"""JSON Schemas (draft 2020-12) of the files a project holds, generated from their models.

Editors read them to complete and check keys as they are typed (``# yaml-language-server:
$schema=...`` at the top of a YAML file). The pydantic models stay the truth: each schema is
their ``model_json_schema`` plus what the models check in code but a schema can say too — the
supported provider/api pairs, each evaluator type's own ``config`` keys (read from the
evaluator registry, so a new type appears by itself), the rows a conversational dataset
needs a simulated user for — and the shorthand a ``mode="before"`` validator accepts (a bare
``response_format`` schema), which ``model_json_schema`` cannot see. What a schema cannot say
(templates, cross-file references) is left to ``pt validate``, so a schema never refuses a file
that ``pt`` accepts.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel

DIALECT = "https://json-schema.org/draft/2020-12/schema"


class SchemaKind(StrEnum):
    """The kinds of file a project holds, by the name ``pt schema`` takes."""

    PROMPT = "prompt"
    DATASET = "dataset"
    SETTINGS = "settings"

    @property
    def file_name(self) -> str:
        """The schema's published file name, e.g. ``prompt.schema.json``."""
        return f"{self.value}.schema.json"


_ABOUT = {
    SchemaKind.PROMPT: (
        "PromptTracker prompt file",
        "prompts/<slug>.yaml: one prompt, its versions (templates and model_config) and its "
        "tests (dataset and evaluators).",
    ),
    SchemaKind.DATASET: (
        "PromptTracker dataset",
        "datasets/<name>.yaml: the rows a test plays, each with its variables and, in "
        "conversational mode, the simulated user's persona.",
    ),
    SchemaKind.SETTINGS: (
        "PromptTracker project settings",
        "prompttracker.yaml at the project root; every key is optional.",
    ),
}


def _model(kind: SchemaKind) -> type[BaseModel]:
    from prompttracker.config.models import Dataset, Prompt
    from prompttracker.config.settings import Settings

    return {SchemaKind.PROMPT: Prompt, SchemaKind.DATASET: Dataset, SchemaKind.SETTINGS: Settings}[
        kind
    ]


def json_schema(kind: SchemaKind) -> dict[str, Any]:
    """The JSON Schema of one kind of file, with ``$schema``, ``$id``, title and description."""
    generated = _model(kind).model_json_schema(mode="validation", by_alias=True)
    defs: dict[str, Any] = generated.setdefault("$defs", {})
    if "ModelConfig" in defs:
        _constrain_routes(defs["ModelConfig"])
    if "ResponseFormat" in defs:
        defs["ResponseFormat"] = _whole_or_bare(defs["ResponseFormat"])
    if "EvaluatorSpec" in defs:
        _type_evaluator_configs(defs["EvaluatorSpec"], defs)
    if kind is SchemaKind.DATASET:
        _require_personas(generated)
    title, description = _ABOUT[kind]
    generated.pop("title", None)
    generated.pop("description", None)
    return {
        "$schema": DIALECT,
        "$id": f"prompttracker-{kind.value}.schema.json",
        "title": title,
        "description": description,
        **generated,
    }


def schema_text(kind: SchemaKind) -> str:
    """``json_schema(kind)`` as the text ``pt schema`` prints and the published files hold."""
    return json.dumps(json_schema(kind), indent=2, ensure_ascii=False) + "\n"


def write_schema(kind: SchemaKind, path: Path) -> Path:
    """Write one kind's schema to ``path`` (its folder created when missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(schema_text(kind), encoding="utf-8")
    return path


def write_schemas(folder: Path) -> list[Path]:
    """Write every kind's schema into ``folder`` as ``<kind>.schema.json``; the paths written."""
    return [write_schema(kind, folder / kind.file_name) for kind in SchemaKind]


def _constrain_routes(model_config: dict[str, Any]) -> None:
    """``provider`` from the routing table, and for each provider its ``api`` names."""
    from prompttracker.api_types import ROUTES

    apis: dict[str, list[str]] = {}
    for provider, api in ROUTES:
        apis.setdefault(provider, []).append(api)
    properties = model_config["properties"]
    properties["provider"] = {
        **properties["provider"],
        "enum": [*apis, "mock"],
        "description": "Who answers; `mock` answers offline, with any `api`.",
    }
    model_config["allOf"] = [
        {
            "if": {"properties": {"provider": {"const": provider}}, "required": ["provider"]},
            "then": {
                "properties": {"api": {"enum": names}},
                "required": ["api"],
            },
        }
        for provider, names in apis.items()
    ]


def _whole_or_bare(response_format: dict[str, Any]) -> dict[str, Any]:
    """``response_format`` is ``{name, schema, strict}`` or the bare JSON Schema (any mapping
    without ``schema``): its model turns the second into the first before validating."""
    title = response_format.pop("title", "ResponseFormat")
    description = response_format.pop("description", "")
    bare = {
        "type": "object",
        "not": {"required": ["schema"]},
        "title": "A bare JSON Schema",
        "description": "The reply's JSON Schema itself (name: response, strict: true).",
    }
    return {"title": title, "description": description, "anyOf": [response_format, bare]}


def _type_evaluator_configs(spec: dict[str, Any], defs: dict[str, Any]) -> None:
    """``type`` from the evaluator registry; ``config`` checked against that type's keys.

    The registry includes the types installed packages add (entry points), so a project's
    schema covers the plugins it uses; each type's config is ``$defs/config.<type>``.
    """
    from prompttracker.evaluators.catalog import describe
    from prompttracker.evaluators.registry import evaluator_types

    types = evaluator_types()
    properties = spec["properties"]
    properties["type"] = {
        **properties["type"],
        "enum": list(types),
        "description": "The evaluator type (`pt evaluators list` describes each).",
    }
    properties["config"] = {
        "type": "object",
        "description": "The evaluator's settings; the keys depend on `type`.",
    }
    branches = []
    for name, cls in types.items():
        key = f"config.{name}"  # by type, not class name: a plugin's class may share a name
        template = "#/$defs/" + _pointer(f"{key}.").replace("{", "{{").replace("}", "}}")
        config = cls.Config.model_json_schema(
            mode="validation", by_alias=True, ref_template=template + "{model}"
        )
        for nested, nested_schema in config.pop("$defs", {}).items():
            defs[f"{key}.{nested}"] = nested_schema
        config["title"] = f"{name} config"
        config["description"] = describe(cls).description
        defs[key] = config
        branches.append(
            {
                "if": {"properties": {"type": {"const": name}}, "required": ["type"]},
                "then": {"properties": {"config": {"$ref": f"#/$defs/{_pointer(key)}"}}},
            }
        )
    spec["allOf"] = branches


def _pointer(key: str) -> str:
    """``key`` as one JSON Pointer token (RFC 6901), for a ``$ref``."""
    return key.replace("~", "~0").replace("/", "~1")


def _require_personas(dataset: dict[str, Any]) -> None:
    """Conversational rows (the default mode) need ``interlocutor_simulation_prompt``."""
    dataset["if"] = {"properties": {"mode": {"const": "single_turn"}}, "required": ["mode"]}
    dataset["else"] = {
        "properties": {
            "rows": {
                "items": {
                    "properties": {
                        "interlocutor_simulation_prompt": {"type": "string", "pattern": r"\S"}
                    },
                    "required": ["interlocutor_simulation_prompt"],
                }
            }
        }
    }
