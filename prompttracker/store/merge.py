"""``pt runs merge``: join the shards of one plan (``pt run-tests --shard I/N``), played into
separate databases, into one run of another database, as if the plan had been played whole.

Rows are copied by SQL, with the target's own column lists, so that nothing is lost or
converted on the way. Every source is checked before anything is written. SQLite attaches only
a few databases at once (10 by default), so each source is attached in turn and its rows are
staged in temporary tables; the run then lands in the target in one transaction.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prompttracker.errors import ConfigError
from prompttracker.planning import Shard
from prompttracker.results import RunRecord
from prompttracker.store.rows import RUN_COUNTS_SQL, now, to_json
from prompttracker.store.store import Store

# What a merged run is when its shards ended differently: the first of these any shard has.
STATUS_ORDER = ("failed", "interrupted", "budget")

# The tables copied, parents first (foreign keys), each with the rows of a shard's run it holds.
_OF_TEST_RUNS = "test_run_id in (select id from source.test_runs where run_id = :run)"
COPIED = {
    "prompt_versions": "hash in "
    "(select prompt_version_hash from source.test_runs where run_id = :run)",
    "run_plan": "run_id = :run",
    "test_runs": "run_id = :run",
    "llm_responses": _OF_TEST_RUNS,
    "messages": _OF_TEST_RUNS,
    "evaluations": _OF_TEST_RUNS,
}
# Integer keys that would collide across databases: left out, so SQLite assigns new ones.
RENUMBERED = {"llm_responses", "messages", "evaluations"}
# Columns given new values: the merged run's id, and the shards' plans one after another.
REWRITTEN = {
    "run_plan": {
        "run_id": ":merged",
        "position": ":offset + row_number() over (order by position) - 1",
    },
    "test_runs": {"run_id": ":merged"},
}


@dataclass(frozen=True)
class ShardRun:
    """A source database and the sharded run it contributes (its ``runs`` row)."""

    path: Path
    row: dict[str, Any]

    @property
    def shard(self) -> Shard:
        return Shard.parse(self.row["shard"])


def merge_runs(sources: list[Path], into: Path) -> RunRecord:
    """Merge the shards in ``sources`` (a sharded run each) into a new run in ``into``.

    Shards of different plans, a shard given twice, missing or still running are refused with
    nothing written. ``into`` is created if missing; it may hold other runs already.
    """
    shards = check_shards(sources, into)
    run_id = f"run-{now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
    with Store(into) as store:
        connection = store.db.conn
        try:
            _stage(connection, shards, run_id)
            _refuse_merged_before(connection, into)
            row = _run_row(connection, shards, run_id)
            with store._transaction():
                connection.execute(
                    f"insert into main.runs ({', '.join(row)}) "
                    f"values ({', '.join(':' + c for c in row)})",
                    row,
                )
                for table in COPIED:
                    verb = "insert or ignore" if table == "prompt_versions" else "insert"
                    columns = ", ".join(_copied_columns(connection, table))
                    connection.execute(
                        f"{verb} into main.{table} ({columns}) "
                        f"select {columns} from temp.stage_{table} order by rowid"
                    )
        finally:
            for table in COPIED:
                connection.execute(f"drop table if exists temp.stage_{table}")
        return store.get_run(run_id)


def check_shards(sources: list[Path], into: Path) -> list[ShardRun]:
    """Each source's sharded run, in shard order, once they make one whole plan."""
    if not sources:
        raise ConfigError("no database to merge", hint="give the shards' databases, A.db B.db …")
    seen: dict[Path, Path] = {}
    for path in sources:
        same = seen.setdefault(path.resolve(), path)
        if same is not path:
            raise ConfigError(f"{path} is given twice", hint="give each shard's database once")
    if into.resolve() in seen:
        raise ConfigError(
            f"--into {into} is one of the databases being merged",
            hint="merge into a new file, for example --into merged.db",
        )
    shards = [_shard_run(path) for path in sources]
    first = shards[0]
    for other in shards[1:]:
        if other.row["plan_hash"] != first.row["plan_hash"]:
            raise ConfigError(
                f"{first.path} and {other.path} hold shards of different plans "
                f"({first.row['plan_hash']} and {other.row['plan_hash']})",
                hint="merge shards played from the same files with the same options "
                "(--filter, --tag, --repeat)",
            )
        if other.shard.count != first.shard.count:
            raise ConfigError(
                f"{first.path} holds shard {first.shard} but {other.path} shard {other.shard}",
                hint="merge shards of one split, all played with the same --shard I/N count",
            )
    by_index: dict[int, ShardRun] = {}
    for shard in shards:
        earlier = by_index.setdefault(shard.shard.index, shard)
        if earlier is not shard:
            raise ConfigError(
                f"{earlier.path} and {shard.path} both hold shard {shard.shard}",
                hint="give each shard once; `pt runs list --db FILE` shows which one a file holds",
            )
    count = first.shard.count
    missing = [f"{i}/{count}" for i in range(1, count + 1) if i not in by_index]
    if missing:
        raise ConfigError(
            f"shard{'s' if len(missing) > 1 else ''} {', '.join(missing)} of this plan "
            f"{'are' if len(missing) > 1 else 'is'} missing",
            hint="play what is missing with `pt run-tests --shard I/N --db FILE` and give those "
            "databases too",
        )
    for shard in shards:
        if shard.row["status"] == "running":
            raise ConfigError(
                f"shard {shard.shard} in {shard.path} (run {shard.row['id']}) is still running",
                hint="wait for it to finish; if its process died, play that shard again",
            )
    return [by_index[i] for i in range(1, count + 1)]


