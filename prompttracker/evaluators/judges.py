"""LLM judges: ``llm_judge`` scores the final response, ``conversation_judge`` each message.

The judge model comes from the project settings (``ctx.judge_config``, already the mock under
``--mock``), is called through the routing table at temperature 0 with structured JSON output,
and every prompt and raw answer is kept in the evaluation's details.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import re
import statistics
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from prompttracker.config.models import ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.evaluators.base import EvaluationContext, Evaluator, EvaluatorConfig
from prompttracker.evaluators.text import preview
from prompttracker.llm import router
from prompttracker.llm.base import JsonSchema
from prompttracker.llm.call_layer import CallLayer
from prompttracker.messages import AssistantTurn, Message
from prompttracker.results import EvaluationResult

# Feedback comes first so that the judge explains itself before it commits to a number.
# Every property is required and no others are allowed: OpenAI's strict mode demands both.
JUDGE_SCHEMA = JsonSchema(
    name="evaluation",
    schema={
        "type": "object",
        "properties": {
            "feedback": {
                "type": "string",
                "description": "Concrete explanation of the score: what was good, what was missing",
            },
            "score": {
                "type": "integer",
                "description": "0 (fails the instructions completely) to 100 (meets them fully)",
            },
        },
        "required": ["feedback", "score"],
        "additionalProperties": False,
    },
)

JUDGE_SYSTEM_PROMPT = (
    "You are an expert evaluator of AI assistant responses. Judge strictly by the evaluation "
    "instructions you are given. Answer only with a JSON object with two keys: "
    '"feedback" (a short, concrete explanation) and "score" (an integer from 0 to 100).'
)

ANSWER_FORMAT = (
    'Answer with JSON: "feedback" — a short, concrete explanation of your judgement — and '
    '"score" — an integer from 0 (worst) to 100 (best).'
)

RAW_IN_ERROR_CHARS = 1000
TOOL_OUTPUT_CHARS = 500


@dataclasses.dataclass(frozen=True)
class Judgement:
    """One answer of the judge: its score, or why none could be read from it."""

    raw_response: str
    score: float | None = None
    feedback: str = ""
    repaired: str | None = None  # how an answer that was not plain JSON was read
    unreadable: str | None = None  # why no score could be read, even after repair


@dataclasses.dataclass(frozen=True)
class Ballot:
    """A judge's votes on one prompt: the median score and the majority verdict, or why the
    votes decide nothing (``inconclusive``). One vote is a ballot of one."""

    judgements: tuple[Judgement, ...]
    threshold: float
    max_spread: float

    @property
    def scores(self) -> list[float]:
        return [j.score for j in self.judgements if j.score is not None]

    @property
    def score(self) -> float | None:
        """The median of the scores that could be read."""
        return statistics.median(self.scores) if self.scores else None

    @property
    def passes(self) -> int:
        return sum(score >= self.threshold for score in self.scores)

    @property
    def passed(self) -> bool:
        """A majority of the readable votes pass (never when inconclusive)."""
        return self.inconclusive is None and self.passes * 2 > len(self.scores)

    @property
    def inconclusive(self) -> str | None:
        """Why the votes decide nothing: too few could be read, or they disagree."""
        votes, scores = len(self.judgements), self.scores
        if len(scores) * 2 <= votes:
            reasons = list(dict.fromkeys(j.unreadable for j in self.judgements if j.unreadable))
            if votes == 1:
                return reasons[0]
            return f"only {len(scores)} of {votes} judge answers could be read: {reasons[0]}"
        if len(scores) < 2:
            return None
        shown = ", ".join(f"{score:g}" for score in scores)
        spread = max(scores) - min(scores)
        if spread > self.max_spread:
            return (
                f"the votes disagree: scores {shown} spread {spread:g} points, more than "
                f"max_spread {self.max_spread:g}"
            )
        if self.passes * 2 == len(scores):
            return f"the votes are split: scores {shown}, {self.passes} of {len(scores)} pass"
        return None

    @property
    def repaired(self) -> str | None:
        return next((j.repaired for j in self.judgements if j.repaired), None)

    @property
    def feedback(self) -> str:
        """The first readable vote's feedback (with how it was repaired), after the tally."""
        first = next((j for j in self.judgements if j.score is not None), None)
        said = f"{repaired_note(first)}{first.feedback}" if first else ""
        if len(self.judgements) == 1:
            return said if first else f"Inconclusive: {self.inconclusive}"
        median = "none" if self.score is None else f"{self.score:g}"
        tally = (
            f"Median score {median} of {len(self.judgements)} votes "
            f"({', '.join('?' if j.score is None else f'{j.score:g}' for j in self.judgements)}); "
            f"{self.passes} pass."
        )
        return f"{tally} {said}".strip()

    def details(self) -> dict[str, Any]:
        """The raw answer (the first vote's) and how it was read; every vote with several."""
        first = self.judgements[0]
        details: dict[str, Any] = {"raw_response": first.raw_response, "repaired": self.repaired}
        if len(self.judgements) > 1:
            details["votes"] = [dataclasses.asdict(j) for j in self.judgements]
        return details


