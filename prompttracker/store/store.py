"""The results store: runs and their test runs in SQLite, written as they finish, read back whole.

Values come in (``TestRunOutcome``) and the same values come back out (``load_outcomes``), so a
stored run renders exactly like a live one. Rows are spread over plain tables so that SQL and
Datasette users can query them; the converters between values and rows are plain functions.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from prompttracker.config.models import PromptVersion
from prompttracker.errors import ConfigError
from prompttracker.results import (
    RunRecord,
    RunStatus,
    TestRunOutcome,
    TestRunRow,
    TestRunSummary,
)
from prompttracker.store.migrations import migrations
from prompttracker.store.rows import (
    RUN_COUNTS_SQL,
    evaluation_rows,
    iso,
    llm_response_row,
    message_rows,
    now,
    outcome_from_rows,
    snapshot_row,
    summary_from_row,
    test_run_row,
    to_json,
)

RUNS_HINT = "see `pt runs list`"

# How long a write waits for another process's lock (several `pt` on one database).
LOCK_TIMEOUT_SECONDS = 60.0

# A finished test run and the prompt version that ran (None: snapshot what the outcome knows).
Finished = tuple[TestRunOutcome, PromptVersion | None]


class Store:
    """The SQLite results database. Opening it creates the file and applies migrations.

    WAL mode with a busy timeout, so that several ``pt`` processes can share one database:
    readers never wait, writers take turns (every write transaction is ``BEGIN IMMEDIATE``,
    which waits for the lock instead of failing halfway). ``synchronous=NORMAL``: a commit
    survives the process being killed; only a power cut may undo the last few.

    The connection may be used from one other thread at a time (``StoreWriter`` does, during a
    run), never from two at once.
    """

    def __init__(
        self, path: Path | str, *, lock_timeout_seconds: float = LOCK_TIMEOUT_SECONDS
    ) -> None:
        if str(path) != ":memory:":
            _make_folder(Path(path).parent)
        self.path = path
        try:
            connection = sqlite3.connect(
                str(path), timeout=lock_timeout_seconds, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise unusable_database(path, exc) from None
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.execute("PRAGMA foreign_keys = ON")
            self.db = Database(connection)
            _refuse_foreign(path, self.db)
            if migrations.pending(self.db):
                with self._transaction():
                    migrations.apply(self.db)  # re-checks: another process may have won
        except ConfigError:
            connection.close()
            raise
        except sqlite3.Error as exc:
            connection.close()
            raise unusable_database(path, exc) from None
        self._snapshots: set[str] = set()  # prompt-version hashes this store wrote in full

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection."""
        self.db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: waits for the write lock up front, rolls back on any error."""
        connection = self.db.conn
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise

    def start_run(
        self,
        *,
        mock: bool,
        project_root: str,
        options: dict[str, Any],
        pricing: dict[str, Any] | None = None,
        plan: Sequence[tuple[str, str]] = (),
        plan_hash: str | None = None,
        shard: str | None = None,
    ) -> RunRecord:
        """Record a new run as ``running`` and return it.

        A database that cannot take it (read-only, full, locked) is bad input: ``ConfigError``,
        before anything is called.
        """
        started_at = now()
        run_id = f"run-{started_at:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        row = {
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
            "invalid": 0,
            "inconclusive": 0,
            "pricing": to_json(pricing) if pricing is not None else None,
            "plan_hash": plan_hash,
            "shard": shard,
        }
        planned = [
            {"run_id": run_id, "position": i, "plan_key": key, "label": label}
            for i, (key, label) in enumerate(plan)
        ]
        try:
            with self._transaction() as connection:
                _insert_rows(connection, "runs", [row])
                _insert_rows(connection, "run_plan", planned)
        except sqlite3.Error as exc:
            raise unusable_database(self.path, exc) from None
        return self.get_run(run_id)

    def reopen_run(self, run_id: str) -> RunRecord:
        """Mark a stored run ``running`` again, to play what it has not finished (resume)."""
        with self._transaction() as connection:
            self._require_run(run_id)
            connection.execute(
                "update runs set status = 'running', finished_at = null where id = ?", [run_id]
            )
        return self.get_run(run_id)

    def run_plan(self, run_id: str) -> list[tuple[str, str]]:
        """The run's planned test runs as (plan key, label), in plan order."""
        rows = self.db.conn.execute(
            "select plan_key, label from run_plan where run_id = ? order by position", [run_id]
        )
        return [(key, label) for key, label in rows]

    def finished_plan_keys(self, run_id: str, *, errors: bool = True) -> set[str]:
        """Plan keys of the run's finished test runs (``errors=False``: not those that ended
        ``error``, which ``--retry-errors`` plays again)."""
        sql = "select plan_key from test_runs where run_id = ? and plan_key is not null"
        if not errors:
            sql += " and status != 'error'"
        return {key for (key,) in self.db.conn.execute(sql, [run_id])}

    def delete_errored(self, run_id: str) -> int:
        """Remove the run's test runs that ended ``error`` (and what hangs off them), so that
        replaying them leaves one result per planned test run. Returns how many."""
        errored = "select id from test_runs where run_id = ? and status = 'error'"
        with self._transaction() as connection:
            for table in ("evaluations", "messages", "llm_responses"):
                connection.execute(
                    f"delete from {table} where test_run_id in ({errored})", [run_id]
                )
            cursor = connection.execute(
                "delete from test_runs where run_id = ? and status = 'error'", [run_id]
            )
        return cursor.rowcount

    def load_rows(self, run_id: str) -> list[TestRunRow]:
        """Every test run of a run for the reports: summary lines for those that passed,
        whole outcomes (conversation, evaluations) for the others."""
        run_id = self._find_run(run_id)["id"]
        outcomes = self._outcomes(run_id, not_passed=True)
        return [outcomes.get(i) or summary for i, summary in self._summaries(run_id)]

    def record_test_run(
        self, run_id: str, outcome: TestRunOutcome, *, version: PromptVersion | None = None
    ) -> str:
        """Write one finished test run in one transaction, committed at once; return its id.

        Pass the ``version`` that ran to snapshot its templates; without it the snapshot holds
        what the outcome knows (slug, name, number, model config) and NULL templates.
        """
        return self.record_test_runs(run_id, [(outcome, version)])[0]

    def record_test_runs(self, run_id: str, finished: Sequence[Finished]) -> list[str]:
        """Write several finished test runs in one transaction; return their ids, in order.

        All of them are stored, or none (the transaction rolls back and the error propagates).
        """
        ids: list[str] = []
        full: dict[str, dict[str, Any]] = {}  # snapshots with their templates
        bare: dict[str, dict[str, Any]] = {}  # snapshots of what an outcome knows
        rows: dict[str, list[dict[str, Any]]] = {
            "test_runs": [],
            "llm_responses": [],
            "messages": [],
            "evaluations": [],
        }
        for outcome, version in finished:
            test_run_id = f"tr-{uuid.uuid4().hex}"
            ids.append(test_run_id)
            snapshot = snapshot_row(outcome, version)
            if snapshot["hash"] not in self._snapshots:
                (full if version is not None else bare)[snapshot["hash"]] = snapshot
            rows["test_runs"].append(test_run_row(test_run_id, run_id, snapshot, outcome))
            rows["llm_responses"].append(llm_response_row(test_run_id, outcome))
            if outcome.conversation:
                rows["messages"] += message_rows(test_run_id, outcome.conversation.messages)
            rows["evaluations"] += evaluation_rows(test_run_id, outcome.evaluations)
        with self._transaction() as connection:
            self._require_run(run_id)
            _insert_rows(connection, "prompt_versions", list(bare.values()), or_ignore=True)
            _upsert_snapshots(connection, list(full.values()))
            for table, table_rows in rows.items():
                _insert_rows(connection, table, table_rows)
        self._snapshots.update(full)
        return ids

    def finish_run(self, run_id: str, status: RunStatus) -> RunRecord:
        """Mark a run finished with ``status`` and store its totals, counted from its test runs."""
        with self._transaction() as connection:
            self._require_run(run_id)
            counts = _counts(self.db, run_id)
            connection.execute(
                "update runs set status = ?, finished_at = ?, total = ?, passed = ?, "
                "failed = ?, errored = ?, invalid = ?, inconclusive = ? where id = ?",
                [status, iso(now()), *counts.values(), run_id],
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
        return list(self._outcomes(self._find_run(run_id)["id"]).values())

    def _outcomes(self, run_id: str, *, not_passed: bool = False) -> dict[str, TestRunOutcome]:
        """Whole outcomes by test run id, in the order recorded (``not_passed``: only those)."""
        rows = self.db.query(
            """
            select t.*, p.prompt_name, r.rendered_system_prompt, r.rendered_user_prompt,
                   r.metadata
            from test_runs t
            join prompt_versions p on p.hash = t.prompt_version_hash
            left join llm_responses r on r.test_run_id = t.id
            where t.run_id = ?"""
            + (" and t.status != 'passed'" if not_passed else "")
            + " order by t.rowid",
            [run_id],
        )
        return {row["id"]: self._outcome(row) for row in rows}

    def load_summaries(self, run_id: str) -> list[TestRunSummary]:
        """Every test run of a run as its summary line (no conversation): what comparisons
        and the gate need, in little memory."""
        return [summary for _, summary in self._summaries(self._find_run(run_id)["id"])]

    def _summaries(self, run_id: str) -> list[tuple[str, TestRunSummary]]:
        """(test run id, summary line) of every test run of a run, in the order stored."""
        scores: dict[str, dict[str, float | None]] = {}
        for e in self.db.query(
            """
            select e.test_run_id, e.evaluator, e.score, e.error, e.inconclusive
            from evaluations e join test_runs t on t.id = e.test_run_id
            where t.run_id = ? order by e.position
            """,
            [run_id],
        ):
            scores.setdefault(e["test_run_id"], {})[e["evaluator"]] = (
                None if e["error"] or e["inconclusive"] else e["score"]
            )
        rows = self.db.query(
            """
            select t.*, json_extract(r.metadata, '$.turn_count') as turn_count
            from test_runs t left join llm_responses r on r.test_run_id = t.id
            where t.run_id = ? order by t.rowid
            """,
            [run_id],
        )
        return [(row["id"], summary_from_row(row, scores.get(row["id"], {}))) for row in rows]

    def latest_completed_run(
        self, *, mock: bool, options: dict[str, Any], before: str | None = None
    ) -> RunRecord | None:
        """The newest completed run with the same selection (``filters``, ``tags``) and mock
        flag: what ``--baseline latest`` compares against."""
        wanted = {key: sorted(options.get(key) or []) for key in ("filters", "tags")}
        for row in self.db.query(
            "select * from runs where status = 'completed' and mock = ? "
            "order by started_at desc, rowid desc",
            [int(mock)],
        ):
            stored = json.loads(row["options"]) if row["options"] else {}
            if row["id"] != before and all(
                sorted(stored.get(key) or []) == value for key, value in wanted.items()
            ):
                return _run_record(self.db, row)
        return None

    def _outcome(self, row: dict[str, Any]) -> TestRunOutcome:
        messages = self.db.query(
            "select * from messages where test_run_id = ? order by position", [row["id"]]
        )
        evaluations = self.db.query(
            "select * from evaluations where test_run_id = ? order by position", [row["id"]]
        )
        return outcome_from_rows(row, list(messages), list(evaluations))

    def _find_run(self, run_id: str) -> dict[str, Any]:
        """A run by id, a start or an end of its id that no other run has, or ``latest``."""
        if run_id == "latest":
            newest = list(
                self.db.query("select * from runs order by started_at desc, rowid desc limit 1")
            )
            if newest:
                return newest[0]
            raise ConfigError(f"{self.path} has no run yet", hint="run pt run-tests first")
        exact = list(self.db.query("select * from runs where id = ?", [run_id]))
        if exact:
            return exact[0]
        # Ids are ``run-YYYYMMDD-HHMMSS-<random hex>``: a start or an end (the random part, say)
        # names a run as well as the whole id does, as long as only one run has it.
        matches = list(
            self.db.query(
                """select * from runs where ? != ''
                and (substr(id, 1, length(?)) = ? or substr(id, -length(?)) = ?)
                order by started_at desc, rowid desc""",
                [run_id] * 5,
            )
        )
        if len(matches) == 1:
            return matches[0]
        if matches:
            ids = ", ".join(m["id"] for m in matches[:10])
            ids += f" and {len(matches) - 10} more" if len(matches) > 10 else ""
            raise ConfigError(
                f"run id {run_id!r} matches {len(matches)} runs (newest first): {ids}",
                hint=f"give more of the id, from its start or its end; {RUNS_HINT}",
            )
        raise ConfigError(f"no run with id {run_id!r}", hint=RUNS_HINT)

    def _require_run(self, run_id: str) -> None:
        if self.db.conn.execute("select 1 from runs where id = ?", [run_id]).fetchone() is None:
            raise ConfigError(f"no run with id {run_id!r}", hint=RUNS_HINT)


# Values → rows


def _insert_rows(
    connection: sqlite3.Connection,
    table: str,
    rows: list[dict[str, Any]],
    *,
    or_ignore: bool = False,
) -> None:
    """One prepared ``INSERT`` for all ``rows`` (the converters give each table fixed keys)."""
    if not rows:
        return
    columns = list(rows[0])
    verb = "insert or ignore" if or_ignore else "insert"
    sql = f"{verb} into {table} ({', '.join(columns)}) values ({', '.join('?' * len(columns))})"
    connection.executemany(sql, [[row[column] for column in columns] for row in rows])


def _upsert_snapshots(connection: sqlite3.Connection, snapshots: list[dict[str, Any]]) -> None:
    """Insert each snapshot, or fill in a row first written without its templates."""
    if not snapshots:
        return
    columns = list(snapshots[0])
    content = [c for c in columns if c not in ("hash", "first_seen_at")]
    sql = (
        f"insert into prompt_versions ({', '.join(columns)}) "
        f"values ({', '.join('?' * len(columns))}) on conflict(hash) do update set "
        + ", ".join(f"{c} = excluded.{c}" for c in content)
    )
    connection.executemany(sql, [[row[c] for c in columns] for row in snapshots])


def _refuse_foreign(path: Path | str, db: Database) -> None:
    """A SQLite file with tables but none of pt's is someone else's: never add ours to it."""
    tables = set(db.table_names())
    if tables and "_sqlite_migrations" not in tables:
        shown = ", ".join(sorted(tables)[:5]) + (" …" if len(tables) > 5 else "")
        raise ConfigError(
            f"the results database {path} is another program's SQLite file (tables: {shown}); "
            "pt will not add its tables to it",
            hint="point --db (or `database:` in prompttracker.yaml) at a results file of pt's, "
            "or at a new path",
        )


def _make_folder(folder: Path) -> None:
    """Create the database's folder; pt's own ``.prompttracker/`` gets a ``.gitignore`` so that
    results do not end up in the team's commits."""
    if folder.is_dir():
        return
    folder.mkdir(parents=True, exist_ok=True)
    if folder.name == ".prompttracker":
        (folder / ".gitignore").write_text("# results of pt run-tests, not for git\n*\n")


def database_problem(exc: sqlite3.Error) -> str:
    """What is wrong with the database, in words, from the error SQLite gave."""
    name = getattr(exc, "sqlite_errorname", None) or ""
    problems = {
        "SQLITE_FULL": "the disk is full (or the database reached its size limit)",
        "SQLITE_READONLY": "it is read-only",
        "SQLITE_BUSY": "another process kept it locked past the busy timeout",
        "SQLITE_NOTADB": "it is not a SQLite database",
        "SQLITE_CORRUPT": "it is damaged (the database disk image is malformed)",
        "SQLITE_CANTOPEN": "it cannot be opened (a directory? a folder you cannot write to?)",
        "SQLITE_IOERR": "the disk reported an I/O error",
    }
    for prefix, problem in problems.items():
        if name.startswith(prefix):
            return f"{problem} ({name})"
    return f"{exc} ({name})" if name else str(exc)


def unusable_database(path: Path | str, exc: sqlite3.Error) -> ConfigError:
    """Bad input: a database that cannot be opened or written before the run starts."""
    return ConfigError(
        f"the results database {path} cannot be used: {database_problem(exc)}",
        hint="point --db (or `database:` in prompttracker.yaml) at a results file of pt's, "
        "or at a new path",
    )


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
        pricing=json.loads(row["pricing"]) if row.get("pricing") else {},
        plan_hash=row.get("plan_hash"),
        shard=row.get("shard"),
        **_counts(db, row["id"]),
    )


def _counts(db: Database, run_id: str) -> dict[str, int]:
    row = next(db.query(RUN_COUNTS_SQL.format(table="test_runs", where="run_id = ?"), [run_id]))
    return {key: int(value) for key, value in row.items()}


# Helpers
