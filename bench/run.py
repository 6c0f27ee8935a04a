"""Benchmark `pt run-tests` against the local OpenAI-compatible server in bench/server.py.

    python bench/run.py [--pt PATH_TO_pt] [--only a0,a50,b50,big] [--concurrency 32]
                        [--repeat 1] [--json] [--keep]

Each scenario gets a fresh temporary project and database and a freshly started server with the
scenario's latency; only the public CLI is driven (`pt run-tests -p DIR -c N --db DB
--transcripts none`), so any version of the code can be measured. The wall time, CPU time and
peak RSS of the `pt` process, the server's CPU time and request count, and the stored test
runs are reported as one table (or JSON with --json). Standard library only.

Scenarios: a0 / a50 = 1,000 single-turn cases at 0 / 50 ms latency; b50 = 100 conversations of
5 simulated-user turns at 50 ms (10 calls each on the critical path); big = 10,000 single-turn
cases at 0 ms (peak memory). See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

SERVER = Path(__file__).with_name("server.py")
API_KEY = "sk-bench-not-a-real-key"
TAIL_LINES = 30


@dataclass(frozen=True)
class Scenario:
    name: str
    cases: int
    latency_ms: int
    turns: int = 0  # 0: single-turn; otherwise simulated-user turns per conversation

    @property
    def critical_calls(self) -> int:
        """LLM calls one case makes one after the other (simulated user + assistant per turn)."""
        return 2 * self.turns if self.turns else 1


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("a0", 1_000, 0),
        Scenario("a50", 1_000, 50),
        Scenario("b50", 100, 50, turns=5),
        Scenario("big", 10_000, 0),
    )
}


@dataclass
class Result:
    scenario: str
    run: int
    cases: int
    latency_ms: int
    calls: int
    wall_s: float
    run_wall_s: float | None  # the run's own span in the database: start-up and report left out
    bound_s: float
    wall_over_bound: float | None
    run_wall_over_bound: float | None
    pt_cpu_s: float
    pt_cpu_ms_per_call: float | None
    server_cpu_s: float
    server_cpu_ms_per_call: float | None
    peak_rss_mb: float
    stored_test_runs: int | None
    stored_runs: int | None
    connections: int
    exit_code: int
    reference_s: float
    workdir: str


# --- project files -------------------------------------------------------------------------


def q(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text)


def prompt_yaml(scenario: Scenario) -> str:
    user_prompt = "" if scenario.turns else "{{ question }}"
    return f"""name: Bench
description: Benchmark prompt for bench/run.py
versions:
  - version: 1
    status: active
    system_prompt: "You are a support agent for {{{{ company }}}}. Answer in one sentence."
    user_prompt: {q(user_prompt)}
    variables: {{ company: Acme }}
    model_config:
      provider: openai
      api: chat_completions
      model: bench-model
      temperature: 0
tests:
  - name: mentions refunds
    dataset: bench
    evaluators:
      - type: keyword
        name: mentions the refund
        config: {{ required_keywords: [refund] }}
"""


def dataset_yaml(scenario: Scenario) -> str:
    mode = "conversational" if scenario.turns else "single_turn"
    lines = [f"mode: {mode}", "rows:"]
    for i in range(1, scenario.cases + 1):
        question = f"Can I get a refund for order #{100000 + i}? It arrived damaged."
        lines.append(f"  - name: row-{i:05d}")
        lines.append(f"    variables: {{ question: {q(question)} }}")
        if scenario.turns:
            persona = (
                f"You are customer {i}. Order #{100000 + i} arrived damaged; you want a refund."
            )
            lines.append(f"    interlocutor_simulation_prompt: {q(persona)}")
            lines.append(f"    max_turns: {scenario.turns}")
    return "\n".join(lines) + "\n"


def settings_yaml(base_url: str, concurrency: int) -> str:
    model = "{ provider: openai, api: chat_completions, model: bench-sim }"
    return f"""concurrency: {concurrency}