def judge_model_config(
    ctx: EvaluationContext, judge_model: str | None, temperature: float = 0
) -> ModelConfig:
    """The judge's model config: the project's judge, optionally another model, at
    ``temperature`` (0, unless it votes)."""
    update: dict[str, Any] = {"temperature": temperature}
    if judge_model:
        update["model"] = judge_model
    return ctx.judge_config.model_copy(update=update)


def format_transcript(messages: Sequence[Message]) -> str:
    """The conversation as ``ROLE: content`` blocks, with the tool calls the assistant made."""
    blocks = []
    for message in messages:
        lines = [f"{message.role.upper()}: {message.content}"]
        for call in message.tool_calls:
            arguments = json.dumps(call.arguments, ensure_ascii=False, default=str)
            line = f"  [{call.type} call] {call.name}({arguments})"
            if call.output is not None:
                output = json.dumps(call.output, ensure_ascii=False, default=str)
                line += f" -> {preview(output, TOOL_OUTPUT_CHARS)}"
            lines.append(line)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def system_prompt_section(system_prompt: str) -> str:
    """Context on what the assistant was told to do; empty when it had no system prompt."""
    if not system_prompt.strip():
        return ""
    return f"SYSTEM PROMPT OF THE ASSISTANT UNDER TEST:\n{system_prompt.strip()}\n\n"


def parse_judgement(raw: str) -> tuple[float, str]:
    """``(score, feedback)`` from the judge's JSON answer, the score clamped to 0–100.

    Raises ``ValueError`` (quoting the answer) when it is not JSON or has no numeric score.
    """
    text = raw.strip()
    # Some providers wrap JSON in a Markdown fence even when asked for JSON.
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    quoted = preview(raw, RAW_IN_ERROR_CHARS)
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(f"judge answer is not JSON: {quoted!r}") from None
    return _judgement_of(data, quoted)


def _judgement_of(data: Any, quoted: str) -> tuple[float, str]:
    score = data.get("score") if isinstance(data, dict) else None
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        raise ValueError(f"judge answer has no numeric 'score': {quoted!r}")
    feedback = data.get("feedback", "")
    if not isinstance(feedback, str):
        feedback = json.dumps(feedback, ensure_ascii=False)
    return max(0.0, min(100.0, float(score))), feedback


# "Score: 85", "score = 85/100", "**Score**: 85" — what a judge without structured output writes.
SCORE_LINE = re.compile(r"\bscore\W{0,6}(\d{1,3}(?:\.\d+)?)\s*(?:/\s*100\b)?", re.IGNORECASE)


def repair_judgement(raw: str) -> tuple[float, str, str]:
    """``(score, feedback, how)`` from an answer that is not plain JSON: a JSON object with a
    ``score`` inside prose or a code fence, else a ``Score: NN`` line (the rest is the
    feedback). Servers that ignore structured output answer like that. ``ValueError`` when
    neither is there."""
    quoted = preview(raw, RAW_IN_ERROR_CHARS)
    decoder = json.JSONDecoder()
    for start in (i for i, char in enumerate(raw) if char == "{"):
        try:
            data, _ = decoder.raw_decode(raw, start)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and "score" in data:
            score, feedback = _judgement_of(data, quoted)
            return score, feedback, "took the JSON object out of the prose around it"
    found = SCORE_LINE.search(raw)
    if found:
        score = max(0.0, min(100.0, float(found.group(1))))
        rest = " ".join((raw[: found.start()] + " " + raw[found.end() :]).split())
        feedback = rest.strip(" *_:-—–,;")  # what is left of "**Score**: 7 — …"
        return score, feedback, f"read {found.group(0).strip()!r} from a prose answer"
    raise ValueError(f"judge answer is not JSON and holds no score: {quoted!r}")


