"""``format``: the message is JSON (optionally with required keys and a JSON Schema), Markdown
or plain text.

Config keys, defaults and scores follow the original PromptTracker ``FormatEvaluator``; its
home-made schema format is replaced by real JSON Schema, validated with ``jsonschema`` (and the
schema itself is checked when the YAML is loaded).
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from prompttracker.config.models import PromptVersion
from prompttracker.evaluators.base import EvaluationContext, Evaluator, EvaluatorConfig
from prompttracker.evaluators.patterns import backtracking_risk, search
from prompttracker.evaluators.text import round_half_up
from prompttracker.results import EvaluationResult

MARKDOWN_HEADER = re.compile(r"^#{1,6}\s+\S", re.MULTILINE)
SCHEMA_ERROR_PENALTY = 10  # per JSON Schema violation (the original took 10 per wrong type)
MISSING_KEYS_PENALTY = 50  # times the share of required_keys missing, when a schema is set
STRICT_PENALTY = 20  # extra keys in strict mode
MAX_SCHEMA_ERRORS = 20  # reported in the feedback; the score counts all of them


def schema_validator(schema: dict[str, Any]) -> Any:
    """A ``jsonschema`` validator for ``schema`` (its ``$schema`` draft, else 2020-12), whose
    ``pattern`` keyword matches under the same timeout as ``pattern_match``.

    Raises ``ValueError`` when ``schema`` is not a valid JSON Schema, or holds a ``pattern``
    that backtracks catastrophically.
    """
    from jsonschema import SchemaError
    from jsonschema.validators import extend, validator_for

    cls = validator_for(schema)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        raise ValueError(
            f"schema is not a valid JSON Schema{f' at {where}' if where else ''}: {exc.message}"
        ) from None
    for where, pattern in _patterns(schema, ""):
        if risk := backtracking_risk(pattern):
            raise ValueError(f"schema pattern {pattern!r} at {where or '/'}: {risk}")
    return extend(cls, {"pattern": _pattern_keyword})(schema)


def _patterns(schema: Any, where: str) -> list[tuple[str, str]]:
    """Every ``pattern`` (and ``patternProperties`` key) in ``schema``, with its JSON path."""
    found = []
    if isinstance(schema, dict):
        if isinstance(schema.get("pattern"), str):
            found.append((f"{where}/pattern", schema["pattern"]))
        if isinstance(schema.get("patternProperties"), dict):
            found += [(f"{where}/patternProperties", key) for key in schema["patternProperties"]]
        for key, value in schema.items():
            found += _patterns(value, f"{where}/{key}")
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            found += _patterns(value, f"{where}/{i}")
    return found


def _pattern_keyword(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    """jsonschema's ``pattern``, matched by ``regex`` under ``PATTERN_TIMEOUT_SECONDS``."""
    from jsonschema import ValidationError

    if validator.is_type(instance, "string") and not search(f"/{pattern}/", instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _type_name(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


class FormatEvaluator(Evaluator):
    """The message is valid ``json``, ``markdown`` or ``plain_text``.

    JSON must parse; then ``required_keys`` must be top-level keys, ``schema`` (a JSON Schema)
    must validate, and with ``strict`` no top-level key may be outside ``required_keys`` and the
    schema's ``properties``. Markdown with ``require_headers`` needs a ``#`` header. Plain text
    must not be empty. Passes when every requirement holds (score 100).
    """

    type = "format"

    class Config(EvaluatorConfig):
        format: Literal["json", "markdown", "plain_text"] = Field(
            default="plain_text", description="The format the message must have"
        )
        required_keys: list[str] = Field(
            default_factory=list, description="json: top-level keys that must be present"
        )
        json_schema: dict[str, Any] | Literal["response_format"] | None = Field(
            default=None,
            alias="schema",
            description="json: a JSON Schema the message must validate against, or "
            "'response_format': the version's own model_config.response_format",
        )
        strict: bool = Field(
            default=False,
            description="json: no top-level keys beyond required_keys and the schema's properties",
        )
        require_headers: bool = Field(
            default=False, description="markdown: at least one '#' header line"
        )

        @field_validator("json_schema")
        @classmethod
        def _check_schema(cls, schema: dict[str, Any] | str | None) -> dict[str, Any] | str | None:
            if isinstance(schema, dict):
                schema_validator(schema)
            return schema

        @model_validator(mode="after")
        def _check_keys_fit_format(self) -> Self:
            json_only = {
                "required_keys": bool(self.required_keys),
                "schema": self.json_schema is not None,
                "strict": self.strict,
            }
            misplaced = [key for key, used in json_only.items() if used]
            if self.format != "json" and misplaced:
                raise ValueError(
                    f"{', '.join(misplaced)} only appl{'ies' if len(misplaced) == 1 else 'y'} "
                    "to format: json "
                    f"(format is {self.format!r}); set format: json"
                )
            if self.format != "markdown" and self.require_headers:
                raise ValueError("require_headers only applies to format: markdown")
            return self

    @classmethod
    def version_problem(cls, config: Any, version: PromptVersion, path: str) -> str | None:
        if config.json_schema != "response_format" or version.model_config_.response_format:
            return None
        return (
            f"version {version.version} ({version.model_config_.label}) has no response_format, "
            f"so schema: response_format has no schema to check; add one under "
            f"{path}.model_config.response_format, or give the schema here"
        )

    async def check(self, ctx: EvaluationContext) -> EvaluationResult:
        text = ctx.response
        if self.config.format == "json":
            schema = self.config.json_schema
            if schema == "response_format":
                wanted = ctx.model_config.response_format
                schema = wanted.schema_ if wanted else None
            return self._check_json(text, schema)
        if self.config.format == "markdown":
            return self._check_markdown(text)
        passed = bool(text)
        feedback = "Valid plain text." if passed else "Empty response."
        return self.result(100 if passed else 0, passed, feedback, format="plain_text")

    def _check_markdown(self, text: str) -> EvaluationResult:
        if not text:
            return self.result(0, False, "Empty response.", format="markdown")
        has_headers = bool(MARKDOWN_HEADER.search(text))
        if self.config.require_headers and not has_headers:
            return self.result(
                50, False, "Missing markdown headers.", format="markdown", has_headers=False
            )
        return self.result(
            100, True, "Valid markdown format.", format="markdown", has_headers=has_headers
        )

    def _check_json(self, text: str, schema: dict[str, Any] | None) -> EvaluationResult:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            return self.result(
                0,
                False,
                f"Invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).",
                format="json",
                valid_json=False,
            )
        config = self.config
        problems: list[str] = []
        is_object = isinstance(data, dict)
        if not is_object and (config.required_keys or config.strict):
            problems.append(f"top level is a JSON {_type_name(data)}, not an object")
        keys = list(data) if is_object else []
        missing = [k for k in config.required_keys if is_object and k not in data]
        if missing:
            problems.append(f"missing required keys: {', '.join(missing)}")
        allowed = set(config.required_keys) | set((schema or {}).get("properties") or {})
        extra = [k for k in keys if allowed and k not in allowed] if config.strict else []
        if extra:
            problems.append(f"extra keys not allowed in strict mode: {', '.join(extra)}")
        errors = schema_errors(schema, data) if schema is not None else []
        if errors:
            shown = "; ".join(f"{e['path']}: {e['message']}" for e in errors[:MAX_SCHEMA_ERRORS])
            problems.append(f"schema violations ({len(errors)}): {shown}")

        required = config.required_keys
        if schema is None:
            # As the original's required_keys check: the share of required keys present.
            present = len(required) - len(missing)
            score = round_half_up(100 * present / len(required)) if required else 100
            if not is_object and required:
                score = 0
        else:
            score = 100 - len(errors) * SCHEMA_ERROR_PENALTY
            if required:
                score -= round_half_up(MISSING_KEYS_PENALTY * len(missing) / len(required))
        if extra or (config.strict and not is_object):
            score -= STRICT_PENALTY
        passed = not problems
        if passed:
            feedback = "Valid JSON" + (" matching the schema." if schema else ".")
        else:
            feedback = "Valid JSON, but " + "; ".join(problems) + "."
        return self.result(
            max(0, score),
            passed,
            feedback,
            format="json",
            valid_json=True,
            missing_keys=missing,
            extra_keys=extra,
            schema_errors=errors,
        )


def schema_errors(schema: dict[str, Any], data: Any) -> list[dict[str, str]]:
    """Every way ``data`` breaks ``schema``, in document order."""
    validator = schema_validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    return [
        {"path": e.json_path, "message": e.message, "keyword": str(e.validator)} for e in errors
    ]


EVALUATORS: list[type[Evaluator]] = [FormatEvaluator]
