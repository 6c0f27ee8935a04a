"""Real ``pt`` processes: several on one database, a closed pipe, SIGTERM, a full disk.

A finished result is never lost, and the exit code stays the run's.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prompttracker.cli import app
from prompttracker.store import writer as writer_module
from tests.loopback import LoopbackServer, Request, chat_completion, send_json
from tests.project_factory import chat_prompt, write_project
from tests.test_store_writer import fill_the_disk_after_the_first_test_run

PT = [sys.executable, "-m", "prompttracker"]

PASSING_PROMPT = chat_prompt(
    "mentions refunds", "{ type: keyword, config: { required_keywords: [refund] } }"
)


def rows(count: int, filler: str = "") -> str:
    return "mode: single_turn\nrows:\n" + "".join(
        f"  - name: row {i}\n"
        f'    variables: {{ company: Acme, opening_message: "{filler}refund {i}?" }}\n'
        for i in range(count)
    )


def project(root: Path, count: int, settings: str | None = None, filler: str = "") -> Path:
    return write_project(
        root,
        prompts={"billing": PASSING_PROMPT},
        datasets={"billing": rows(count, filler)},
        settings=settings,
    )


def query(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as connection:
        return connection.execute(sql).fetchall()


def test_several_processes_on_one_database_store_every_test_run_once(tmp_path: Path) -> None:
    root, db = project(tmp_path, 40), tmp_path / "shared.db"
    command = [*PT, "run-tests", "--mock", "-p", str(root), "--db", str(db), "-c", "4"]
    processes = [
        subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in processes]

    assert [code for code, _ in results] == [0] * 6, [err for _, err in results]
    assert not any("Traceback" in err or "locked" in err for _, err in results)
    runs = query(db, "select id, status, total from runs")
    assert len(runs) == 6
    assert all(status == "completed" and total == 40 for _, status, total in runs)
    per_run = query(
        db, "select run_id, count(*), count(distinct row_name) from test_runs group by 1"
    )
    assert sorted(count for _, count, _ in per_run) == [40] * 6
    assert all(distinct == 40 for _, _, distinct in per_run)


def test_a_closed_pipe_stops_the_printing_not_the_run(tmp_path: Path) -> None:
    root, db = project(tmp_path, 60), tmp_path / "r.db"
    command = [*PT, "run-tests", "--mock", "-p", str(root), "--db", str(db), "--transcripts", "all"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.readline()  # like `| head -1`
    process.stdout.close()
    code = process.wait(timeout=120)
    errors = process.stderr.read().decode()

    assert code == 0, errors
    assert "Traceback" not in errors and "BrokenPipe" not in errors
    assert query(db, "select status, total from runs") == [("completed", 60)]


def stored_count(db: Path) -> int:
    try:
        return query(db, "select count(*) from test_runs")[0][0]
    except sqlite3.Error:  # not created yet
        return 0


async def first_answer_then_silence(request: Request, writer: asyncio.StreamWriter) -> None:
    if request.path.endswith("/chat/completions") and FIRST.pop():
        await send_json(writer, chat_completion("We will refund you."))
        return
    await asyncio.sleep(3600)  # the server hangs: the run waits until it is terminated


FIRST: list[bool] = []


def test_sigterm_marks_the_run_interrupted_and_keeps_what_finished(tmp_path: Path) -> None:
    FIRST[:] = [False, False, True]
    with LoopbackServer(first_answer_then_silence) as server:
        settings = f"providers:\n  openai:\n    base_url: {server.url}\n    max_retries: 0\n"
        root, db = project(tmp_path, 3, settings), tmp_path / "r.db"
        env = {"OPENAI_API_KEY": "sk-test", "PATH": "/usr/bin:/bin", "COLUMNS": "100"}
        command = [*PT, "run-tests", "-p", str(root), "--db", str(db), "-c", "1"]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and stored_count(db) < 1:
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)

    assert process.returncode == 143, err
    assert "Traceback" not in err
    assert "Terminated." in out
    assert query(db, "select status, total from runs") == [("interrupted", 1)]
    assert query(db, "select status from test_runs") == [("passed",)]


def test_a_full_disk_mid_run_ends_with_one_clear_error(tmp_path: Path, monkeypatch) -> None:
    project(tmp_path, 8, filler="Where is my money? " * 200)  # every test run needs new pages
    monkeypatch.setattr(writer_module, "RETRY_DELAYS", (0.01,))
    fill_the_disk_after_the_first_test_run(monkeypatch)
    result = CliRunner().invoke(app, ["run-tests", "--mock", "--db", "r.db", "-c", "1"])

    assert result.exit_code == 4, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.splitlines()
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1 and "could not write to the results database r.db" in errors[0]
    assert "disk is full" in errors[0]
    assert "Traceback" not in result.output
    assert "pt runs show" in result.output  # the hint says where the stored part is
    assert query(tmp_path / "r.db", "select count(*) from test_runs") == [(1,)]
    assert re.search(r"Warning: \d+ finished test run\(s\) could not be stored", result.output)


@pytest.mark.parametrize("count", [3, 50])
def test_the_summary_is_in_proportion_to_the_run(tmp_path: Path, count: int) -> None:
    project(tmp_path, count)
    result = CliRunner().invoke(app, ["run-tests", "--mock", "--db", "r.db"])
    assert result.exit_code == 0, result.output
    progress_lines = [line for line in result.output.splitlines() if line.startswith("✓ pass")]
    if count == 3:
        assert len(progress_lines) == 3
        assert "Test runs" in result.output and "row 2" in result.output
    else:
        assert progress_lines == []  # passes are counted by the bar, not listed
        assert "Tests" in result.output and "row 7" not in result.output
        assert "100%" in result.output and "pt runs show run-" in result.output
    assert f"{count} test runs: {count} passed" in result.output
