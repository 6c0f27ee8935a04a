"""``pt run-tests --resume``, ``--retry-errors`` and ``--shard``: a run killed halfway is finished
into the same run, each planned test run stored exactly once; errors are replayed on request; a
changed plan is refused; shards cut one plan the same way everywhere."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prompttracker.cli import app
from prompttracker.config.loader import load_project
from prompttracker.engine import Selection, Shard, plan, plan_hash
from prompttracker.errors import ConfigError
from tests.loopback import LoopbackServer, Request, chat_completion, send_json
from tests.project_factory import HELP_PROMPT, HELP_QUESTIONS, chat_prompt, write_project

PT = [sys.executable, "-m", "prompttracker"]
runner = CliRunner()

PASSING_PROMPT = chat_prompt(
    "mentions refunds", "{ type: keyword, config: { required_keywords: [refund] } }"
)


def pt(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def query(path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    with sqlite3.connect(path) as connection:
        return connection.execute(sql, params).fetchall()


def database(root: Path) -> Path:
    return root / ".prompttracker" / "results.db"


def rows(names: list[str]) -> str:
    """Single-turn rows; each row's user message is ``refund <name>?`` (the mock and the
    loopback answers quote or say "refund", so every row passes)."""
    return "mode: single_turn\nrows:\n" + "".join(
        f'  - name: {name}\n    variables: {{ company: Acme, opening_message: "refund {name}?" }}\n'
        for name in names
    )


def endpoint(url: str) -> str:
    return f"providers:\n  openai:\n    base_url: {url}\n    max_retries: 0\n"


def refund_project(root: Path, names: list[str], settings: str | None = None) -> Path:
    return write_project(
        root,
        prompts={"billing": PASSING_PROMPT},
        datasets={"billing": rows(names)},
        settings=settings,
    )


def user_messages(requests: list[Request]) -> list[str]:
    """The user message of every Chat Completions request, in the order received."""
    return [
        message["content"]
        for request in requests
        if request.path.endswith("/chat/completions")
        for message in request.json()["messages"]
        if message["role"] == "user"
    ]


def plan_counts(db: Path, run_id: str) -> tuple[dict[str, int], set[str]]:
    """(count of stored test runs by plan key, the run's planned keys)."""
    counts = dict(
        query(
            db,
            "select plan_key, count(*) from test_runs where run_id = ? group by plan_key",
            (run_id,),
        )
    )
    planned = {
        key for (key,) in query(db, "select plan_key from run_plan where run_id = ?", (run_id,))
    }
    return counts, planned


def assert_every_planned_test_run_once(db: Path, run_id: str) -> None:
    counts, planned = plan_counts(db, run_id)
    assert planned, "the run stored no plan"
    assert None not in counts, "a test run was stored without its plan key"
    assert set(counts.values()) == {1}, counts
    assert set(counts) == planned


def counts_of(db: Path) -> dict[str, list[tuple]]:
    """Everything a refused command must leave as it was."""
    return {
        "runs": query(db, "select id, status, finished_at, total from runs order by rowid"),
        "test_runs": query(db, "select id, status from test_runs order by rowid"),
        "run_plan": query(db, "select count(*) from run_plan"),
        "llm_responses": query(db, "select count(*) from llm_responses"),
    }


def stored_count(db: Path) -> int:
    try:
        return query(db, "select count(*) from test_runs")[0][0]
    except sqlite3.Error:  # not created yet
        return 0


def wait_for(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# --- resume after SIGKILL ---------------------------------------------------------------------


class Gate:
    """The first ``prompt`` requests are answered at once; the others wait until ``open``."""

    def __init__(self, prompt: int) -> None:
        self.prompt = prompt
        self.open = threading.Event()

    async def handle(self, request: Request, writer: asyncio.StreamWriter) -> None:
        if self.prompt > 0:
            self.prompt -= 1
        else:
            while not self.open.is_set():
                await asyncio.sleep(0.01)
        await send_json(writer, chat_completion("We will refund you."))


@pytest.mark.parametrize("by", ["latest", "id"])
def test_resume_after_sigkill_plays_only_what_is_missing(tmp_path, monkeypatch, by):
    names = [f"row-{i:02d}" for i in range(12)]
    gate = Gate(prompt=2)
    with LoopbackServer(gate.handle) as server:
        root = refund_project(tmp_path, names, endpoint(server.url))
        db = tmp_path / "r.db"
        env = {"OPENAI_API_KEY": "sk-test", "PATH": "/usr/bin:/bin", "COLUMNS": "100"}
        command = [*PT, "run-tests", "-p", str(root), "--db", str(db), "-c", "2"]
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
        )
        try:
            # Two answered and stored; the two next requests are in the server, unanswered.
            wait_for(lambda: stored_count(db) >= 2, "two stored test runs")
            wait_for(lambda: len(server.requests) >= 4, "the next two requests")
        finally:
            process.send_signal(signal.SIGKILL)
            _, err = process.communicate(timeout=60)
        assert process.returncode == -signal.SIGKILL, err

        ((run_id, status, planned_total),) = query(
            db,
            "select id, status, (select count(*) from run_plan p where p.run_id = runs.id) "
            "from runs",
        )
        assert status == "running"  # killed: nothing marked it
        assert planned_total == 12
        stored_before = {name for (name,) in query(db, "select row_name from test_runs")}
        assert len(stored_before) == 2
        missing = sorted(set(names) - stored_before)
        requests_before = len(server.requests)
        assert requests_before == 4

        gate.open.set()  # the server answers at once from now on
        gate.prompt = 1_000
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        resumed = pt(
            "run-tests", "-p", str(root), "--db", str(db),
            "--resume", "latest" if by == "latest" else run_id,
        )  # fmt: skip
        new_requests = server.requests[requests_before:]

    assert resumed.exit_code == 0, resumed.output
    assert f"Resuming run {run_id}: 2 finished, 10 to play" in resumed.output
    assert_every_planned_test_run_once(db, run_id)
    assert query(db, "select status, total, passed from runs") == [("completed", 12, 12)]
    assert query(db, "select count(*) from runs") == [(1,)]  # into the same run
    # Only the missing test runs were requested, each once.
    assert sorted(user_messages(new_requests)) == sorted(f"refund {name}?" for name in missing)


# --- --retry-errors ---------------------------------------------------------------------------


class Breakable:
    """Answers HTTP 400 (never retried) to a user message holding ``bad-`` while ``broken``."""

    def __init__(self) -> None:
        self.broken = True

    async def handle(self, request: Request, writer: asyncio.StreamWriter) -> None:
        if self.broken and "bad-" in " ".join(user_messages([request])):
            error = {"error": {"message": "bad row", "type": "invalid_request_error"}}
            await send_json(writer, error, status=400)
            return
        await send_json(writer, chat_completion("We will refund you."))


def test_retry_errors_replays_exactly_the_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    names = ["good-1", "bad-1", "good-2", "bad-2", "good-3"]
    server_state = Breakable()
    with LoopbackServer(server_state.handle) as server:
        refund_project(tmp_path, names, endpoint(server.url))
        db = database(tmp_path)
        first = pt("run-tests", "--transcripts", "none")
        assert first.exit_code == 1, first.output
        (run_id,) = (row[0] for row in query(db, "select id from runs"))
        statuses = dict(query(db, "select row_name, status from test_runs"))
        assert statuses == {
            "good-1": "passed",
            "bad-1": "error",
            "good-2": "passed",
            "bad-2": "error",
            "good-3": "passed",
        }
        stored = query(db, "select id, plan_key, status from test_runs order by rowid")
        assert len(server.requests) == 5

        # Errors count as finished: resuming alone plays nothing and keeps them.
        again = pt("run-tests", "--resume", run_id, "--transcripts", "none")
        assert again.exit_code == 1, again.output  # the run still holds two errors
        assert len(server.requests) == 5
        assert query(db, "select id, plan_key, status from test_runs order by rowid") == stored
        assert query(db, "select status from runs") == [("completed",)]

        server_state.broken = False
        before = len(server.requests)
        retried = pt("run-tests", "--resume", run_id, "--retry-errors", "--transcripts", "none")
        replayed = user_messages(server.requests[before:])

    assert retried.exit_code == 0, retried.output
    assert sorted(replayed) == ["refund bad-1?", "refund bad-2?"]
    assert_every_planned_test_run_once(db, run_id)
    assert query(db, "select count(*) from test_runs where status = 'error'") == [(0,)]
    assert query(db, "select status, total, passed, errored from runs") == [("completed", 5, 5, 0)]
    # The passed ones were kept as they were.
    kept = {row for row in stored if row[2] == "passed"}
    assert kept <= set(query(db, "select id, plan_key, status from test_runs"))
    # Nothing of the removed errors hangs on.
    assert query(
        db, "select count(*) from llm_responses where test_run_id not in (select id from test_runs)"
    ) == [(0,)]


# --- a changed plan is refused ----------------------------------------------------------------


async def answer(request: Request, writer: asyncio.StreamWriter) -> None:
    await send_json(writer, chat_completion("We will refund you."))


@pytest.mark.parametrize("change", ["row added", "system prompt changed"])
def test_a_changed_plan_is_refused_and_nothing_is_called_or_written(tmp_path, monkeypatch, change):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    names = ["one", "two", "three"]
    with LoopbackServer(answer) as server:
        refund_project(tmp_path, names, endpoint(server.url))
        db = database(tmp_path)
        assert pt("run-tests").exit_code == 0
        (run_id,) = (row[0] for row in query(db, "select id from runs"))
        # A simulated crash, so that there is something to resume.
        query(db, "delete from test_runs where row_name = 'three'")
        query(db, "update runs set status = 'interrupted'")
        if change == "row added":
            refund_project(tmp_path, [*names, "four"])
        else:
            prompt = PASSING_PROMPT.replace("You help", "You kindly help")
            assert prompt != PASSING_PROMPT
            write_project(tmp_path, prompts={"billing": prompt}, datasets={})
        before, requests = counts_of(db), len(server.requests)
        result = pt("run-tests", "--resume", "latest")
        assert len(server.requests) == requests and server.requests  # nothing called
        assert counts_of(db) == before  # nothing written

    assert result.exit_code == 2, result.output
    out = " ".join(result.output.split())
    assert f"cannot resume run {run_id}" in out
    if change == "row added":
        assert "planned now, not in the run: billing::mentions refunds v1 [four]" in out
        assert "in the run, not planned now" not in out
    else:
        assert "planned now, not in the run: billing::mentions refunds v1 [one]" in out
        assert "in the run, not planned now: billing::mentions refunds v1 [one]" in out
    assert "Hint:" in out


# --- options that clash with --resume ---------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--filter", "billing::*"], "--filter"),
        (["-k", "billing::*"], "--filter"),
        (["--tag", "smoke"], "--tag"),
        (["--repeat", "2"], "--repeat"),
        (["--shard", "1/2"], "--shard"),
    ],
)
def test_resume_refuses_options_that_change_the_plan(tmp_path, extra, named):
    refund_project(tmp_path, ["one", "two"])
    assert pt("run-tests", "--mock").exit_code == 0
    before = counts_of(database(tmp_path))
    result = pt("run-tests", "--mock", "--resume", "latest", *extra)
    assert result.exit_code == 2, result.output
    assert "--resume plays the stored run's own plan" in result.output
    assert f"{named} would change it" in result.output
    assert counts_of(database(tmp_path)) == before


