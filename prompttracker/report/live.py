"""The live display of a run in a terminal: the bar with finished/total, elapsed time and ETA;
the tokens and cost so far; and the test runs in flight, each with its turn."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from prompttracker.progress import Activity
from prompttracker.report.evidence import cost_of

SHOWN_IN_FLIGHT = 4  # test runs listed by name; the others are counted


class RunProgress(Progress):
    """A ``rich`` progress bar that also shows what ``activity`` holds. Transient: the run's
    output stays, the bar goes when the run ends."""

    def __init__(self, activity: Activity, *, console: Console, mock: bool) -> None:
        self.activity = activity  # before the base class, which renders once as it starts
        self.mock = mock
        super().__init__(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA", style="dim"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        yield from activity_lines(self.activity, mock=self.mock)


def activity_lines(activity: Activity, *, mock: bool) -> list[Text]:
    """The lines under the bar: spend so far, then the oldest test runs in flight."""
    lines = []
    if activity.meter is not None:
        total = activity.meter.total
        spent = f"{total.total_tokens:,} tokens · {cost_of(total)}"
        lines.append(Text(spent + (" (mock: nothing spent)" if mock else ""), style="dim"))
    plays = sorted(activity.in_flight.values(), key=lambda play: play.started)
    for play in plays[:SHOWN_IN_FLIGHT]:
        lines.append(Text(f"  {play.describe()}", no_wrap=True, overflow="ellipsis"))
    if len(plays) > SHOWN_IN_FLIGHT:
        lines.append(Text(f"  and {len(plays) - SHOWN_IN_FLIGHT} more in flight", style="dim"))
    return lines
