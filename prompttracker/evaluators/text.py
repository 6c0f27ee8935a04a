"""Rule-based message checks: length, keyword, exact and pattern match.

Each scores one message: the final assistant response, or the one a spec's ``turn``/``role`` picks.

Config keys, defaults, scores and pass rules follow the original PromptTracker engine.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from prompttracker.evaluators.base import EvaluationContext, Evaluator, EvaluatorConfig
from prompttracker.evaluators.patterns import pattern_problem, search
from prompttracker.results import EvaluationResult

PREVIEW_CHARS = 100


def round_half_up(value: float) -> int:
    """Round like the original (Ruby rounds halves away from zero; Python rounds them to even)."""
    return math.floor(value + 0.5)


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[:limit] + "..."


class LengthEvaluator(Evaluator):
    """The message is between ``min_length`` and ``max_length`` characters (inclusive).

    Score 100 inside the range, 0 outside it; passes inside the range.
    """

    type = "length"

    class Config(EvaluatorConfig):
        min_length: int = Field(default=10, ge=0, description="Fewest characters allowed")
        max_length: int = Field(default=2000, ge=0, description="Most characters allowed")

        @field_validator("max_length")
        @classmethod
        def _check_range(cls, max_length: int, info: ValidationInfo) -> int:
            min_length = info.data.get("min_length", 0)
            if min_length > max_length:
                raise ValueError(
                    f"max_length ({max_length}) is below min_length ({min_length}, "
                    "which defaults to 10)"
                )
            return max_length

    async def check(self, ctx: EvaluationContext) -> EvaluationResult:
        length = len(ctx.response)
        low, high = self.config.min_length, self.config.max_length
        passed = low <= length <= high
        if length < low:
            feedback = f"Response is too short ({length} chars). Minimum: {low} chars."
        elif length > high:
            feedback = f"Response is too long ({length} chars). Maximum: {high} chars."
        else:
            feedback = f"Response length is acceptable ({length} chars). Range: {low}-{high} chars."
        return self.result(
            100 if passed else 0,
            passed,
            feedback,
            response_length=length,
            min_length=low,
            max_length=high,
        )


class KeywordEvaluator(Evaluator):
    """Required keywords must appear in the message and forbidden ones must not.

    Matching is by substring. Score: the share of required keywords present; with only forbidden
    keywords, 100 minus the share present; with both, 70% required and 30% forbidden-avoidance.
    Passes when every required keyword is present and no forbidden one is.
    """

    type = "keyword"

    class Config(EvaluatorConfig):
        required_keywords: list[str] = Field(
            default_factory=list, description="Substrings that must all appear"
        )
        forbidden_keywords: list[str] = Field(
            default_factory=list, description="Substrings that must not appear"
        )
        case_sensitive: bool = Field(default=False, description="Match case exactly")

    def _contains(self, text: str, keyword: str) -> bool:
        if self.config.case_sensitive:
            return keyword in text
        return keyword.lower() in text.lower()

    async def check(self, ctx: EvaluationContext) -> EvaluationResult:
        text = ctx.response
        required: list[str] = self.config.required_keywords
        forbidden: list[str] = self.config.forbidden_keywords
        missing = [k for k in required if not self._contains(text, k)]
        found_forbidden = [k for k in forbidden if self._contains(text, k)]

        required_score = 100 * (len(required) - len(missing)) / len(required) if required else 0
        avoided_score = 100 - 100 * len(found_forbidden) / len(forbidden) if forbidden else 0
        if not required and not forbidden:
            score = 100
        elif not forbidden:
            score = round_half_up(required_score)
        elif not required:
            score = round_half_up(avoided_score)
        else:
            score = round_half_up(required_score * 0.7 + avoided_score * 0.3)

        parts = []
        if missing:
            parts.append(f"Missing required keywords: {', '.join(missing)}")
        if found_forbidden:
            parts.append(f"Contains forbidden keywords: {', '.join(found_forbidden)}")
        feedback = ". ".join(parts) if parts else "All keyword requirements met."
        return self.result(
            score,
            not missing and not found_forbidden,
            feedback,
            missing_required=missing,
            found_forbidden=found_forbidden,
            case_sensitive=self.config.case_sensitive,
        )


class ExactMatchEvaluator(Evaluator):
    """The message equals ``expected_text`` (by default ignoring case and outer whitespace).

    Score 100 on a match, 0 otherwise.
    """

    type = "exact_match"

    class Config(EvaluatorConfig):
        expected_text: str = Field(default="", description="The text the message must equal")
        case_sensitive: bool = Field(default=False, description="Compare case exactly")
        trim_whitespace: bool = Field(
            default=True, description="Ignore leading and trailing whitespace"
        )

    def _normalize(self, text: str) -> str:
        if self.config.trim_whitespace:
            text = text.strip()
        return text if self.config.case_sensitive else text.lower()

    async def check(self, ctx: EvaluationContext) -> EvaluationResult:
        expected = self._normalize(self.config.expected_text)
        actual = self._normalize(ctx.response)
        passed = expected == actual
        if passed:
            feedback = "Response exactly matches the expected text."
        else:
            feedback = (
                "Response does not match the expected text.\n"
                f'Expected: "{preview(expected)}"\nActual: "{preview(actual)}"'
            )
        return self.result(100 if passed else 0, passed, feedback)


# "/body/flags" is a regular expression; anything else is matched literally, as in the original.
class PatternMatchEvaluator(Evaluator):
    """The message matches the ``patterns`` (all of them, or any with ``match_all: false``).

    A pattern written ``/body/flags`` is a regular expression (``/refund(ed)?/i``); plain text is
    searched for literally. Invalid regexes are rejected when the YAML is loaded.
    Score 100 when it passes, 0 otherwise.
    """

    type = "pattern_match"

    class Config(EvaluatorConfig):
        patterns: list[str] = Field(
            min_length=1, description="/regex/flags (flags i, m, s, x) or literal text"
        )
        match_all: bool = Field(
            default=True, description="All patterns must match (false: any one is enough)"
        )

        @field_validator("patterns")
        @classmethod
        def _compile(cls, patterns: list[str]) -> list[str]:
            problems = [p for pattern in patterns if (p := pattern_problem(pattern))]
            if problems:
                raise ValueError("; ".join(problems))
            return patterns

    async def check(self, ctx: EvaluationContext) -> EvaluationResult:
        text = ctx.response
        patterns: list[str] = self.config.patterns
        # Off the event loop: the run goes on, and Ctrl-C works, while a pattern is matched.
        hits = [await asyncio.to_thread(search, p, text) for p in patterns]
        matched = [p for p, hit in zip(patterns, hits, strict=True) if hit]
        unmatched = [p for p in patterns if p not in matched]
        passed = not unmatched if self.config.match_all else bool(matched)
        if not unmatched:
            feedback = f"All {len(patterns)} pattern(s) matched."
        elif self.config.match_all:
            feedback = f"Failed to match {len(unmatched)} pattern(s): {', '.join(unmatched)}"
        elif matched:
            feedback = f"Matched {', '.join(matched)}; did not match {', '.join(unmatched)}"
        else:
            feedback = f"No pattern matched. Tried: {', '.join(patterns)}"
        details: dict[str, Any] = {"matched": matched, "unmatched": unmatched}
        return self.result(100 if passed else 0, passed, feedback, **details)


EVALUATORS: list[type[Evaluator]] = [
    LengthEvaluator,
    KeywordEvaluator,
    ExactMatchEvaluator,
    PatternMatchEvaluator,
]
