"""Plain converters between result values and the store's rows, in both directions.

``Store`` does the database work; these functions only shape data, so they are tested through
the store's round trips without any SQL of their own.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from pydantic_core import to_jsonable_python

from prompttracker.config.models import ModelConfig, PromptVersion
from prompttracker.messages import (
    ConversationResult,
    Message,
    Metered,
    ToolCall,
    Usage,
    metered_total,
)
from prompttracker.results import EvaluationResult, TestRunOutcome, TestRunSummary

# Keys of llm_responses.metadata that the store owns; every other key is the conversation's own
# metadata (thread_id, search results…), flattened in so SQL can reach it with ->>.
CONVERSATION_KEYS = (
    "conversation_messages",
    "turn_count",
    "response_ids",
    "conversation_mode",
    "stop_reason",
    "completed",
    "error",
)
# Only written when a conversation metadata key collides with ours, so nothing is lost.
CONVERSATION_METADATA = "conversation_metadata"

# A run's totals, counted from the test runs of ``{table}`` where ``{where}``, in the order of
# the runs table's columns.
RUN_COUNTS_SQL = """
    select count(*) as total,
           coalesce(sum(status = 'passed'), 0) as passed,
           coalesce(sum(status = 'failed'), 0) as failed,
           coalesce(sum(status = 'error'), 0) as errored,
           coalesce(sum(status = 'invalid'), 0) as invalid,
           coalesce(sum(status = 'inconclusive'), 0) as inconclusive
    from {table} where {where}
