"""The results store: runs and their test runs in SQLite, written as they finish, read back whole.

Values come in (``TestRunOutcome``) and the same values come back out (``load_outcomes``), so a
stored run renders exactly like a live one. Rows are spread over plain tables so that SQL and
Datasette users can query them; the converters between values and rows are plain functions.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic_core import to_jsonable_python
from sqlite_utils import Database

from prompttracker.config.models import ModelConfig, PromptVersion
from prompttracker.errors import ConfigError
from prompttracker.messages import ConversationResult, Message, ToolCall, Usage
from prompttracker.results import EvaluationResult, RunRecord, RunStatus, TestRunOutcome
from prompttracker.store.migrations import migrations

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
RUNS_HINT = "see `pt runs list`"


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
    return _sha256(content)


class Store:
    """The SQLite results database. Opening it creates the file and applies migrations."""

    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = Database(path)
        self.db.execute("PRAGMA foreign_keys = ON")
        migrations.apply(self.db)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection."""
        self.db.close()

    def start_run(self, *, mock: bool, project_root: str, options: dict[str, Any]) -> RunRecord:
        """Record a new run as ``running`` and return it."""
        started_at = _now()
        run_id = f"run-{started_at:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        self.db.table("runs").insert(
            {
                "id": run_id,
                "started_at": _iso(started_at),
                "finished_at": None,
                "status": "running",
                "mock": int(mock),
                "project_root": project_root,
                "options": _json(options),
                "total": 0,
                "passed": 0,
                "failed": 0,
                "errored": 0,
            }
        )
        return self.get_run(run_id)

    def record_test_run(
        self, run_id: str, outcome: TestRunOutcome, *, version: PromptVersion | None = None
    ) -> str:
        """Write one finished test run in one transaction, committed at once; return its id.

        Pass the ``version`` that ran to snapshot its templates; without it the snapshot holds
        what the outcome knows (slug, name, number, model config) and NULL templates.
        """
        self._require_run(run_id)
        test_run_id = f"tr-{uuid.uuid4().hex}"
        snapshot = _snapshot_row(outcome, version)
        with self.db.atomic():
            if version is None:
                self.db.table("prompt_versions").insert(snapshot, ignore=True)
            else:
                _upsert_snapshot(self.db, snapshot)
            self.db.table("test_runs").insert(_test_run_row(test_run_id, run_id, snapshot, outcome))
            self.db.table("llm_responses").insert(_llm_response_row(test_run_id, outcome))
            if outcome.conversation:
                self.db.table("messages").insert_all(
                    _message_rows(test_run_id, outcome.conversation.messages)
                )
            self.db.table("evaluations").insert_all(
                _evaluation_rows(test_run_id, outcome.evaluations)
            )
        return test_run_id

    def finish_run(self, run_id: str, status: RunStatus) -> RunRecord:
        """Mark a run finished with ``status`` and store its totals, counted from its test runs."""
        self._require_run(run_id)
        counts = _counts(self.db, run_id)
        self.db.table("runs").update(
            run_id, {"status": status, "finished_at": _iso(_now()), **counts}
        )
        return self.get_run(run_id)

    def list_runs(self, limit: int = 20) -> list[RunRecord]:
        """The most recent runs, newest first."""
        rows = self.db.query(
            "select * from runs order by started_at desc, rowid desc limit ?", [limit]
        )
        return [_run_record(self.db, row) for row in rows]

    def get_run(self, run_id: str) -> RunRecord:
        """One run by id or by a unique prefix of its id."""
        return _run_record(self.db, self._find_run(run_id))

    def load_outcomes(self, run_id: str) -> list[TestRunOutcome]:
        """Rebuild every test run of a run, in the order they were recorded."""
        run = self._find_run(run_id)
        rows = self.db.query(
            """
            select t.*, p.prompt_name, r.rendered_system_prompt, r.rendered_user_prompt,
                   r.metadata
            from test_runs t
            join prompt_versions p on p.hash = t.prompt_version_hash
            left join llm_responses r on r.test_run_id = t.id
            where t.run_id = ?
            order by t.rowid
            """,
            [run["id"]],
        )
        return [self._outcome(row) for row in rows]

    def _outcome(self, row: dict[str, Any]) -> TestRunOutcome:
        messages = self.db.query(
            "select * from messages where test_run_id = ? order by position", [row["id"]]
        )
        evaluations = self.db.query(
            "select * from evaluations where test_run_id = ? order by position", [row["id"]]
        )
        return _outcome_from_rows(row, list(messages), list(evaluations))

    def _find_run(self, run_id: str) -> dict[str, Any]:
        exact = list(self.db.query("select * from runs where id = ?", [run_id]))
        if exact:
            return exact[0]
        matches = list(
            self.db.query(
                "select * from runs where ? != '' and substr(id, 1, length(?)) = ? order by id",
                [run_id, run_id, run_id],
            )
        )
        if len(matches) == 1:
            return matches[0]
        if matches:
            ids = ", ".join(m["id"] for m in matches[:5])
            raise ConfigError(
                f"run id prefix {run_id!r} matches {len(matches)} runs ({ids})",
                hint=f"give more of the id; {RUNS_HINT}",
            )
        raise ConfigError(f"no run with id {run_id!r}", hint=RUNS_HINT)

    def _require_run(self, run_id: str) -> None:
        if not self.db.table("runs").count_where("id = ?", [run_id]):
            raise ConfigError(f"no run with id {run_id!r}", hint=RUNS_HINT)


# Values → rows


