"""Tables over many results: the end-of-run summary, its totals line, and the list of runs."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from prompttracker.report.transcript import STATUS_STYLES, format_score, format_seconds
from prompttracker.results import (
    UNDECIDED,
    RunRecord,
    TestRunRow,
    simulator_errors,
    status_counts,
)

if TYPE_CHECKING:
    from prompttracker.llm.endpoint import EndpointStats

# Up to this many test runs the summary has a line for each; above, it shows a line per
# test × version and one per test run that did not pass (`pt runs show` has them all).
FULL_TABLE_LIMIT = 40

# Wider than any terminal: measuring a table at this width tells how wide it wants to be.
UNBOUNDED_WIDTH = 10_000

RUN_STATUS_STYLES = {
    "completed": "green",
    "running": "yellow",
    "interrupted": "yellow",
    "failed": "red",
    "budget": "yellow",
}


def borderless_table(title: str) -> Table:
    """A table with a rule under its header and no cell borders: the width goes to the text."""
    return Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )


# A layout is a table, or makes one for the console options it is to be drawn with.
Layout = Table | Callable[[Console, ConsoleOptions], Table]


class FirstThatFits:
    """The first of several layouts of one table that fits the width it is given, else the last.

    Rich squeezes a table that is too wide by wrapping its wrappable columns; when that is not
    enough it cuts every column, ids and counts too. The layouts go from the widest to the most
    frugal, so a narrow terminal (80 columns in pipes and CI logs) gets one that keeps its data.
    """

    def __init__(self, *layouts: Layout) -> None:
        self.layouts = layouts

    def _choose(self, console: Console, options: ConsoleOptions) -> Table:
        *wider, last = self.layouts
        for layout in wider:
            table = _made(layout, console, options)
            if natural_width(console, options, table) <= options.max_width:
                return table
        return _made(last, console, options)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self._choose(console, options)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self._choose(console, options))


def _made(layout: Layout, console: Console, options: ConsoleOptions) -> Table:
    return layout if isinstance(layout, Table) else layout(console, options)


class QualifiedName:
    """``prompt::test name``, which wraps after the ``::`` before it folds a word in two."""

    def __init__(self, prompt_slug: str, test_name: str) -> None:
        self.whole = Text(f"{prompt_slug}::{test_name}")
        self.broken = Text(f"{prompt_slug}::\n{test_name}")
        self.slug_width = cell_len(f"{prompt_slug}::")

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        fits = self.whole.cell_len <= options.max_width
        # When not even ``prompt::`` fits, a break after it would only add a line.
        yield self.whole if fits or self.slug_width > options.max_width else self.broken

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        narrowest = Measurement.get(console, options, self.broken).minimum
        return Measurement(narrowest, self.whole.cell_len).with_maximum(options.max_width)


def natural_width(console: Console, options: ConsoleOptions, table: Table) -> int:
    """How wide ``table`` is when nothing in it wraps."""
    return Measurement.get(console, options.update_width(UNBOUNDED_WIDTH), table).maximum


def share_width(
    console: Console, options: ConsoleOptions, table: Table, wide: int, narrow: int
) -> Table:
    """Fix the widths of two wrappable columns of ``table`` so that it fits ``options``.

    The other columns keep their natural widths; the two share what is left. The narrow one
    gets what it needs up to two fifths, the wide one the rest. (Rich alone would cut the wider
    down to the narrower and then halve the space between them.)
    """
    unbounded = options.update_width(UNBOUNDED_WIDTH)
    needs = [
        max(Measurement.get(console, unbounded, cell).maximum for cell in [c.header, *c.cells])
        for c in (table.columns[wide], table.columns[narrow])
    ]
    budget = options.max_width - (natural_width(console, options, table) - sum(needs))
    narrow_width = min(needs[1], max(budget * 2 // 5, budget - needs[0]))
    table.columns[narrow].width = max(1, narrow_width)
    table.columns[wide].width = max(1, budget - narrow_width)
    return table


def sort_outcomes(outcomes: Sequence[TestRunRow]) -> list[TestRunRow]:
    """By prompt, test, version, row; stable, so repeats of one run keep their order."""
    return sorted(outcomes, key=lambda o: (o.prompt_slug, o.test_name, o.version, o.row_name))


def run_summary(outcomes: Sequence[TestRunRow], run: RunRecord | None = None) -> RenderableType:
    """The end-of-run summary, in proportion to the run's size (see ``FULL_TABLE_LIMIT``)."""
    if len(outcomes) <= FULL_TABLE_LIMIT:
        return summary_table(outcomes)
    parts: list[RenderableType] = [aggregate_table(outcomes)]
    not_passed = [o for o in outcomes if o.status != "passed"]
    if not_passed:
        parts.append(summary_table(not_passed, title="Test runs that did not pass", compact=True))
    if run is not None:
        parts.append(Text(f"Every test run: pt runs show {run.id} --transcripts none", style="dim"))
    return Group(*parts)


