"""The evaluator extension point: one ``evaluate`` per evaluator type."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from prompttracker.config.models import DatasetRow, EvaluatorSpec, ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.messages import ConversationResult
from prompttracker.results import EvaluationResult


class EvaluatorConfig(BaseModel):
    """Base of every evaluator's ``config`` model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class EvaluationContext:
    """What every evaluator receives: the normalized conversation and where it came from."""

    conversation: ConversationResult
    row: DatasetRow
    system_prompt: str
    model_config: ModelConfig  # the version under test
    judge_config: ModelConfig  # already swapped to mock under --mock
    settings: Settings


class Evaluator(ABC):
    """Subclasses set ``type`` and ``Config`` and implement ``evaluate``."""

    type: ClassVar[str]
    Config: ClassVar[type[EvaluatorConfig]] = EvaluatorConfig

    def __init__(self, spec: EvaluatorSpec) -> None:
        self.spec = spec
        self.config: Any = self.Config.model_validate(spec.config)

    @abstractmethod
    async def evaluate(self, ctx: EvaluationContext) -> EvaluationResult:
        """Score the conversation in ``ctx``."""

    def result(self, score: float, passed: bool, feedback: str, **details: Any) -> EvaluationResult:
        """Build this evaluator's result; scores are clamped to 0–100."""
        return EvaluationResult(
            evaluator=self.spec.label,
            type=self.type,
            score=max(0.0, min(100.0, float(score))),
            passed=passed,
            feedback=feedback,
            details=details,
        )