async def ask_judge_model(
    config: ModelConfig,
    settings: Settings,
    system_prompt: str,
    prompt: str,
    schema: JsonSchema,
    calls: CallLayer | None = None,
    sample: int = 0,
) -> AssistantTurn:
    """One prompt to the judge model with structured output, through the routing table, as a
    judge's call (its accounting and its errors say "judge")."""
    return await router.complete(
        config,
        settings,
        system_prompt=system_prompt,
        messages=[Message(role="user", content=prompt, turn=1)],
        response_format=schema,
        calls=calls,
        caller="judge",
        sample=sample,
    )


async def ask_judge(
    config: ModelConfig,
    settings: Settings,
    prompt: str,
    calls: CallLayer | None = None,
    sample: int = 0,
) -> Judgement:
    """Send one judge prompt through the routing table and read the structured answer; an
    answer in prose is repaired when it holds a score. One that cannot be read says why (and
    that it was cut at the token cap, when it was)."""
    turn = await ask_judge_model(
        config, settings, JUDGE_SYSTEM_PROMPT, prompt, JUDGE_SCHEMA, calls, sample
    )
    raw = turn.content
    try:
        score, feedback = parse_judgement(raw)
        return Judgement(raw_response=raw, score=score, feedback=feedback)
    except ValueError as plain:
        try:
            score, feedback, how = repair_judgement(raw)
        except ValueError:
            why = str(plain)
            if turn.truncated:
                why = (
                    f"judge answer was cut at the token cap before its JSON was complete "
                    f"({config.label}, max_tokens {config.max_tokens}): raise the judge "
                    f"setting's max_tokens; the answer: {preview(raw, 200)!r}"
                )
            return Judgement(raw_response=raw, unreadable=why)
    return Judgement(raw_response=raw, score=score, feedback=feedback, repaired=how)


async def vote(
    ctx: EvaluationContext, spec: JudgeConfig, prompt: str, *, threshold: float
) -> Ballot:
    """Ask the judge ``spec.votes`` times (at ``vote_temperature`` when more than once)."""
    temperature = spec.vote_temperature if spec.votes > 1 else 0
    config = judge_model_config(ctx, spec.judge_model, temperature)
    judgements = await asyncio.gather(
        *(
            ask_judge(config, ctx.settings, prompt, ctx.calls, sample)
            for sample in range(spec.votes)
        )
    )
    return Ballot(tuple(judgements), threshold=threshold, max_spread=spec.max_spread)


def repaired_note(judgement: Judgement) -> str:
    """What the feedback starts with when the answer had to be repaired."""
    return f"(repaired: {judgement.repaired}) " if judgement.repaired else ""


class JudgeConfig(EvaluatorConfig):
    """Keys both judges share."""

    threshold_score: int = Field(
        default=70, ge=0, le=100, description="Passes at a score of at least this"
    )
    judge_model: str | None = Field(
        default=None,
        description="Another model on the judge setting's provider (default: the setting's)",
    )
    votes: int = Field(
        default=1,
        ge=1,
        le=15,
        description="Ask the judge this many times: the median score and the majority verdict "
        "count (an odd number avoids ties)",
    )
    max_spread: float = Field(
        default=30,
        ge=0,
        le=100,
        description="With votes: scores spread wider than this make the verdict inconclusive",
    )
    vote_temperature: float = Field(
        default=1.0, ge=0, le=2, description="With votes: the judge's temperature (else 0)"
    )


class LlmJudgeEvaluator(Evaluator):
    """An LLM scores one message (the final response) against ``custom_instructions``.

    The judge sees the system prompt and the conversation up to the message. Passes when the
    score is at least ``threshold_score``.
    """

    type = "llm_judge"

    class Config(JudgeConfig):
        custom_instructions: str = Field(
            default="Evaluate the quality and appropriateness of the response",
            min_length=1,
            description="What the judge checks",
        )

    def judge_prompt(self, ctx: EvaluationContext) -> str:
        """The full prompt the judge receives."""
        targeted = self.spec.turn is not None or self.spec.role is not None
        focus = ctx.focus if targeted and ctx.focus else "the assistant's final message"
        return (
            f"Evaluate {'one message' if targeted else 'the final response'} of the "
            "conversation below between a user and an AI assistant.\n\n"
            f"{system_prompt_section(ctx.system_prompt)}"
            f"CONVERSATION:\n{format_transcript(ctx.conversation.messages)}\n\n"
            f"RESPONSE TO EVALUATE ({focus}):\n{ctx.response}"
            f"\n\nEVALUATION INSTRUCTIONS:\n{self.config.custom_instructions}\n\n{ANSWER_FORMAT}"
        )

    async def check(self, ctx: EvaluationContext) -> EvaluationResult:
        label = judge_model_config(ctx, self.config.judge_model).label
        threshold = self.config.threshold_score
        if ctx.message is None and not ctx.conversation.assistant_messages():
            return self.result(
                0, False, "There is no assistant response to judge.", judge_model=label
            )
        prompt = self.judge_prompt(ctx)
        ballot = await vote(ctx, self.config, prompt, threshold=threshold)
        return self.result(
            ballot.score or 0,
            ballot.passed,
            ballot.feedback,
            inconclusive=ballot.inconclusive,
            judge_model=label,
            judge_system_prompt=JUDGE_SYSTEM_PROMPT,
            judge_prompt=prompt,
            threshold_score=threshold,
            **ballot.details(),
        )