"""


def snapshot_row(outcome: TestRunOutcome, version: PromptVersion | None) -> dict[str, Any]:
    if version is not None:
        return {
            "hash": outcome.version_hash or version_hash(outcome.prompt_slug, version),
            "prompt_slug": outcome.prompt_slug,
            "prompt_name": outcome.prompt_name,
            "version": version.version,
            "system_prompt": version.system_prompt,
            "user_prompt": version.user_prompt,
            "variables": to_json(version.variables),
            "model_config": to_json(version.model_config_.model_dump(mode="json", by_alias=True)),
            "first_seen_at": iso(now()),
        }
    config = outcome.model_config_.model_dump(mode="json", by_alias=True)
    fallback = {"prompt_slug": outcome.prompt_slug, "version": outcome.version, "config": config}
    return {
        "hash": outcome.version_hash or sha256(fallback),
        "prompt_slug": outcome.prompt_slug,
        "prompt_name": outcome.prompt_name,
        "version": outcome.version,
        "system_prompt": None,
        "user_prompt": None,
        "variables": None,
        "model_config": to_json(config),
        "first_seen_at": iso(now()),
    }


def test_run_row(
    test_run_id: str, run_id: str, snapshot: dict[str, Any], outcome: TestRunOutcome
) -> dict[str, Any]:
    usage = metered_total(outcome.metered) if outcome.metered else outcome.usage
    return {
        "id": test_run_id,
        "run_id": run_id,
        "prompt_version_hash": snapshot["hash"],
        "test_name": outcome.test_name,
        "prompt_slug": outcome.prompt_slug,
        "version": outcome.version,
        "dataset": outcome.dataset,
        "row_name": outcome.row_name,
        "repeat": outcome.repeat,
        "repeats": outcome.repeats,
        "plan_key": outcome.plan_key or None,
        "variables": to_json(outcome.variables),
        "model_config": to_json(outcome.model_config_.model_dump(mode="json", by_alias=True)),
        "status": outcome.status,
        "error": outcome.error,
        "started_at": iso(outcome.started_at),
        "finished_at": iso(outcome.finished_at),
        "duration_ms": outcome.duration_ms,
        "score": outcome.score,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cost_usd": outcome.cost_usd,
        "mock": int(outcome.mock),
        "usage": to_json(outcome.metered) if outcome.metered else None,
        "regenerated": to_json(list(outcome.regenerated)) if outcome.regenerated else None,
    }


def llm_response_row(test_run_id: str, outcome: TestRunOutcome) -> dict[str, Any]:
    """One row per test run; without a conversation (it failed before the first call) it keeps
    the route and the rendered prompts, and its metadata has no conversation keys."""
    config = outcome.model_config_
    conversation = outcome.conversation
    latencies = [m.latency_ms or 0.0 for m in conversation.messages] if conversation else []
    return {
        "test_run_id": test_run_id,
        "provider": config.provider,
        "api": config.api,
        "model": config.model or config.assistant_id,
        "rendered_system_prompt": outcome.system_prompt,
        "rendered_user_prompt": outcome.user_prompt,
        "response_text": conversation.final_response if conversation else None,
        "input_tokens": outcome.usage.input_tokens,
        "output_tokens": outcome.usage.output_tokens,
        "cost_usd": _assistant_cost(outcome),
        "latency_ms": sum(latencies) if conversation else None,
        "metadata": to_json(_conversation_metadata(conversation) if conversation else {}),
    }


def _assistant_cost(outcome: TestRunOutcome) -> float | None:
    assistant = outcome.metered.get("assistant")
    return assistant.cost_usd if assistant else None


def _conversation_metadata(conversation: ConversationResult) -> dict[str, Any]:
    ours = {
        "conversation_messages": [m.model_dump(mode="json") for m in conversation.messages],
        "turn_count": conversation.turn_count,
        "response_ids": list(conversation.response_ids),
        "conversation_mode": conversation.conversation_mode,
        "stop_reason": conversation.stop_reason,
        "completed": conversation.completed,
        "error": conversation.error,
    }
    own = conversation.metadata
    if set(own) & {*CONVERSATION_KEYS, CONVERSATION_METADATA}:
        return {**ours, CONVERSATION_METADATA: own}
    return {**own, **ours}


def message_rows(test_run_id: str, messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    return [
        {
            "test_run_id": test_run_id,
            "position": position,
            "turn": message.turn,
            "role": message.role,
            "content": message.content,
            "response_id": message.response_id,
            "input_tokens": message.usage.input_tokens if message.usage else None,
            "output_tokens": message.usage.output_tokens if message.usage else None,
            "cost_usd": message.cost_usd,
            "latency_ms": message.latency_ms,
            "tool_calls": to_json([call.model_dump(mode="json") for call in message.tool_calls]),
        }
        for position, message in enumerate(messages)
    ]


def evaluation_rows(
    test_run_id: str, evaluations: tuple[EvaluationResult, ...]
) -> list[dict[str, Any]]:
    return [
        {
            "test_run_id": test_run_id,
            "position": position,
            "evaluator": evaluation.evaluator,
            "type": evaluation.type,
            "score": evaluation.score,
            "passed": int(evaluation.passed),
            "feedback": evaluation.feedback,
            "details": to_json(evaluation.details),
            "error": evaluation.error,
            "inconclusive": evaluation.inconclusive,
            "config": to_json(evaluation.config),
            "input_tokens": evaluation.usage.input_tokens if evaluation.usage else None,
            "output_tokens": evaluation.usage.output_tokens if evaluation.usage else None,
            "cost_usd": evaluation.cost_usd,
        }
        for position, evaluation in enumerate(evaluations)
    ]


def outcome_from_rows(
    row: dict[str, Any], messages: list[dict[str, Any]], evaluations: list[dict[str, Any]]
) -> TestRunOutcome:
    metadata = json.loads(row["metadata"]) if row["metadata"] else {}
    return TestRunOutcome(
        **_test_run_fields(row),
        prompt_name=row["prompt_name"] or "",
        variables=json.loads(row["variables"]),
        model_config=ModelConfig.model_validate(json.loads(row["model_config"])),
        system_prompt=row["rendered_system_prompt"] or "",
        user_prompt=row["rendered_user_prompt"] or "",
        error=row["error"],
        conversation=_conversation(metadata, messages),
        evaluations=tuple(_evaluation(e) for e in evaluations),
    )


def _test_run_fields(row: dict[str, Any]) -> dict[str, Any]:
    """What a whole outcome and a summary line both read from a ``test_runs`` row."""
    return {
        "test_name": row["test_name"],
        "prompt_slug": row["prompt_slug"],
        "version": row["version"],
        "version_hash": row["prompt_version_hash"],
        "dataset": row["dataset"],
        "row_name": row["row_name"],
        "repeat": row["repeat"],
        "repeats": row["repeats"],
        "plan_key": row["plan_key"] or "",
        "status": row["status"],
        "started_at": datetime.fromisoformat(row["started_at"]),
        "finished_at": datetime.fromisoformat(row["finished_at"]),
        "mock": bool(row["mock"]),
        "metered": metered_from_json(row["usage"]),
        "cost_usd": row["cost_usd"],
        "regenerated": tuple(json.loads(row["regenerated"])) if row.get("regenerated") else (),
    }


def summary_from_row(row: dict[str, Any], scores: dict[str, float | None]) -> TestRunSummary:
    """A ``test_runs`` row (with ``turn_count``) and its evaluators' scores as a summary line."""
    has_tokens = row["input_tokens"] is not None
    return TestRunSummary(
        **_test_run_fields(row),
        score=row["score"],
        scores=scores,
        turn_count=row["turn_count"],
        total_tokens=row["input_tokens"] + row["output_tokens"] if has_tokens else None,
        duration_ms=row["duration_ms"],
    )