def aggregate_table(outcomes: Sequence[TestRunRow]) -> Table:
    """One line per test × version: how many ran, passed, failed, errored (and were invalid
    or inconclusive, when any was); the pass rate of those decided; means."""
    groups: dict[tuple[str, str, int], list[TestRunRow]] = {}
    for outcome in sort_outcomes(outcomes):
        key = (outcome.prompt_slug, outcome.test_name, outcome.version)
        groups.setdefault(key, []).append(outcome)
    undecided = [s for s in UNDECIDED if any(o.status == s for o in outcomes)]
    table = borderless_table("Tests (score and time: means over the test runs)")
    table.add_column("test", min_width=12, overflow="fold")
    table.add_column("version", justify="right", no_wrap=True)
    for name in ("runs", "pass", "fail", "error", *undecided, "rate", "score", "tokens", "time"):
        table.add_column(name, justify="right", no_wrap=True)
    for (prompt_slug, test_name, version), group in groups.items():
        counts = status_counts(group)
        decided = len(group) - counts["invalid"] - counts["inconclusive"]
        scores = [o.score for o in group if o.score is not None]
        table.add_row(
            QualifiedName(prompt_slug, test_name),
            f"v{version}",
            str(len(group)),
            *(
                Text(str(counts[s]), style=STATUS_STYLES[s] if counts[s] else "")
                for s in ("passed", "failed", "error", *undecided)
            ),
            f"{100 * counts['passed'] / decided:.0f}%" if decided else "—",
            format_score(sum(scores) / len(scores) if scores else None),
            str(sum(o.total_tokens or 0 for o in group)),
            format_seconds(sum(o.duration_ms for o in group) / len(group)),
        )
    return table


def calls_note(stats: Mapping[str, EndpointStats]) -> Text | None:
    """A line on rate limits met during the run, when there were any; else None."""
    parts = []
    for provider, endpoint in stats.items():
        if endpoint.rate_limited:
            parts.append(
                f"{provider} answered {endpoint.rate_limited} request(s) with HTTP 429; pt "
                f"waited {endpoint.waited_seconds:.1f} s for them in all and went down to "
                f"{endpoint.lowest_limit} call(s) at once towards it"
            )
    return Text("Rate limits: " + "; ".join(parts), style="yellow") if parts else None


def summary_table(
    outcomes: Sequence[TestRunRow], *, title: str = "Test runs", compact: bool = False
) -> RenderableType:
    """One line per test run: test, version, row, status, score, turns, tokens, time.

    ``compact`` draws no cell borders, leaving the width to the names (for long lists); a
    table too wide for the terminal is drawn compact too. Names wrap, and a name longer than
    its column folds onto the next line: no part of a name is cut.
    """
    rows = [_summary_cells(outcome) for outcome in sort_outcomes(outcomes)]

    def squeezed(console: Console, options: ConsoleOptions) -> Table:
        return share_width(console, options, _summary_layout(rows, title, compact=True), 0, 2)

    layouts = [] if compact else [_summary_layout(rows, title, compact=False)]
    return FirstThatFits(*layouts, _summary_layout(rows, title, compact=True), squeezed)


