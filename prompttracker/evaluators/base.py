"""The evaluator extension point: one ``check`` per evaluator type, and turn/role targeting.

Every evaluator looks at one of two things. *Message checks* (length, keyword, format, the LLM
judge…) score one message: by default the last assistant message; with ``turn`` and ``role``
on the spec, that turn's message of that role. *Conversation checks* (the conversation judge,
the tool checks) look at the whole conversation, or with ``turn`` at that turn only. The
selection lives here once: ``Evaluator.evaluate`` narrows the context, then calls ``check``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from prompttracker.config.models import DatasetRow, EvaluatorSpec, ModelConfig, PromptVersion
from prompttracker.config.settings import Settings
from prompttracker.llm.call_layer import CallLayer
from prompttracker.messages import ConversationResult, Message
from prompttracker.results import EvaluationResult

Scope = Literal["message", "conversation"]

# Where each hosted tool's normalized results live in ConversationResult.metadata
# (see llm/tool_results.py). A ToolCall of that type carries the same result as its output.
TOOL_RESULT_KEYS = {
    "file_search": "file_search_results",
    "web_search": "web_search_results",
    "code_interpreter": "code_interpreter_results",
}


class EvaluatorConfig(BaseModel):
    """Base of every evaluator's ``config`` model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


@dataclass(frozen=True)
class EvaluationContext:
    """What every evaluator receives: the normalized conversation and where it came from.

    ``Evaluator.evaluate`` narrows ``conversation`` to the evaluator's target and sets
    ``message`` (message checks) and ``focus`` (what was looked at, in words).
    """

    conversation: ConversationResult
    row: DatasetRow
    system_prompt: str
    model_config: ModelConfig  # the version under test
    judge_config: ModelConfig  # already swapped to mock under --mock
    settings: Settings
    calls: CallLayer | None = None  # the run's call layer, for evaluators that call an LLM
    message: Message | None = None  # the message a message check scores
    focus: str = ""
    whole_conversation: ConversationResult | None = None  # before narrowing

    @property
    def whole(self) -> ConversationResult:
        """The conversation before narrowing (context for judges)."""
        return self.whole_conversation or self.conversation

    @property
    def response(self) -> str:
        """The text a message check scores: the targeted message, else the final response."""
        if self.message is not None:
            return self.message.content
        return self.conversation.final_response


@dataclass(frozen=True)
class Target:
    """What one evaluator looks at after targeting."""

    conversation: ConversationResult  # narrowed: up to the message, or the one turn
    message: Message | None  # message checks only
    focus: str  # e.g. "the last assistant message", "turn 2"


class TargetMissing(Exception):
    """The conversation has no message or turn for the evaluator's ``turn``/``role``."""


def select_target(
    conversation: ConversationResult,
    scope: Scope,
    turn: int | None = None,
    role: str | None = None,
) -> Target:
    """Narrow ``conversation`` to what an evaluator of ``scope`` looks at.

    Message checks get the last message of ``role`` (default assistant), in ``turn`` when set,
    and the conversation up to and including it (context for judges); untargeted, a
    conversation without an assistant message gives no message (an empty response, as in the
    original). Conversation checks get
    the whole conversation, or only the messages of ``turn``, with the hosted-tool results
    rebuilt from that turn's tool calls. Raises ``TargetMissing`` with a readable reason.
    """
    if scope == "message":
        return _message_target(conversation, turn, role)
    if turn is None:
        return Target(conversation, None, "the whole conversation")
    messages = tuple(m for m in conversation.messages if m.turn == turn)
    if not messages:
        raise TargetMissing(_missing_turn(conversation, turn))
    narrowed = conversation.model_copy(
        update={
            "messages": messages,
            "turn_count": sum(1 for m in messages if m.role == "assistant"),
            "response_ids": tuple(m.response_id for m in messages if m.response_id),
            "metadata": turn_metadata(conversation.metadata, messages),
        }
    )
    return Target(narrowed, None, f"turn {turn}")