def metered_from_json(text: str | None) -> dict[str, Metered]:
    """``test_runs.usage`` back as tallies by caller ({} for rows stored before it existed)."""
    if not text:
        return {}
    return {caller: Metered.model_validate(m) for caller, m in json.loads(text).items()}


def _conversation(
    metadata: dict[str, Any], messages: list[dict[str, Any]]
) -> ConversationResult | None:
    if "conversation_messages" not in metadata:
        return None
    own = metadata.get(CONVERSATION_METADATA)
    if own is None:
        own = {k: v for k, v in metadata.items() if k not in CONVERSATION_KEYS}
    return ConversationResult(
        messages=tuple(_message(m) for m in messages),
        turn_count=metadata["turn_count"],
        completed=metadata["completed"],
        stop_reason=metadata["stop_reason"],
        error=metadata["error"],
        response_ids=tuple(metadata["response_ids"]),
        conversation_mode=metadata["conversation_mode"],
        metadata=own,
    )


def _message(row: dict[str, Any]) -> Message:
    has_usage = row["input_tokens"] is not None
    return Message(
        role=row["role"],
        content=row["content"],
        turn=row["turn"],
        response_id=row["response_id"],
        usage=Usage(input_tokens=row["input_tokens"], output_tokens=row["output_tokens"])
        if has_usage
        else None,
        cost_usd=row["cost_usd"],
        latency_ms=row["latency_ms"],
        tool_calls=tuple(ToolCall.model_validate(c) for c in json.loads(row["tool_calls"])),
    )


def _evaluation(row: dict[str, Any]) -> EvaluationResult:
    return EvaluationResult(
        evaluator=row["evaluator"],
        type=row["type"],
        score=row["score"],
        passed=bool(row["passed"]),
        feedback=row["feedback"] or "",
        details=json.loads(row["details"]),
        error=row["error"],
        inconclusive=row.get("inconclusive"),
        config=json.loads(row["config"]) if row["config"] else {},
        usage=Usage(input_tokens=row["input_tokens"], output_tokens=row["output_tokens"])
        if row["input_tokens"] is not None
        else None,
        cost_usd=row["cost_usd"],
    )


def iso(moment: datetime) -> str:
    """ISO-8601 in UTC. A naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def to_json(value: Any) -> str:
    return json.dumps(to_jsonable_python(value), ensure_ascii=False)


def version_hash(prompt_slug: str, version: PromptVersion) -> str:
    """sha256 of the canonical JSON of what a prompt version runs.

    ``status`` and ``notes`` are left out: promoting a draft to active does not change what ran.
    Defaults are left out of the model config so that adding a field to ``ModelConfig`` later
    does not change every existing hash.
    """
    content = {
        "prompt_slug": prompt_slug,
        "version": version.version,
        "system_prompt": version.system_prompt,
        "user_prompt": version.user_prompt,
        "variables": version.variables,
        "model_config": version.model_config_.model_dump(
            mode="json", by_alias=True, exclude_defaults=True
        ),
    }
    return sha256(content)


def now() -> datetime:
    return datetime.now(UTC)


def sha256(content: Any) -> str:
    canonical = json.dumps(
        to_jsonable_python(content), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