def _shard_run(path: Path) -> ShardRun:
    """The sharded run of one database: the only one, else the latest started."""
    if not path.is_file():
        raise ConfigError(
            f"no results database at {path}",
            hint="give the databases that `pt run-tests --shard I/N --db FILE` wrote",
        )
    with Store(path) as store:  # brings the schema up to date
        rows = list(
            store.db.query(
                "select * from runs where shard is not null order by started_at desc, rowid desc"
            )
        )
    if not rows:
        raise ConfigError(
            f"{path} holds no sharded run",
            hint="play a part of the plan into it with `pt run-tests --shard I/N --db FILE`",
        )
    return ShardRun(path, rows[0])


def _stage(connection: sqlite3.Connection, shards: list[ShardRun], run_id: str) -> None:
    """Copy each shard's rows into ``temp.stage_<table>``, rewritten for the merged run."""
    for table in COPIED:
        columns = ", ".join(_copied_columns(connection, table))
        connection.execute(f"drop table if exists temp.stage_{table}")
        connection.execute(
            f"create temp table stage_{table} as select {columns} from main.{table} where 0"
        )
    offset = 0
    for shard in shards:
        connection.execute("attach database ? as source", [str(shard.path)])
        try:
            connection.execute("begin")  # one snapshot of the source
            params = {"run": shard.row["id"], "merged": run_id, "offset": offset}
            for table, where in COPIED.items():
                columns = _copied_columns(connection, table)
                values = [REWRITTEN.get(table, {}).get(c, c) for c in columns]
                connection.execute(
                    f"insert into temp.stage_{table} ({', '.join(columns)}) "
                    f"select {', '.join(values)} from source.{table} where {where} order by rowid",
                    params,
                )
            connection.execute("commit")
            (planned,) = connection.execute(
                "select count(*) from source.run_plan where run_id = ?", [shard.row["id"]]
            ).fetchone()
            offset += planned
        finally:
            if connection.in_transaction:
                connection.execute("rollback")
            connection.execute("detach database source")


def _refuse_merged_before(connection: sqlite3.Connection, into: Path) -> None:
    """Test run ids are unique across databases: finding one in ``into`` means these shards
    were merged into it already."""
    found = connection.execute(
        "select run_id from main.test_runs where id in (select id from temp.stage_test_runs) "
        "limit 1"
    ).fetchone()
    if found is not None:
        raise ConfigError(
            f"these shards are merged into {into} already, as run {found[0]}",
            hint=f"see `pt runs show {found[0]} --db {into}`, or merge into another file",
        )


def _run_row(connection: sqlite3.Connection, shards: list[ShardRun], run_id: str) -> dict[str, Any]:
    """The merged run: its shards' span, worst status, the first one's options and prices."""
    rows = [shard.row for shard in shards]
    statuses = {row["status"] for row in rows}
    options = {k: v for k, v in json.loads(rows[0]["options"] or "{}").items() if k != "shard"}
    options["merged_from"] = [row["id"] for row in rows]
    counts = connection.execute(
        RUN_COUNTS_SQL.format(table="temp.stage_test_runs", where="1")
    ).fetchone()
    finished = [row["finished_at"] for row in rows if row["finished_at"]]
    return {
        "id": run_id,
        "started_at": min(row["started_at"] for row in rows),  # ISO-8601 UTC: sorts as text
        "finished_at": max(finished) if finished else None,
        "status": next((s for s in STATUS_ORDER if s in statuses), "completed"),
        "mock": int(any(row["mock"] for row in rows)),
        "project_root": rows[0]["project_root"],
        "options": to_json(options),
        **dict(
            zip(
                ("total", "passed", "failed", "errored", "invalid", "inconclusive"),
                counts,
                strict=True,
            )
        ),
        "pricing": rows[0]["pricing"],
        "plan_hash": rows[0]["plan_hash"],
        "shard": None,
    }


def _copied_columns(connection: sqlite3.Connection, table: str) -> list[str]:
    """The target table's columns (PRAGMA table_info), less a key SQLite must assign anew."""
    columns = [row[1] for row in connection.execute(f"pragma main.table_info({table})")]
    return [c for c in columns if not (table in RENUMBERED and c == "id")]
