"""Tables over many results: the end-of-run summary, its totals line, and the list of runs."""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.table import Table
from rich.text import Text

from prompttracker.report.transcript import STATUS_STYLES, format_score, format_seconds
from prompttracker.results import RunRecord, TestRunOutcome

RUN_STATUS_STYLES = {
    "completed": "green",
    "running": "yellow",
    "interrupted": "yellow",
    "failed": "red",
}


def sort_outcomes(outcomes: Sequence[TestRunOutcome]) -> list[TestRunOutcome]:
    """By prompt, test, version, row; stable, so repeats of one run keep their order."""
    return sorted(outcomes, key=lambda o: (o.prompt_slug, o.test_name, o.version, o.row_name))


def summary_table(outcomes: Sequence[TestRunOutcome]) -> Table:
    """One line per test run: test, version, row, status, score, turns, tokens, time."""
    table = Table(title="Test runs", title_justify="left")
    table.add_column("test")
    table.add_column("version", justify="right", no_wrap=True)
    table.add_column("row")
    table.add_column("status", no_wrap=True)
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("turns", justify="right", no_wrap=True)
    table.add_column("tokens", justify="right", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    for outcome in sort_outcomes(outcomes):
        conversation = outcome.conversation
        table.add_row(
            Text(f"{outcome.prompt_slug}::{outcome.test_name}"),
            f"v{outcome.version}",
            Text(outcome.row_name),
            Text(outcome.status, style=STATUS_STYLES[outcome.status]),
            format_score(outcome.score),
            str(conversation.turn_count) if conversation else "—",
            str(outcome.usage.total_tokens) if conversation else "—",
            format_seconds(outcome.duration_ms),
        )
    return table


def totals_line(outcomes: Sequence[TestRunOutcome], run: RunRecord | None = None) -> Text:
    """``12 test runs: 10 passed, 1 failed, 1 error in 3.2s · mock``."""
    counts = {status: sum(1 for o in outcomes if o.status == status) for status in STATUS_STYLES}
    noun = "test run" if len(outcomes) == 1 else "test runs"
    line = Text(f"{len(outcomes)} {noun}: ", style="bold")
    for index, (status, count) in enumerate(counts.items()):
        if index:
            line.append(", ")
        line.append(f"{count} {status}", style=STATUS_STYLES[status] if count else "dim")
    line.append(f" in {format_seconds(wall_time_ms(outcomes, run))}")
    if (run and run.mock) or any(o.mock for o in outcomes):
        line.append(" · mock", style="yellow")
    if run and run.status not in ("completed", "running"):
        line.append(f" · {run.status}", style=RUN_STATUS_STYLES.get(run.status, "red"))
    return line


def wall_time_ms(outcomes: Sequence[TestRunOutcome], run: RunRecord | None = None) -> float:
    """How long the run took: the run's own times when finished, else the outcomes' span."""
    # Test runs overlap under concurrency, so wall time is the span, not the sum of durations.
    if run and run.finished_at:
        return (run.finished_at - run.started_at).total_seconds() * 1000
    if not outcomes:
        return 0.0
    start = min(o.started_at for o in outcomes)
    end = max(o.finished_at for o in outcomes)
    return (end - start).total_seconds() * 1000


def runs_table(runs: Sequence[RunRecord]) -> Table:
    """``pt runs list``: one line per ``pt run-tests`` invocation, in the order given."""
    table = Table(
        title="Runs",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("id", no_wrap=True)
    table.add_column("started", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("mock", no_wrap=True, min_width=4)
    for name in ("total", "passed", "failed", "errored"):
        table.add_column(name, justify="right", no_wrap=True, min_width=len(name))
    for run in runs:
        table.add_row(
            Text(run.id),
            run.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            Text(run.status, style=RUN_STATUS_STYLES.get(run.status, "")),
            "yes" if run.mock else "no",
            str(run.total),
            Text(str(run.passed), style="green" if run.passed else ""),
            Text(str(run.failed), style="red" if run.failed else ""),
            Text(str(run.errored), style="magenta" if run.errored else ""),
        )
    return table
