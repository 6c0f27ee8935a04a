"""What ``pt evaluators list`` shows: every evaluator type and its config keys, read from the
Config models themselves (nothing here is maintained by hand)."""

from __future__ import annotations

import inspect
import types
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ConfigDict
from pydantic.fields import FieldInfo

from prompttracker.evaluators.base import Evaluator, Scope
from prompttracker.evaluators.registry import evaluator_types

LOOKS_AT: dict[Scope, str] = {
    "message": "one message (default: the last assistant message)",
    "conversation": "the whole conversation (or one turn)",
}


class ConfigKey(BaseModel):
    """One key of an evaluator's ``config``."""

    model_config = ConfigDict(frozen=True)

    name: str
    type: str
    required: bool
    default: Any = None
    constraints: str = ""
    description: str = ""


class EvaluatorInfo(BaseModel):
    """One evaluator type: what it checks, what it looks at, what it needs, its keys."""

    model_config = ConfigDict(frozen=True)

    type: str
    description: str
    scope: Scope
    looks_at: str
    requires_tool: str | None = None
    keys: tuple[ConfigKey, ...] = ()


def catalog() -> list[EvaluatorInfo]:
    """Every registered evaluator type, in registry order."""
    return [describe(cls) for cls in evaluator_types().values()]


def describe(cls: type[Evaluator]) -> EvaluatorInfo:
    """One evaluator class as an ``EvaluatorInfo``."""
    doc = inspect.getdoc(cls) or ""
    return EvaluatorInfo(
        type=cls.type,
        description=" ".join(doc.split("\n\n")[0].split()).replace("``", ""),
        scope=cls.scope,
        looks_at=LOOKS_AT[cls.scope],
        requires_tool=cls.requires_tool,
        keys=tuple(
            config_key(field.alias or name, field)
            for name, field in cls.Config.model_fields.items()
        ),
    )


def config_key(name: str, field: FieldInfo) -> ConfigKey:
    """A config field's name (its YAML spelling), type, default and constraints."""
    required = field.is_required()
    return ConfigKey(
        name=name,
        type=type_label(field.annotation),
        required=required,
        default=None if required else field.get_default(call_default_factory=True),
        constraints=constraints_label(field),
        description=field.description or "",
    )


def type_label(annotation: Any) -> str:
    """A short, YAML-minded name for a type: ``list[str]``, ``int | null``, ``"a" | "b"``."""
    origin = get_origin(annotation)
    args = get_args(annotation)
    if annotation is type(None):
        return "null"
    if annotation is Any:
        return "any"
    if origin is Literal:
        return " | ".join(f'"{a}"' if isinstance(a, str) else str(a) for a in args)
    if origin in (Union, types.UnionType):
        return " | ".join(type_label(a) for a in args)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(type_label(a) for a in args)}]"
    return getattr(annotation, "__name__", str(annotation))


_BOUNDS = {
    annotated_types.Ge: ("≥", "ge"),
    annotated_types.Gt: (">", "gt"),
    annotated_types.Le: ("≤", "le"),
    annotated_types.Lt: ("<", "lt"),
}


def constraints_label(field: FieldInfo) -> str:
    """Bounds and minimum lengths from the field's metadata, e.g. ``≥ 0, ≤ 100``."""
    parts = []
    for item in field.metadata:
        for kind, (symbol, attr) in _BOUNDS.items():
            if isinstance(item, kind):
                parts.append(f"{symbol} {getattr(item, attr)}")
        if isinstance(item, annotated_types.MinLen):
            parts.append("not empty" if item.min_length == 1 else f"length ≥ {item.min_length}")
    return ", ".join(parts)