providers:
  openai:
    base_url: {base_url}
    timeout_seconds: 60
    max_retries: 2
interlocutor: {model}
judge: {model}
"""


def write_project(root: Path, scenario: Scenario, base_url: str, concurrency: int) -> None:
    (root / "prompts").mkdir(parents=True)
    (root / "datasets").mkdir()
    (root / "prompts" / "bench.yaml").write_text(prompt_yaml(scenario))
    (root / "datasets" / "bench.yaml").write_text(dataset_yaml(scenario))
    (root / "prompttracker.yaml").write_text(settings_yaml(base_url, concurrency))


# --- the server ----------------------------------------------------------------------------


class Server:
    """bench/server.py as a child process; always stopped by ``stop()``."""

    def __init__(self, latency_ms: int, log: Path) -> None:
        self._log = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVER), "--port", "0", "--latency-ms", str(latency_ms)],
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        assert self.proc.stdout is not None
        try:
            first = self.proc.stdout.readline().strip()
        except BaseException:
            self.stop()
            raise
        if not first.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"the bench server did not start (see {log}): {first!r}")
        self.url = first.removeprefix("listening on ")

    def request(self, method: str, path: str) -> dict[str, Any]:
        data = b"" if method == "POST" else None
        req = urllib.request.Request(self.url + path, method=method, data=data)
        with urllib.request.urlopen(req, timeout=10) as response:
            return json.loads(response.read())

    def stats(self) -> dict[str, Any]:
        return self.request("GET", "/stats")

    def reset(self) -> None:
        self.request("POST", "/reset")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()


# --- running pt ----------------------------------------------------------------------------


@dataclass
class PtRun:
    exit_code: int
    wall_s: float
    cpu_s: float
    peak_rss_kib: int


def pt_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_BASE_URL"}
    env.update(OPENAI_API_KEY=API_KEY, NO_COLOR="1", COLUMNS="120")
    return env


def exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def run_pt(command: list[str], workdir: Path, timeout_s: float) -> PtRun:
    """Run ``pt`` to completion; wall time, CPU and peak RSS of that one child (os.wait4)."""
    with (workdir / "pt.stdout").open("w") as out, (workdir / "pt.stderr").open("w") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=err, env=pt_env(), cwd=workdir)
        watchdog = Watchdog(proc, timeout_s)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            watchdog.cancel()
            _stop_child(proc)
            raise
        watchdog.cancel()
        wall = time.perf_counter() - start
    proc.returncode = exit_code(status)  # reaped by wait4: keep Popen from waiting again
    return PtRun(proc.returncode, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)


class Watchdog:
    """Interrupts ``pt`` (SIGINT, then SIGKILL 10 s later) when it runs past the timeout."""

    def __init__(self, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
        self._proc = proc
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(timeout_s,), daemon=True)
        self._thread.start()

    def _watch(self, timeout_s: float) -> None:
        if self._done.wait(timeout_s):
            return
        print(f"pt ran past {timeout_s:.0f} s: interrupting it", file=sys.stderr)
        self._proc.send_signal(signal.SIGINT)
        if not self._done.wait(10):
            self._proc.kill()

    def cancel(self) -> None:
        self._done.set()
        self._thread.join()


def _stop_child(proc: subprocess.Popen[bytes]) -> None:
    """On Ctrl-C or an error while pt runs: let it stop, else interrupt it, else kill it; reap it.

    A Ctrl-C in the terminal reaches pt too, so it gets a moment to stop cleanly on its own.
    """
    for sig, grace in ((None, 5.0), (signal.SIGINT, 10.0), (signal.SIGKILL, 5.0)):
        try:
            if sig is not None:
                proc.send_signal(sig)
            proc.wait(timeout=grace)
            return
        except (ProcessLookupError, ChildProcessError):
            return
        except subprocess.TimeoutExpired:
            continue


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def run_wall_seconds(db: Path) -> float | None:
    """finished_at − started_at of the (one) run stored in ``db``."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            row = conn.execute("select started_at, finished_at from runs").fetchone()
    except sqlite3.Error:
        return None
    if not row or not row[1]:
        return None
    started, finished = (datetime.fromisoformat(value) for value in row)
    return (finished - started).total_seconds()