def _snapshot_row(outcome: TestRunOutcome, version: PromptVersion | None) -> dict[str, Any]:
    if version is not None:
        return {
            "hash": outcome.version_hash or version_hash(outcome.prompt_slug, version),
            "prompt_slug": outcome.prompt_slug,
            "prompt_name": outcome.prompt_name,
            "version": version.version,
            "system_prompt": version.system_prompt,
            "user_prompt": version.user_prompt,
            "variables": _json(version.variables),
            "model_config": _json(version.model_config_.model_dump(mode="json", by_alias=True)),
            "first_seen_at": _iso(_now()),
        }
    config = outcome.model_config_.model_dump(mode="json", by_alias=True)
    fallback = {"prompt_slug": outcome.prompt_slug, "version": outcome.version, "config": config}
    return {
        "hash": outcome.version_hash or _sha256(fallback),
        "prompt_slug": outcome.prompt_slug,
        "prompt_name": outcome.prompt_name,
        "version": outcome.version,
        "system_prompt": None,
        "user_prompt": None,
        "variables": None,
        "model_config": _json(config),
        "first_seen_at": _iso(_now()),
    }


def _upsert_snapshot(db: Database, snapshot: dict[str, Any]) -> None:
    """Insert the snapshot, or fill in a row first written without its templates."""
    table = db.table("prompt_versions")
    if not table.count_where("hash = ?", [snapshot["hash"]]):
        table.insert(snapshot)
        return
    content = {k: v for k, v in snapshot.items() if k not in ("hash", "first_seen_at")}
    table.update(snapshot["hash"], content)


def _test_run_row(
    test_run_id: str, run_id: str, snapshot: dict[str, Any], outcome: TestRunOutcome
) -> dict[str, Any]:
    usage = outcome.usage
    return {
        "id": test_run_id,
        "run_id": run_id,
        "prompt_version_hash": snapshot["hash"],
        "test_name": outcome.test_name,
        "prompt_slug": outcome.prompt_slug,
        "version": outcome.version,
        "dataset": outcome.dataset,
        "row_name": outcome.row_name,
        "variables": _json(outcome.variables),
        "model_config": _json(outcome.model_config_.model_dump(mode="json", by_alias=True)),
        "status": outcome.status,
        "error": outcome.error,
        "started_at": _iso(outcome.started_at),
        "finished_at": _iso(outcome.finished_at),
        "duration_ms": outcome.duration_ms,
        "score": outcome.score,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cost_usd": outcome.cost_usd,
        "mock": int(outcome.mock),
    }


def _llm_response_row(test_run_id: str, outcome: TestRunOutcome) -> dict[str, Any]:
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
        "cost_usd": outcome.cost_usd,
        "latency_ms": sum(latencies) if conversation else None,
        "metadata": _json(_conversation_metadata(conversation) if conversation else {}),
    }


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


def _message_rows(test_run_id: str, messages: tuple[Message, ...]) -> list[dict[str, Any]]:
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
            "latency_ms": message.latency_ms,
            "tool_calls": _json([call.model_dump(mode="json") for call in message.tool_calls]),
        }
        for position, message in enumerate(messages)
    ]


def _evaluation_rows(
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
            "details": _json(evaluation.details),
            "error": evaluation.error,
        }
        for position, evaluation in enumerate(evaluations)
    ]


# Rows → values


def _outcome_from_rows(
    row: dict[str, Any], messages: list[dict[str, Any]], evaluations: list[dict[str, Any]]
) -> TestRunOutcome:
    metadata = json.loads(row["metadata"]) if row["metadata"] else {}
    return TestRunOutcome(
        test_name=row["test_name"],
        prompt_slug=row["prompt_slug"],
        prompt_name=row["prompt_name"] or "",
        version=row["version"],
        version_hash=row["prompt_version_hash"],
        dataset=row["dataset"],
        row_name=row["row_name"],
        variables=json.loads(row["variables"]),
        model_config=ModelConfig.model_validate(json.loads(row["model_config"])),
        system_prompt=row["rendered_system_prompt"] or "",
        user_prompt=row["rendered_user_prompt"] or "",
        status=row["status"],
        error=row["error"],
        conversation=_conversation(metadata, messages),
        evaluations=tuple(_evaluation(e) for e in evaluations),
        started_at=datetime.fromisoformat(row["started_at"]),
        finished_at=datetime.fromisoformat(row["finished_at"]),
        mock=bool(row["mock"]),
        cost_usd=row["cost_usd"],
    )


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
    )


def _run_record(db: Database, row: dict[str, Any]) -> RunRecord:
    # Counted live rather than read from the stored totals, so a run killed before
    # finish_run still shows what it finished.
    return RunRecord(
        id=row["id"],
        started_at=datetime.fromisoformat(row["started_at"]),
        finished_at=datetime.fromisoformat(row["finished_at"]) if row["finished_at"] else None,
        status=row["status"],
        mock=bool(row["mock"]),
        project_root=row["project_root"] or "",
        options=json.loads(row["options"]) if row["options"] else {},
        **_counts(db, row["id"]),
    )


def _counts(db: Database, run_id: str) -> dict[str, int]:
    row = next(
        db.query(
            """
            select count(*) as total,
                   coalesce(sum(status = 'passed'), 0) as passed,
                   coalesce(sum(status = 'failed'), 0) as failed,
                   coalesce(sum(status = 'error'), 0) as errored
            from test_runs where run_id = ?
            """,
            [run_id],
        )
    )
    return {key: int(value) for key, value in row.items()}


# Helpers


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    """ISO-8601 in UTC. A naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def _json(value: Any) -> str:
    return json.dumps(to_jsonable_python(value), ensure_ascii=False)


def _sha256(content: Any) -> str:
    canonical = json.dumps(
        to_jsonable_python(content), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
