"""Nothing finished is lost: batched writes off the loop, retries, and a clean stop when the
database cannot take any more."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from prompttracker.config.loader import load_project
from prompttracker.engine import execute, plan
from prompttracker.errors import ConfigError
from prompttracker.runner import PromptVersionRunner
from prompttracker.store import writer as writer_module
from prompttracker.store.store import Store
from tests.project_factory import DATASET, PROMPT, write_project

# Twelve single-turn rows, each with a long variable so that every test run needs new pages.
ROWS = "mode: single_turn\nrows:\n" + "".join(
    f"  - name: row {i}\n    variables: {{ company: Acme, opening_message: "
    f'"{"Where is my refund? " * 200}{i}" }}\n'
    for i in range(12)
)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer_module, "RETRY_DELAYS", (0.01, 0.01))


def project(tmp_path: Path, dataset: str = ROWS):
    return load_project(write_project(tmp_path, datasets={"billing": dataset}))


def stored(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as connection:
        return connection.execute(sql).fetchall()


def sqlite_full_error() -> sqlite3.OperationalError:
    """A real SQLITE_FULL, as SQLite raises it."""
    connection = sqlite3.connect(":memory:")
    connection.execute("create table t (x)")
    connection.execute("pragma max_page_count = 2")
    try:
        connection.execute("insert into t values (?)", [b"x" * 100_000])
    except sqlite3.OperationalError as exc:
        return exc
    raise AssertionError("SQLite did not report a full database")


def test_the_database_is_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    with Store(tmp_path / "r.db", lock_timeout_seconds=7) as store:
        assert store.db.execute("pragma journal_mode").fetchone()[0] == "wal"
        assert store.db.execute("pragma busy_timeout").fetchone()[0] == 7000


async def test_a_database_that_cannot_take_the_run_is_refused_before_any_call(
    tmp_path: Path,
) -> None:
    loaded = project(tmp_path)
    played = []
    with Store(tmp_path / "r.db") as store:
        store.db.execute("pragma query_only = on")  # every write now fails: SQLITE_READONLY
        with pytest.raises(ConfigError, match="read-only") as refused:
            await execute(
                loaded,
                plan(loaded),
                store,
                mock=True,
                concurrency=1,
                options={},
                on_result=played.append,
            )
    assert refused.value.exit_code == 2 and str(tmp_path / "r.db") in refused.value.message
    assert played == []


def test_a_batch_is_stored_whole_or_not_at_all(tmp_path: Path) -> None:
    from tests.test_store import make_outcome as outcome

    with Store(tmp_path / "r.db") as store:
        run = store.start_run(mock=True, project_root=".", options={})
        ids = store.record_test_runs(run.id, [(outcome(), None), (outcome(), None)])
        assert len(set(ids)) == 2
        with pytest.raises(ConfigError, match="no run"):
            store.record_test_runs("run-missing", [(outcome(), None)])
        assert store.db.execute("select count(*) from test_runs").fetchone()[0] == 2
        assert [o.row_name for o in store.load_outcomes(run.id)] == [outcome().row_name] * 2


async def test_a_write_that_fails_once_is_retried(tmp_path: Path, monkeypatch) -> None:
    failures = [sqlite_full_error()]
    original = Store.record_test_runs

    def flaky(self, run_id, finished):
        if failures:
            raise failures.pop()
        return original(self, run_id, finished)

    monkeypatch.setattr(Store, "record_test_runs", flaky)
    loaded = project(tmp_path)
    with Store(tmp_path / "r.db") as store:
        report = await execute(loaded, plan(loaded), store, mock=True, concurrency=4, options={})
    assert report.store_error is None
    assert report.stored == 12 and report.run.total == 12 and report.run.status == "completed"


def fill_the_disk_after_the_first_test_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """The database takes the first test run, then has no room for another page.

    The other test runs wait until the first is stored, so it is stored alone, whatever the
    machine's speed; then each takes 0.1 s, like a (very fast) real call.
    """
    original_write, original_run = Store.record_test_runs, PromptVersionRunner.run
    first_stored: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def write_then_fill(self, run_id, finished):
        ids = original_write(self, run_id, finished)
        pages = self.db.execute("pragma page_count").fetchone()[0]
        self.db.execute(f"pragma max_page_count = {pages}")
        loop, stored = first_stored[0]
        loop.call_soon_threadsafe(stored.set)
        return ids

    async def after_the_first(self, item):
        if not first_stored:
            first_stored.append((asyncio.get_running_loop(), asyncio.Event()))
            return await original_run(self, item)
        await first_stored[0][1].wait()
        await asyncio.sleep(0.1)
        return await original_run(self, item)

    monkeypatch.setattr(Store, "record_test_runs", write_then_fill)
    monkeypatch.setattr(PromptVersionRunner, "run", after_the_first)


async def test_a_full_disk_stops_the_run_and_keeps_what_was_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = project(tmp_path)
    fill_the_disk_after_the_first_test_run(monkeypatch)
    with Store(tmp_path / "r.db") as store:
        report = await execute(loaded, plan(loaded), store, mock=True, concurrency=1, options={})

    error = report.store_error
    assert error is not None and error.exit_code == 4
    assert "disk is full" in error.message and str(tmp_path / "r.db") in error.message
    assert report.stored == 1
    # What finished after the disk filled is in the report, and no new test run started once
    # the writer gave up (it retries for a few tens of milliseconds here).
    assert report.unstored and report.stored + len(report.unstored) == len(report.outcomes)
    assert len(report.outcomes) < 12
    rows = stored(tmp_path / "r.db", "select count(*) from test_runs")
    assert rows == [(report.stored,)]
    # Nothing stored was lost, and what could not be stored is still in the report.
    assert {o.row_name for o in report.unstored}.isdisjoint(
        name for (name,) in stored(tmp_path / "r.db", "select row_name from test_runs")
    )


async def test_a_database_locked_for_good_ends_the_run_with_a_clear_error(tmp_path: Path) -> None:
    loaded = project(tmp_path)
    path = tmp_path / "r.db"
    other = sqlite3.connect(path, isolation_level=None)

    def lock_it(run) -> None:  # another process takes the write lock and keeps it
        other.execute("begin immediate")

    with Store(path, lock_timeout_seconds=0.2) as store:
        report = await execute(
            loaded, plan(loaded), store, mock=True, concurrency=2, options={}, on_start=lock_it
        )
    other.execute("rollback")
    other.close()
    assert report.store_error is not None
    assert "locked" in report.store_error.message
    assert "close what keeps it locked" in (report.store_error.hint or "")
    assert report.stored == 0 and report.unstored
    assert stored(path, "select count(*) from test_runs") == [(0,)]


async def test_a_callback_that_raises_does_not_stop_the_run(tmp_path: Path) -> None:
    loaded = project(tmp_path, DATASET)

    def broken(outcome) -> None:
        raise RuntimeError("the terminal went away")

    write_project(tmp_path, prompts={"billing_support": PROMPT})
    with Store(tmp_path / "r.db") as store:
        report = await execute(
            loaded, plan(loaded), store, mock=True, concurrency=1, options={}, on_result=broken
        )
    assert isinstance(report.callback_error, RuntimeError)
    assert report.run.status == "completed" and report.run.total == len(report.outcomes) == 1