def _summary_layout(rows: list[tuple[RenderableType, ...]], title: str, *, compact: bool) -> Table:
    table = borderless_table(title) if compact else Table(title=title, title_justify="left")
    table.add_column("test", overflow="fold")
    table.add_column("version", justify="right", no_wrap=True)
    table.add_column("row", overflow="fold")
    table.add_column("status", no_wrap=True)
    for name in ("score", "turns", "tokens", "time"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    return table


def _summary_cells(outcome: TestRunRow) -> tuple[RenderableType, ...]:
    return (
        QualifiedName(outcome.prompt_slug, outcome.test_name),
        f"v{outcome.version}",
        Text(outcome.row_name),
        Text(outcome.status, style=STATUS_STYLES[outcome.status]),
        format_score(outcome.score),
        "—" if outcome.turn_count is None else str(outcome.turn_count),
        "—" if outcome.total_tokens is None else str(outcome.total_tokens),
        format_seconds(outcome.duration_ms),
    )


def totals_line(outcomes: Sequence[TestRunRow], run: RunRecord | None = None) -> Text:
    """``12 test runs: 10 passed, 1 failed, 1 error, 1 invalid in 3.2s · mock``: invalid and
    inconclusive only when there are some."""
    counts = status_counts(outcomes)
    noun = "test run" if len(outcomes) == 1 else "test runs"
    line = Text(f"{len(outcomes)} {noun}: ", style="bold")
    shown = [s for s in counts if s not in UNDECIDED or counts[s]]
    for index, status in enumerate(shown):
        if index:
            line.append(", ")
        count = counts[status]
        line.append(f"{count} {status}", style=STATUS_STYLES[status] if count else "dim")
    line.append(f" in {format_seconds(wall_time_ms(outcomes, run))}")
    if (run and run.mock) or any(o.mock for o in outcomes):
        line.append(" · mock", style="yellow")
    if run and (run.options.get("cassettes") or {}).get("mode") == "replay":
        line.append(" · replay", style="yellow")
    if run and run.status not in ("completed", "running"):
        line.append(f" · run {run.status}", style=RUN_STATUS_STYLES.get(run.status, "red"))
    return line


def simulator_line(outcomes: Sequence[TestRunRow]) -> Text | None:
    """``Simulator error rate: 4% (1 of 24 conversations invalid; 1 played again)``, over the
    conversations a simulated user played, regenerated ones included; None when it played none.
    """
    invalid, conversations = simulator_errors(outcomes)
    if not conversations:
        return None
    again = sum(len(o.regenerated) for o in outcomes)
    line = Text("Simulator error rate: ", style="dim")
    line.append(
        f"{100 * invalid / conversations:.0f}% ({invalid} of {conversations} conversation"
        f"{'s' if conversations != 1 else ''} invalid"
        + (f"; {again} played again" if again else "")
        + ")",
        style="yellow" if invalid else "dim",
    )
    return line


def wall_time_ms(outcomes: Sequence[TestRunRow], run: RunRecord | None = None) -> float:
    """How long the run took: the run's own times when finished, else the outcomes' span."""
    # Test runs overlap under concurrency, so wall time is the span, not the sum of durations.
    if run and run.finished_at:
        return (run.finished_at - run.started_at).total_seconds() * 1000
    if not outcomes:
        return 0.0
    start = min(o.started_at for o in outcomes)
    end = max(o.finished_at for o in outcomes)
    return (end - start).total_seconds() * 1000


def runs_table(runs: Sequence[RunRecord]) -> RenderableType:
    """``pt runs list``: one line per ``pt run-tests`` invocation, in the order given.

    The id and the counts are never cut. Where the table does not fit, it leaves out the start
    time (the id holds it: ``run-YYYYMMDD-HHMMSS-…``, UTC), then the mock column, and then
    wraps the status.
    """
    return FirstThatFits(
        _runs_layout(runs, started=True, mock=True),
        _runs_layout(runs, started=False, mock=True),
        _runs_layout(runs, started=False, mock=False),
    )


def _runs_layout(runs: Sequence[RunRecord], *, started: bool, mock: bool) -> Table:
    table = borderless_table("Runs")
    table.add_column("id", no_wrap=True)
    if started:
        table.add_column("started", no_wrap=True)
    table.add_column("status", overflow="fold")
    if mock:
        table.add_column("mock", no_wrap=True, min_width=4)
    undecided = [s for s in UNDECIDED if any(getattr(r, s) for r in runs)]
    for name in ("total", "passed", "failed", "errored", *undecided):
        table.add_column(name, justify="right", no_wrap=True, min_width=len(name))
    for run in runs:
        status = Text(run.status, style=RUN_STATUS_STYLES.get(run.status, ""))
        if run.mock and not mock:
            status.append(" (mock)", style="yellow")
        table.add_row(
            Text(run.id),
            *([run.started_at.strftime("%Y-%m-%d %H:%M:%S")] if started else []),
            status,
            *(["yes" if run.mock else "no"] if mock else []),
            str(run.total),
            Text(str(run.passed), style="green" if run.passed else ""),
            Text(str(run.failed), style="red" if run.failed else ""),
            Text(str(run.errored), style="magenta" if run.errored else ""),
            *(Text(str(getattr(run, s)), style=STATUS_STYLES[s]) for s in undecided),
        )
    return table