def test_retry_errors_needs_resume(tmp_path):
    refund_project(tmp_path, ["one"])
    result = pt("run-tests", "--mock", "--retry-errors")
    assert result.exit_code == 2, result.output
    assert "--retry-errors replays the errors of a stored run" in result.output
    assert not database(tmp_path).exists()


def test_resume_latest_without_a_database_exits_2_and_creates_none(tmp_path):
    refund_project(tmp_path, ["one"])
    missing = tmp_path / "nowhere" / "r.db"
    result = pt("run-tests", "--mock", "--resume", "latest", "--db", str(missing))
    assert result.exit_code == 2, result.output
    assert "there is no results database" in result.output
    assert not missing.exists() and not missing.parent.exists()


def test_resume_latest_on_a_database_without_runs_exits_2(tmp_path):
    refund_project(tmp_path, ["one"])
    from prompttracker.store.store import Store

    Store(tmp_path / "empty.db").close()
    result = pt("run-tests", "--mock", "--resume", "latest", "--db", "empty.db")
    assert result.exit_code == 2, result.output
    assert "has no run" in result.output


def test_resume_an_unknown_run_exits_2(tmp_path):
    refund_project(tmp_path, ["one"])
    assert pt("run-tests", "--mock").exit_code == 0
    before = counts_of(database(tmp_path))
    result = pt("run-tests", "--resume", "run-nope")
    assert result.exit_code == 2, result.output
    assert "no run with id 'run-nope'" in result.output
    assert counts_of(database(tmp_path)) == before


