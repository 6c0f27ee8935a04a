"""Liquid templates with strict undefined variables: a missing variable is an error, never ''."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from liquid import BoundTemplate, Environment, StrictUndefined
from liquid.exceptions import LiquidError, UndefinedError

_ENV = Environment(undefined=StrictUndefined)


class TemplateError(ValueError):
    """A template that does not parse or render; ``variable`` is set for a missing variable."""

    def __init__(self, message: str, variable: str | None = None) -> None:
        super().__init__(message)
        self.variable = variable


@lru_cache(maxsize=1024)
def _parse(source: str) -> BoundTemplate:
    return _ENV.from_string(source)


def check_syntax(source: str) -> None:
    """Raise TemplateError when ``source`` is not valid Liquid."""
    try:
        _parse(source)
    except LiquidError as exc:
        raise TemplateError(f"invalid Liquid template: {_first_line(exc)}") from None


def render(source: str, variables: dict[str, Any]) -> str:
    """Render ``source`` with ``variables``; a variable the template uses but lacks raises."""
    check_syntax(source)
    try:
        return _parse(source).render(**variables)
    except UndefinedError as exc:
        token = getattr(exc, "token", None)
        name = getattr(token, "value", None) or _first_line(exc)
        raise TemplateError(f"missing template variable {name!r}", variable=name) from None
    except LiquidError as exc:
        raise TemplateError(f"template error: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