def turn_metadata(metadata: dict[str, Any], messages: tuple[Message, ...]) -> dict[str, Any]:
    """``metadata`` with the tool-result lists replaced by those of ``messages``' tool calls.

    The conversation's lists are per conversation; the tool calls on each message carry the
    same normalized result as their ``output``, so one turn's results come from its calls.
    """
    scoped = {k: v for k, v in metadata.items() if k not in TOOL_RESULT_KEYS.values()}
    for message in messages:
        for call in message.tool_calls:
            key = TOOL_RESULT_KEYS.get(call.type)
            if key and isinstance(call.output, dict):
                scoped.setdefault(key, []).append(call.output)
    return scoped


def _message_target(conversation: ConversationResult, turn: int | None, role: str | None) -> Target:
    messages = conversation.messages
    if turn is None and role is None and not conversation.assistant_messages():
        # Untargeted, like the original: no assistant answer scores as an empty response.
        return Target(conversation, None, "the last assistant message (there is none)")
    role = role or "assistant"
    positions = [
        i for i, m in enumerate(messages) if m.role == role and (turn is None or m.turn == turn)
    ]
    if not positions:
        if turn is not None and not any(m.turn == turn for m in messages):
            raise TargetMissing(_missing_turn(conversation, turn))
        where = f"turn {turn} has" if turn is not None else "the conversation has"
        raise TargetMissing(f"{where} no {role} message")
    index = positions[-1]
    focus = f"turn {turn}'s {role} message" if turn is not None else f"the last {role} message"
    narrowed = conversation.model_copy(update={"messages": messages[: index + 1]})
    return Target(narrowed, messages[index], focus)


def _missing_turn(conversation: ConversationResult, turn: int) -> str:
    played = max((m.turn for m in conversation.messages), default=0)
    return f"turn {turn} was not played: the conversation has {played} turn(s)"


class Evaluator(ABC):
    """Subclasses set ``type``, ``Config`` and ``scope``, and implement ``check``.

    ``requires_tool`` names what the version under test must offer for the evaluator to have
    anything to read (``function`` or a hosted tool); the loader checks it for every version.
    """

    type: ClassVar[str]
    Config: ClassVar[type[EvaluatorConfig]] = EvaluatorConfig
    scope: ClassVar[Scope] = "message"
    requires_tool: ClassVar[str | None] = None

    def __init__(self, spec: EvaluatorSpec) -> None:
        self.spec = spec
        self.config: Any = self.Config.model_validate(spec.config)

    @classmethod
    def version_problem(cls, config: Any, version: PromptVersion, path: str) -> str | None:
        """Why ``version`` (at ``path``) cannot feed an evaluator with this (valid) ``config``,
        beyond ``requires_tool``; None when it can. The loader asks for every version."""
        return None

    async def evaluate(self, ctx: EvaluationContext) -> EvaluationResult:
        """Narrow ``ctx`` to the spec's turn and role, then ``check`` it.

        A turn or message that does not exist is a failed evaluation that says so, not an error.
        """
        targeted = self.spec.turn is not None or self.spec.role is not None
        try:
            target = select_target(ctx.conversation, self.scope, self.spec.turn, self.spec.role)
        except TargetMissing as exc:
            return self.result(0, False, f"Nothing to evaluate: {exc}.", missing_target=str(exc))
        result = await self.check(
            replace(
                ctx,
                conversation=target.conversation,
                message=target.message,
                focus=target.focus,
                whole_conversation=ctx.whole,
            )
        )
        if targeted:
            result = result.model_copy(
                update={"details": {**result.details, "target": target.focus}}
            )
        return result

    @abstractmethod
    async def check(self, ctx: EvaluationContext) -> EvaluationResult:
        """Score the (already narrowed) conversation in ``ctx``."""

    def result(
        self,
        score: float,
        passed: bool,
        feedback: str,
        *,
        inconclusive: str | None = None,
        **details: Any,
    ) -> EvaluationResult:
        """Build this evaluator's result; scores are clamped to 0–100. ``inconclusive``: why it
        could not decide (it then neither passes nor fails)."""
        return EvaluationResult(
            evaluator=self.spec.label,
            type=self.type,
            score=max(0.0, min(100.0, float(score))),
            passed=passed and not inconclusive,
            feedback=feedback,
            details=details,
            inconclusive=inconclusive,
        )