def reference_seconds() -> float:
    """CPU seconds of a fixed pure-Python loop: how fast this machine is right now.

    Shared and virtual machines speed up and slow down by 2× over minutes; comparing two runs
    means little unless their reference times are close.
    """
    sample = {"role": "user", "content": "Can I get a refund?" * 4, "n": [1, 2.5, None]}
    started = time.process_time()
    for _ in range(40_000):
        json.loads(json.dumps(sample))
    return time.process_time() - started


def count_rows(db: Path, table: str) -> int | None:
    if not db.exists():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute(f"select count(*) from {table}").fetchone()[0]
    except sqlite3.Error:
        return None


# --- one scenario --------------------------------------------------------------------------


def per_call_ms(seconds: float, calls: int) -> float | None:
    return seconds * 1000 / calls if calls else None


def bound_seconds(scenario: Scenario, concurrency: int) -> float:
    waves = math.ceil(scenario.cases / concurrency)
    return waves * scenario.critical_calls * scenario.latency_ms / 1000


def run_scenario(scenario: Scenario, run: int, args: argparse.Namespace, workdir: Path) -> Result:
    reference = reference_seconds()
    server = Server(scenario.latency_ms, workdir / "server.log")
    try:
        project, db = workdir / "project", workdir / "results.db"
        write_project(project, scenario, server.url + "/v1", args.concurrency)
        server.reset()
        before = server.stats()
        command = [args.pt, "run-tests", "-p", str(project), "-c", str(args.concurrency)]
        command += ["--db", str(db), "--transcripts", "none"]
        pt = run_pt(command, workdir, args.timeout)
        after = server.stats()
    finally:
        server.stop()
    calls = after["requests"]
    server_cpu = after["cpu_seconds"] - before["cpu_seconds"]
    bound = bound_seconds(scenario, args.concurrency)
    run_wall = run_wall_seconds(db)
    return Result(
        scenario=scenario.name,
        run=run,
        cases=scenario.cases,
        latency_ms=scenario.latency_ms,
        calls=calls,
        wall_s=round(pt.wall_s, 3),
        run_wall_s=_round(run_wall, 3),
        bound_s=bound,
        wall_over_bound=round(pt.wall_s / bound, 2) if bound else None,
        run_wall_over_bound=round(run_wall / bound, 2) if bound and run_wall else None,
        pt_cpu_s=round(pt.cpu_s, 3),
        pt_cpu_ms_per_call=_round(per_call_ms(pt.cpu_s, calls), 3),
        server_cpu_s=round(server_cpu, 3),
        server_cpu_ms_per_call=_round(per_call_ms(server_cpu, calls), 3),
        peak_rss_mb=round(pt.peak_rss_kib / 1024, 1),
        stored_test_runs=count_rows(db, "test_runs"),
        stored_runs=count_rows(db, "runs"),
        connections=after["connections"],
        exit_code=pt.exit_code,
        reference_s=round(reference, 3),
        workdir=str(workdir),
    )


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def report_problems(result: Result, workdir: Path) -> None:
    """Say on stderr what looks wrong: a bad exit code, stored count ≠ cases."""
    if result.exit_code not in (0, 1):
        for name in ("pt.stdout", "pt.stderr"):
            print(f"--- tail of {workdir / name} ---\n{tail(workdir / name)}", file=sys.stderr)
    if result.stored_test_runs != result.cases:
        print(
            f"{result.scenario}: stored test runs {result.stored_test_runs} != cases "
            f"{result.cases}",
            file=sys.stderr,
        )
    if result.exit_code == 1:
        print(f"{result.scenario}: pt exited 1 (a test run failed or errored)", file=sys.stderr)