class ConversationJudgeEvaluator(Evaluator):
    """An LLM scores each assistant message, in the context of the conversation up to it.

    A conversation check: with ``turn``, only that turn's assistant message is judged (still in
    the context of the turns before it). The score is the mean of the message scores; passes
    when it is at least ``threshold_score``.
    """

    type = "conversation_judge"
    scope = "conversation"

    class Config(JudgeConfig):
        evaluation_prompt: str = Field(
            default=(
                "Evaluate this assistant message for quality and appropriateness. Score 0-100."
            ),
            min_length=1,
            description="What the judge checks in each assistant message",
        )

    def judge_prompt(self, ctx: EvaluationContext, index: int, ordinal: int, total: int) -> str:
        """The prompt for the assistant message at ``ctx.whole.messages[index]``."""
        messages = ctx.whole.messages
        message = messages[index]
        return (
            f"{self.config.evaluation_prompt}\n\n"
            f"{system_prompt_section(ctx.system_prompt)}"
            f"CONVERSATION SO FAR:\n{format_transcript(messages[: index + 1])}\n\n"
            f"MESSAGE TO EVALUATE (assistant message {ordinal} of {total}, turn {message.turn}):\n"
            f"{message.content}\n\n{ANSWER_FORMAT}"
        )

    async def check(self, ctx: EvaluationContext) -> EvaluationResult:
        label = judge_model_config(ctx, self.config.judge_model).label
        threshold = self.config.threshold_score
        # The judged messages are those in scope; their context is the whole conversation.
        turns = {m.turn for m in ctx.conversation.messages}
        messages = ctx.whole.messages
        positions = [i for i, m in enumerate(messages) if m.role == "assistant" and m.turn in turns]
        if not positions:
            return self.result(
                0, False, "There are no assistant messages to judge.", judge_model=label
            )
        message_scores = []
        # One message at a time: the engine already bounds concurrency across test runs.
        for ordinal, index in enumerate(positions, 1):
            prompt = self.judge_prompt(ctx, index, ordinal, len(positions))
            ballot = await vote(ctx, self.config, prompt, threshold=threshold)
            message_scores.append(
                {
                    "message_index": index,
                    "turn": messages[index].turn,
                    "score": ballot.score,
                    "feedback": ballot.feedback,
                    "inconclusive": ballot.inconclusive,
                    "content_preview": preview(messages[index].content),
                    "judge_prompt": prompt,
                    **ballot.details(),
                }
            )
        scores = [entry["score"] for entry in message_scores if entry["score"] is not None]
        average = round(sum(scores) / len(scores), 2) if scores else 0
        undecided = [entry for entry in message_scores if entry["inconclusive"]]
        inconclusive = "; ".join(f"turn {e['turn']}: {e['inconclusive']}" for e in undecided)
        passed = average >= threshold and not undecided
        verdict = "inconclusive" if undecided else "meets" if passed else "below"
        lines = [
            f"Average score: {average:g}/100 across {len(scores)} assistant message(s) "
            f"({verdict} threshold {threshold}).",
            *(
                f"Turn {e['turn']}: "
                + (
                    f"inconclusive — {e['inconclusive']}"
                    if e["inconclusive"]
                    else f"{e['score']:g} — {e['feedback']}"
                )
                for e in message_scores
            ),
        ]
        return self.result(
            average,
            passed,
            "\n".join(lines),
            inconclusive=inconclusive or None,
            judge_model=label,
            judge_system_prompt=JUDGE_SYSTEM_PROMPT,
            message_scores=message_scores,
            total_messages=len(positions),
            threshold_score=threshold,
        )


EVALUATORS: list[type[Evaluator]] = [LlmJudgeEvaluator, ConversationJudgeEvaluator]
