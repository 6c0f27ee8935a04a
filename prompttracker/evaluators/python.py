"""``python``: a check written in Python, and evaluator types that other packages register.

A ``python`` evaluator names a function, ``function: package.module:name``, imported from the
project root (which ``load_project`` puts first on ``sys.path``) or the environment. The
function gets what every built-in evaluator gets, an ``EvaluationContext`` (already narrowed to
the spec's ``turn`` and ``role``), and the config's ``args`` as keyword arguments; it returns
a ``Verdict``, a ``bool`` (passed, score 100 or 0) or a number (a score 0–100 that passes at
``threshold_score``). It may be ``async``; a plain function runs in a worker thread, so a slow
one cannot stall the other test runs, and either is given up after ``timeout_seconds``.

Whether the function imports and can take those arguments is checked when the files load, so
a typo is bad input (exit 2), not an error in every test run. An exception while it runs is an
errored evaluation, like any evaluator's.

Other packages add evaluator types through the ``prompttracker.evaluators`` entry point group:
each entry point's name is the type, its value an ``Evaluator`` subclass (``plugin_types``).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, partial
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from prompttracker.evaluators.base import EvaluationContext, Evaluator, EvaluatorConfig
from prompttracker.results import EvaluationResult

ENTRY_POINT_GROUP = "prompttracker.evaluators"
FUNCTION_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


@dataclass(frozen=True)
class Verdict:
    """What a Python check returns when a bool or a number is not enough."""

    score: float  # 0–100
    passed: bool | None = None  # None: passes at the evaluator's threshold_score
    feedback: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def add_import_root(root: Path) -> None:
    """Let ``function: module:name`` find the project's own modules (once per root)."""
    path = str(root.resolve())
    if path not in sys.path:
        sys.path.insert(0, path)


def load_function(path: str) -> Callable[..., Any]:
    """The function ``module:name`` names. ``ValueError`` saying what is wrong when it does
    not import or is not callable."""
    module_name, _, name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module may raise anything while it loads
        raise ValueError(
            f"cannot import {module_name!r} ({type(exc).__name__}: {exc}); the module must be "
            "importable from the project root or the environment"
        ) from None
    function = getattr(module, name, None)
    if function is None:
        known = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise ValueError(
            f"{module_name!r} has no {name!r}"
            + (f" (its functions: {', '.join(known[:10])})" if known else "")
        )
    if not callable(function):
        raise ValueError(f"{path} is a {type(function).__name__}, not a function")
    return function


class PythonEvaluator(Evaluator):
    """Your own check in Python: ``function: package.module:name``, called with the
    evaluation context and ``args``; it returns a Verdict, a bool or a score 0–100."""

    type = "python"

    class Config(EvaluatorConfig):
        function: str = Field(
            pattern=FUNCTION_PATH.pattern,
            description="The check to call, as package.module:function",
        )
        args: dict[str, Any] = Field(
            default_factory=dict, description="Keyword arguments the function is called with"
        )
        threshold_score: float = Field(
            default=70, ge=0, le=100, description="A returned score passes at this or more"
        )
        timeout_seconds: float = Field(
            default=30, gt=0, le=3600, description="Give the function up after this long"
        )

        @field_validator("function")
        @classmethod
        def _importable(cls, path: str) -> str:
            if FUNCTION_PATH.match(path):
                load_function(path)
            return path

        @model_validator(mode="after")
        def _takes_the_arguments(self) -> PythonEvaluator.Config:
            function = load_function(self.function)
            try:
                signature = inspect.signature(function)
            except (TypeError, ValueError):
                return self  # a builtin without a signature: the call will tell
            try:
                signature.bind(None, **self.args)
            except TypeError as exc:
                raise ValueError(
                    f"{self.function}{signature} cannot be called with the evaluation context "
                    f"and args {sorted(self.args)}: {exc}; it must take the context as its first "
                    "argument and each key of args as a keyword"
                ) from None
            return self

    async def check(self, ctx: EvaluationContext) -> EvaluationResult:
        function = load_function(self.config.function)
        call = partial(function, ctx, **self.config.args)
        timeout = self.config.timeout_seconds
        try:
            if inspect.iscoroutinefunction(function):
                returned = await asyncio.wait_for(call(), timeout)
            else:
                returned = await asyncio.wait_for(asyncio.to_thread(call), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"{self.config.function} did not return within {timeout:g} s (timeout_seconds)"
            ) from None
        return self._result(returned)

    def _result(self, returned: Any) -> EvaluationResult:
        threshold = self.config.threshold_score
        if isinstance(returned, Verdict):
            score = _score(returned.score, self.config.function)
            passed = score >= threshold if returned.passed is None else bool(returned.passed)
            return self.result(score, passed, returned.feedback, **returned.details)
        if isinstance(returned, bool):
            return self.result(100 if returned else 0, returned, "")
        if isinstance(returned, int | float):
            score = _score(returned, self.config.function)
            return self.result(
                score, score >= threshold, f"score {score:g} (threshold {threshold:g})"
            )
        raise TypeError(
            f"{self.config.function} returned {type(returned).__name__}; return a "
            "prompttracker.evaluators.python.Verdict, a bool or a score 0–100"
        )


def _score(value: Any, function: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TypeError(f"{function} gave the score {value!r}; a score is a number 0–100")
    if not 0 <= value <= 100:
        raise ValueError(f"{function} gave the score {value:g}; a score is 0–100")
    return float(value)


@dataclass(frozen=True)
class BrokenPlugin:
    """An entry point that did not load: its name, where it points, and why."""

    name: str
    value: str
    error: str


@cache
def plugin_types() -> tuple[dict[str, type[Evaluator]], tuple[BrokenPlugin, ...]]:
    """Evaluator types from the ``prompttracker.evaluators`` entry points, and those that did
    not load (a broken plugin never breaks pt; a test that uses its type says why)."""
    found: dict[str, type[Evaluator]] = {}
    broken: list[BrokenPlugin] = []
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = point.load()
            if not (isinstance(cls, type) and issubclass(cls, Evaluator)):
                raise TypeError("it is not a prompttracker Evaluator subclass")
            if getattr(cls, "type", None) != point.name:
                raise TypeError(f"its type is {getattr(cls, 'type', None)!r}, not {point.name!r}")
        except Exception as exc:  # a third-party package may fail in any way
            broken.append(BrokenPlugin(point.name, point.value, f"{type(exc).__name__}: {exc}"))
            continue
        found[point.name] = cls
    return found, tuple(broken)


EVALUATORS: list[type[Evaluator]] = [PythonEvaluator]
