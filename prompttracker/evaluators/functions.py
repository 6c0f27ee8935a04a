"""``function_call``: the assistant called the expected functions, optionally with given arguments.

Config keys, defaults, score and pass rule follow the original PromptTracker
``FunctionCallEvaluator``. Calls are the ``ToolCall`` entries of type ``function`` on the
messages in scope (the whole conversation, or one turn).
"""

from __future__ import annotations

import json
import math
from typing import Any, Self

from pydantic import Field, model_validator

from prompttracker.evaluators.base import EvaluationContext, Evaluator, EvaluatorConfig
from prompttracker.evaluators.text import round_half_up
from prompttracker.messages import ConversationResult, ToolCall
from prompttracker.results import EvaluationResult


def function_calls(conversation: ConversationResult) -> list[ToolCall]:
    """Every function call in ``conversation``, in order (hosted tool calls left out)."""
    return [
        call
        for message in conversation.messages
        for call in message.tool_calls
        if call.type == "function"
    ]


def arguments_match(expected: Any, actual: Any) -> bool:
    """Whether ``actual`` matches ``expected`` as a recursive subset.

    Objects: every expected key is present in ``actual`` and its value matches (extra keys are
    fine). Lists: same length, matched item by item in order (each item recursively, so objects
    in a list are subsets too). Scalars: equal as JSON text, so ``5``, ``5.0`` and ``"5"`` match,
    like the original's ``to_s`` comparison; ``null`` matches only ``null``.
    """
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and arguments_match(value, actual[key]) for key, value in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(arguments_match(e, a) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(actual, dict | list) or (expected is None) != (actual is None):
        return False
    return _scalar_text(expected) == _scalar_text(actual)


def _scalar_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return json.dumps(value)


class FunctionCallEvaluator(Evaluator):
    """The assistant called the ``expected_functions`` (all, or any with ``require_all: false``).

    With ``check_arguments``, a function counts only when one of its calls matches its
    ``expected_arguments`` (a recursive subset). Score: with ``require_all``, the share of
    expected functions matched; otherwise 100 when any matched, else 0. Passes at a score of at
    least ``threshold_score``.
    """

    type = "function_call"
    scope = "conversation"
    requires_tool = "function"

    class Config(EvaluatorConfig):
        expected_functions: list[str] = Field(
            default_factory=list, description="Function names that should be called"
        )
        require_all: bool = Field(
            default=True, description="Every expected function must be called (false: any one)"
        )
        check_arguments: bool = Field(
            default=False, description="Also compare the calls' arguments to expected_arguments"
        )
        expected_arguments: dict[str, dict[str, Any]] = Field(
            default_factory=dict,
            description="Function name → arguments the call must contain (recursive subset)",
        )
        threshold_score: int = Field(
            default=80, ge=0, le=100, description="Passes at a score of at least this"
        )

        @model_validator(mode="after")
        def _check_expected_arguments(self) -> Self:
            unknown = sorted(set(self.expected_arguments) - set(self.expected_functions))
            if unknown:
                raise ValueError(
                    f"expected_arguments names functions not in expected_functions: {unknown}"
                )
            if self.expected_arguments and not self.check_arguments:
                raise ValueError(
                    "expected_arguments is only compared with check_arguments: true; set it"
                )
            return self

    async def check(self, ctx: EvaluationContext) -> EvaluationResult:
        config = self.config
        expected: list[str] = config.expected_functions
        calls = function_calls(ctx.conversation)
        called = list(dict.fromkeys(call.name for call in calls))
        matched, failures = self._match(expected, calls)

        if not expected:
            score = 100
        elif config.require_all:
            score = round_half_up(100 * len(matched) / len(expected))
        else:
            score = 100 if matched else 0
        called_text = ", ".join(called) or "none"
        mismatches = f". Argument mismatches: {'; '.join(failures)}" if failures else ""
        if not expected:
            feedback = "No expected functions specified - evaluation passed by default."
        elif config.require_all and len(matched) == len(expected):
            feedback = f"All expected functions were called: {', '.join(expected)}"
        elif config.require_all:
            missing = [name for name in expected if name not in matched]
            feedback = (
                f"Missing function calls: {', '.join(missing)}. Called: {called_text}{mismatches}"
            )
        elif matched:
            feedback = f"Expected function(s) called: {', '.join(matched)}"
        else:
            feedback = (
                "None of the expected functions were called. Expected one of: "
                f"{', '.join(expected)}. Called: {called_text}{mismatches}"
            )
        return self.result(
            score,
            score >= config.threshold_score,
            feedback,
            expected_functions=expected,
            called_functions=called,
            matched_functions=matched,
            argument_failures=failures,
            threshold_score=config.threshold_score,
            calls=[{"name": c.name, "arguments": c.arguments} for c in calls],
        )

    def _match(self, expected: list[str], calls: list[ToolCall]) -> tuple[list[str], list[str]]:
        """The expected functions that count as called, and why the others' arguments failed."""
        matched: list[str] = []
        failures: list[str] = []
        for name in expected:
            arguments = [call.arguments for call in calls if call.name == name]
            if not arguments:
                continue
            wanted = self.config.expected_arguments.get(name) if self.config.check_arguments else {}
            if not wanted or any(arguments_match(wanted, actual) for actual in arguments):
                matched.append(name)
            else:
                got = json.dumps(arguments[0], ensure_ascii=False, default=str)
                failures.append(f"{name}: expected {json.dumps(wanted)}, got {got}")
        return matched, failures


EVALUATORS: list[type[Evaluator]] = [FunctionCallEvaluator]