# --- resume keeps the stored run's selection and mock flag ------------------------------------


def totals(output: str) -> str:
    """The totals line without its timing: ``6 test runs: 3 passed, 3 failed, 0 error``."""
    (line,) = [line for line in output.splitlines() if " test runs: " in line]
    return line.split(" in ")[0]


def test_resume_keeps_the_selection_and_the_mock_flag_and_reports_the_whole_run(tmp_path):
    write_project(
        tmp_path,
        prompts={"helper": HELP_PROMPT, "billing": PASSING_PROMPT},
        datasets={"questions": HELP_QUESTIONS, "billing": rows(["one", "two"])},
    )
    db = database(tmp_path)
    whole = pt("run-tests", "--mock", "-k", "helper::*", "--repeat", "2", "--transcripts", "none")
    assert whole.exit_code == 1, whole.output  # `never` and the second play of `flaky` fail
    assert totals(whole.output) == "6 test runs: 3 passed, 3 failed, 0 error"
    (run_id,) = (row[0] for row in query(db, "select id from runs"))
    complete = query(
        db, "select plan_key, row_name, repeat, status from test_runs order by plan_key"
    )
    assert len(complete) == 6

    # A simulated crash: the passing plays were lost (the failing ones stay stored).
    lost = "select id from test_runs where status = 'passed'"
    for table in ("evaluations", "messages", "llm_responses"):
        query(db, f"delete from {table} where test_run_id in ({lost})")
    query(db, "delete from test_runs where status = 'passed'")
    query(db, "update runs set status = 'interrupted', finished_at = null")
    assert query(db, "select count(*) from test_runs") == [(3,)]

    # No --mock, -k or --repeat, and no API key: the stored run's own are used.
    resumed = pt("run-tests", "--resume", run_id, "--transcripts", "none")
    assert "Resuming run" in resumed.output and "3 finished, 3 to play" in resumed.output
    assert "MOCK" in resumed.output
    assert query(db, "select distinct prompt_slug, mock from test_runs") == [("helper", 1)]
    assert (
        query(db, "select plan_key, row_name, repeat, status from test_runs order by plan_key")
        == complete
    )
    assert_every_planned_test_run_once(db, run_id)
    assert query(db, "select status, total from runs") == [("completed", 6)]
    # The same exit code and totals as the uninterrupted run: the summary is the whole run's.
    assert totals(resumed.output) == totals(whole.output)
    assert resumed.exit_code == whole.exit_code, resumed.output


