"""The results store: runs and their test runs in SQLite, written as they finish, read back whole.

Values come in (``TestRunOutcome``) and the same values come back out (``load_outcomes``), so a
stored run renders exactly like a live one. Rows are spread over plain tables so that SQL and
Datasette users can query them; the converters between values and rows are plain functions.
"""

from __future__ import annotations

import json
import secrets
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from prompttracker.config.models import PromptVersion
from prompttracker.errors import ConfigError
from prompttracker.results import RunRecord, RunStatus, TestRunOutcome
from prompttracker.store.migrations import migrations
from prompttracker.store.rows import (
    evaluation_rows,
    iso,
    llm_response_row,
    message_rows,
    now,
    outcome_from_rows,
    snapshot_row,
    test_run_row,
    to_json,
)

RUNS_HINT = "see `pt runs list`"


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
        started_at = now()
        run_id = f"run-{started_at:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        self.db.table("runs").insert(
            {
                "id": run_id,
                "started_at": iso(started_at),
                "finished_at": None,
                "status": "running",
                "mock": int(mock),
                "project_root": project_root,
                "options": to_json(options),
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
        snapshot = snapshot_row(outcome, version)
        with self.db.atomic():
            if version is None:
                self.db.table("prompt_versions").insert(snapshot, ignore=True)
            else:
                _upsert_snapshot(self.db, snapshot)
            self.db.table("test_runs").insert(test_run_row(test_run_id, run_id, snapshot, outcome))
            self.db.table("llm_responses").insert(llm_response_row(test_run_id, outcome))
            if outcome.conversation:
                self.db.table("messages").insert_all(
                    message_rows(test_run_id, outcome.conversation.messages)
                )
            self.db.table("evaluations").insert_all(
                evaluation_rows(test_run_id, outcome.evaluations)
            )
        return test_run_id

    def finish_run(self, run_id: str, status: RunStatus) -> RunRecord:
        """Mark a run finished with ``status`` and store its totals, counted from its test runs."""
        self._require_run(run_id)
        counts = _counts(self.db, run_id)
        self.db.table("runs").update(
            run_id, {"status": status, "finished_at": iso(now()), **counts}
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
        return outcome_from_rows(row, list(messages), list(evaluations))

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


def _upsert_snapshot(db: Database, snapshot: dict[str, Any]) -> None:
    """Insert the snapshot, or fill in a row first written without its templates."""
    table = db.table("prompt_versions")
    if not table.count_where("hash = ?", [snapshot["hash"]]):
        table.insert(snapshot)
        return
    content = {k: v for k, v in snapshot.items() if k not in ("hash", "first_seen_at")}
    table.update(snapshot["hash"], content)


# Rows → values


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