# --- the table -----------------------------------------------------------------------------

COLUMNS = [  # header line 1, header line 2, width
    ("scenario", "", 8),
    ("cases", "", 5),
    ("calls", "", 5),
    ("wall", "s", 6),
    ("run", "s", 6),
    ("bound", "s", 5),
    ("wall/", "bound", 5),
    ("run/", "bound", 5),
    ("pt CPU", "ms/call", 7),
    ("srv CPU", "ms/call", 7),
    ("peak", "RSS MB", 6),
    ("stored", "runs", 6),
    ("exit", "", 4),
    ("ref", "s", 4),
]


def fmt(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def table_row(result: Result, repeat: int) -> list[str]:
    name = result.scenario if repeat == 1 else f"{result.scenario} #{result.run}"
    return [
        name,
        str(result.cases),
        str(result.calls),
        fmt(result.wall_s, 2),
        fmt(result.run_wall_s, 2),
        fmt(result.bound_s or None, 2),
        fmt(result.wall_over_bound, 2),
        fmt(result.run_wall_over_bound, 2),
        fmt(result.pt_cpu_ms_per_call, 2),
        fmt(result.server_cpu_ms_per_call, 2),
        fmt(result.peak_rss_mb, 0),
        "—" if result.stored_test_runs is None else str(result.stored_test_runs),
        str(result.exit_code),
        fmt(result.reference_s, 2),
    ]


def render_table(results: list[Result], repeat: int) -> str:
    def line(cells: list[str]) -> str:
        first = cells[0].ljust(COLUMNS[0][2])
        rest = (
            cell.rjust(width) for cell, (_, _, width) in zip(cells[1:], COLUMNS[1:], strict=True)
        )
        return " ".join([first, *rest]).rstrip()

    lines = [line([c[0] for c in COLUMNS]), line([c[1] for c in COLUMNS])]
    lines.append("-" * len(lines[0]))
    lines += [line(table_row(r, repeat)) for r in results]
    return "\n".join(lines)


# --- main ----------------------------------------------------------------------------------


def default_pt() -> str:
    return str(Path(sys.executable).with_name("pt"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark `pt run-tests` on a local server.")
    parser.add_argument(
        "--pt", default=default_pt(), help="the pt executable (default: %(default)s)"
    )
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    parser.add_argument("--concurrency", type=int, default=32, help="pt run-tests -c")
    parser.add_argument("--repeat", type=int, default=1, help="run each scenario N times")
    parser.add_argument("--timeout", type=float, default=1800, help="stop pt after S seconds")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown or not names:
        parser.error(f"unknown scenario(s) {unknown}; choose from {', '.join(SCENARIOS)}")
    if not Path(args.pt).is_file():
        parser.error(f"no pt executable at {args.pt}")
    args.scenarios = [SCENARIOS[n] for n in names]
    return args


def run_all(args: argparse.Namespace) -> list[Result]:
    results = []
    for run in range(1, args.repeat + 1):
        for scenario in args.scenarios:
            workdir = Path(tempfile.mkdtemp(prefix=f"pt-bench-{scenario.name}-"))
            try:
                print(f"{scenario.name} #{run}: {scenario.cases} cases ...", file=sys.stderr)
                result = run_scenario(scenario, run, args, workdir)
                print(f"{scenario.name} #{run}: {result.wall_s:.1f} s", file=sys.stderr)
                report_problems(result, workdir)
                results.append(result)
            finally:
                if args.keep:
                    print(f"{scenario.name} #{run}: kept {workdir}", file=sys.stderr)
                else:
                    shutil.rmtree(workdir, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        results = run_all(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    else:
        print(f"pt: {args.pt}   concurrency: {args.concurrency}")
        print(render_table(results, args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
