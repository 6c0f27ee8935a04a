"""Liquid templates with strict undefined variables (a missing variable is an error, never '')
and resource limits: a template cannot hang ``pt`` or exhaust its memory.

A prompt is text for a model, so the limits sit far above any real prompt and far below harm:
``MAX_OUTPUT`` characters out, ``MAX_LOOP_ITERATIONS`` loop turns in all, values (strings,
lists, ranges) of at most ``MAX_OUTPUT`` items, integers of at most ``MAX_INT_BITS`` bits and
``RENDER_SECONDS`` of rendering. A template that reaches one raises ``TemplateError`` with
``kind == "limit"``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Literal

from liquid import BoundTemplate, Environment, StrictUndefined
from liquid.context import RenderContext
from liquid.exceptions import LiquidError, ResourceLimitError, UndefinedError
from liquid.output import LimitedStringIO

MAX_OUTPUT = 4_000_000
MAX_LOOP_ITERATIONS = 100_000
MAX_INT_BITS = 4_096
RENDER_SECONDS = 2.0

Kind = Literal["syntax", "variable", "limit", "render"]


class TemplateError(ValueError):
    """A template that does not parse or render. ``kind`` says why; ``variable`` names a
    missing variable."""

    def __init__(self, message: str, kind: Kind = "render", variable: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.variable = variable


class _TooMuch(ResourceLimitError):
    def __init__(self, what: str) -> None:
        super().__init__(what, token=None)


class _Buffer(LimitedStringIO):
    """The output, limited in size; every write also checks the render's deadline."""

    def __init__(self, limit: int, deadline: float) -> None:
        super().__init__(limit=limit)
        self.deadline = deadline

    def write(self, text: str) -> int:
        _check_deadline(self.deadline)
        return super().write(text)


class _Context(RenderContext):
    """Checks the deadline on every variable lookup and filter, and the size of what filters
    take and make (a filter chain can grow a string exponentially within one output tag)."""

    deadline = float("inf")

    def get(self, *args: Any, **kwargs: Any) -> Any:
        _check_deadline(self.deadline)
        return super().get(*args, **kwargs)

    def get_buffer(self, buf: Any = None) -> Any:
        carry = buf.size if isinstance(buf, LimitedStringIO) else 0
        return _Buffer(MAX_OUTPUT - carry, self.deadline)

    def copy(self, *args: Any, **kwargs: Any) -> Any:
        context = super().copy(*args, **kwargs)
        context.deadline = self.deadline
        return context

    def filter(self, name: str, token: Any) -> Callable[..., object]:
        func = super().filter(name, token)
        deadline = self.deadline

        def guarded(left: object, *args: object, **kwargs: object) -> object:
            _check_deadline(deadline)
            for value in (left, *args, *kwargs.values()):
                _check_value(value, f"the input of `{name}`")
            _check_growth(name, left, args)
            result = func(left, *args, **kwargs)
            _check_value(result, f"the result of `{name}`")
            return result

        return guarded


class _Template(BoundTemplate):
    context_class = _Context

    def render(self, *args: Any, **kwargs: Any) -> str:
        context = _Context(self, globals=self.make_globals(dict(*args, **kwargs)))
        context.deadline = time.monotonic() + RENDER_SECONDS
        buffer = _Buffer(MAX_OUTPUT, context.deadline)
        self.render_with_context(context, buffer)
        return buffer.getvalue()


class _Environment(Environment):
    template_class = _Template
    loop_iteration_limit = MAX_LOOP_ITERATIONS
    output_stream_limit = MAX_OUTPUT
    local_namespace_limit = 4 * MAX_OUTPUT  # sys.getsizeof of the assigned values


_ENV = _Environment(undefined=StrictUndefined)


def _check_deadline(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise _TooMuch(f"rendering took longer than {RENDER_SECONDS:g} s")


def _check_value(value: object, what: str) -> None:
    if isinstance(value, (str, list, tuple, range, dict)) and len(value) > MAX_OUTPUT:
        unit = "characters" if isinstance(value, str) else "items"
        raise _TooMuch(f"{what} has more than {MAX_OUTPUT:,} {unit}")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise _TooMuch(f"{what} is a number of more than {MAX_INT_BITS:,} bits")


def _check_growth(name: str, left: object, args: tuple[object, ...]) -> None:
    """The two built-in filters whose result can be far larger than their inputs together."""
    size: int | None = None
    if name == "replace" and isinstance(left, str) and len(args) >= 2:
        old, new = str(args[0]), str(args[1])
        count = left.count(old) if old else len(left) + 1
        size = len(left) + count * (len(new) - len(old))
    elif name == "join" and isinstance(left, (list, tuple, range)):
        separator = len(str(args[0])) if args else 1
        size = sum(len(str(item)) for item in left) + separator * max(len(left) - 1, 0)
    if size is not None and size > MAX_OUTPUT:
        raise _TooMuch(f"the result of `{name}` would have more than {MAX_OUTPUT:,} characters")


@lru_cache(maxsize=1024)
def _parse(source: str) -> BoundTemplate:
    return _ENV.from_string(source)


def check_syntax(source: str) -> None:
    """Raise TemplateError (``kind == "syntax"``) when ``source`` is not valid Liquid."""
    try:
        _parse(source)
    except LiquidError as exc:
        token = getattr(exc, "token", None)
        at = getattr(token, "start_index", -1)
        where = f" (line {source.count(chr(10), 0, at) + 1} of the template)" if at >= 0 else ""
        raise TemplateError(
            f"invalid Liquid template{where}: {_first_line(exc)}; fix the tag, or wrap text "
            "that should reach the model as written (a JSON example, say) in "
            "{% raw %}…{% endraw %}",
            "syntax",
        ) from None
    except RecursionError:
        raise TemplateError("invalid Liquid template: nested too deeply", "syntax") from None


def render(source: str, variables: dict[str, Any]) -> str:
    """Render ``source`` with ``variables``; a variable the template uses but lacks raises."""
    check_syntax(source)
    try:
        return _parse(source).render(**variables)
    except UndefinedError as exc:
        token = getattr(exc, "token", None)
        name = getattr(token, "value", None) or _first_line(exc)
        raise TemplateError(
            f"missing template variable {name!r}", "variable", variable=name
        ) from None
    except ResourceLimitError as exc:
        raise TemplateError(
            f"the template is too costly to render ({_reason(exc)}); a prompt template may "
            f"loop {MAX_LOOP_ITERATIONS:,} times in all and make {MAX_OUTPUT:,} characters",
            "limit",
        ) from None
    except (MemoryError, RecursionError) as exc:
        raise TemplateError(
            f"the template is too costly to render ({type(exc).__name__})", "limit"
        ) from None
    except LiquidError as exc:
        raise TemplateError(f"template error: {_first_line(exc)}") from None


def _reason(exc: ResourceLimitError) -> str:
    text = _first_line(exc)
    return {
        "loop iteration limit reached": f"its loops run more than {MAX_LOOP_ITERATIONS:,} times",
        "output stream limit reached": f"it makes more than {MAX_OUTPUT:,} characters",
        "local namespace limit reached": "its assigned values grow too large",
    }.get(text, text)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