# --- shards -----------------------------------------------------------------------------------

SHARD_ROWS = [f"customer {i}" for i in range(10)]

PARTITION = """\
import json, sys
from prompttracker.config.loader import load_project
from prompttracker.engine import Shard, plan
whole = plan(load_project(sys.argv[1]), repeat=2)
print(json.dumps({p.key: [i for i in (1, 2, 3) if Shard(i, 3).holds(p)] for p in whole}))
"""


def test_shards_cover_the_plan_once_and_cut_it_the_same_way_everywhere(tmp_path):
    root = refund_project(tmp_path, SHARD_ROWS)
    whole = plan(load_project(root), Selection(), repeat=2)
    assert len(whole) == 20
    parts = [Shard(i, 3).cut(whole) for i in (1, 2, 3)]

    keys = [p.key for part in parts for p in part]
    assert sorted(keys) == sorted(p.key for p in whole)  # all of it, once
    assert len(set(keys)) == len(keys) == 20
    for part in parts:  # in plan order
        mine = {p.key for p in part}
        assert [p.key for p in part] == [p.key for p in whole if p.key in mine]
    # A row's two plays are in one shard.
    shard_of_row = {}
    for index, part in enumerate(parts, 1):
        for p in part:
            assert shard_of_row.setdefault(p.row.name, index) == index
    assert len(shard_of_row) == 10
    for part in parts:
        assert all(sum(1 for p in part if p.row.name == q.row.name) == 2 for q in part)

    # The same cut when computed again, and in other processes with other hash seeds.
    again = plan(load_project(root), Selection(), repeat=2)
    assert [[p.key for p in Shard(i, 3).cut(again)] for i in (1, 2, 3)] == [
        [p.key for p in part] for part in parts
    ]
    here = {p.key: [i] for i, part in enumerate(parts, 1) for p in part}
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", PARTITION, str(root)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=True,
        )
        assert json.loads(done.stdout) == here, seed

    # Through the CLI, into three databases.
    hashes = set()
    for index, part in enumerate(parts, 1):
        db = tmp_path / f"shard{index}.db"
        result = pt(
            "run-tests", "--mock", "--repeat", "2", "--shard", f"{index}/3", "--db", str(db)
        )
        assert result.exit_code == 0, result.output
        ((run_id, shard, run_hash, status),) = query(
            db, "select id, shard, plan_hash, status from runs"
        )
        assert shard == f"{index}/3" and status == "completed"
        hashes.add(run_hash)
        counts, planned = plan_counts(db, run_id)
        assert planned == {p.key for p in part}
        assert set(counts) == planned and set(counts.values()) <= {1}
        assert query(db, "select plan_key from run_plan order by position") == [
            (p.key,) for p in part
        ]
    assert hashes == {plan_hash(whole)}


@pytest.mark.parametrize("text", ["0/3", "4/3", "a/b", "3", "1/0", "-1/3", "2/3/4", "/3", "1/"])
def test_a_shard_that_is_not_i_of_n_is_refused(tmp_path, text):
    with pytest.raises(ConfigError, match="is not I/N"):
        Shard.parse(text)
    refund_project(tmp_path, ["one"])
    result = pt("run-tests", "--mock", "--shard", text)
    assert result.exit_code == 2, result.output
    assert "is not I/N" in result.output
    assert not database(tmp_path).exists()


def test_a_good_shard_parses():
    assert Shard.parse("2/3") == Shard(2, 3)
    assert str(Shard.parse("3/3")) == "3/3"
    assert Shard.parse("1/1").count == 1
