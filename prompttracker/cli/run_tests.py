"""``pt run-tests``: play every test, store the results, print them, exit 0/1."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from prompttracker.cli.common import DbOption, ProjectOption, console, db_path, handle_errors

if TYPE_CHECKING:
    from prompttracker.results import RunRecord, TestRunOutcome


class Transcripts(StrEnum):
    all = "all"
    failed = "failed"
    none = "none"


STATUS_MARK = {
    "passed": ("✓ pass", "green"),
    "failed": ("✗ fail", "red"),
    "error": ("! error", "magenta"),
}


@handle_errors
def run_tests(
    project: ProjectOption = Path("."),
    mock: Annotated[
        bool, typer.Option("--mock", help="Answer every LLM call offline and deterministically.")
    ] = False,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency", "-c", min=1, max=256, help="Test runs at once (default: setting, 8)."
        ),
    ] = None,
    filters: Annotated[
        list[str] | None,
        typer.Option(
            "--filter", "-k", help="Run tests whose 'prompt::test' matches (glob or text)."
        ),
    ] = None,
    tags: Annotated[
        list[str] | None, typer.Option("--tag", help="Run tests with this tag.")
    ] = None,
    transcripts: Annotated[
        Transcripts, typer.Option("--transcripts", help="Which transcripts to print.")
    ] = Transcripts.failed,
    junit_xml: Annotated[
        Path | None,
        typer.Option("--junit-xml", help="Write a JUnit XML report here.", dir_okay=False),
    ] = None,
    db: DbOption = None,
) -> None:
    """Run the tests of every prompt: simulate the conversations, evaluate, store, report."""
    from prompttracker.config.loader import load_project
    from prompttracker.engine import Selection, execute, plan, preflight
    from prompttracker.store.store import Store

    loaded = load_project(project)
    planned = plan(loaded, Selection(tuple(filters or ()), tuple(tags or ())))
    preflight(loaded, planned, mock=mock)
    workers = concurrency or loaded.settings.concurrency
    store = Store(db_path(project, db))
    options = {"concurrency": workers, "filters": filters or [], "tags": tags or []}
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    task = progress.add_task("Running tests" + (" (mock)" if mock else ""), total=len(planned))

    current: list[RunRecord] = []

    def started(run: RunRecord) -> None:
        current.append(run)
        progress.console.print(
            f"Run [bold]{run.id}[/]: {len(planned)} test runs, concurrency {workers}"
            + (" · [magenta]MOCK[/] (no API calls)" if mock else "")
        )

    def finished(outcome: TestRunOutcome) -> None:
        score = f"  score {outcome.score:.0f}" if outcome.score is not None else ""
        mark, style = STATUS_MARK[outcome.status]
        progress.console.print(Text.assemble((mark, style), f" {outcome.label}{score}"))
        progress.advance(task)

    try:
        with progress:
            report = asyncio.run(
                execute(
                    loaded,
                    planned,
                    store,
                    mock=mock,
                    concurrency=workers,
                    options=options,
                    on_start=started,
                    on_result=finished,
                )
            )
    except KeyboardInterrupt:
        if current:
            run = store.get_run(current[0].id)
            console.print(
                f"[yellow]Interrupted.[/] Run {run.id} kept {run.total} finished test run(s); "
                f"see `pt runs show {run.id}`."
            )
        raise typer.Exit(130) from None
    finally:
        store.close()
    _report(report.outcomes, report.run, transcripts, junit_xml)
    raise typer.Exit(0 if report.ok else 1)


def _report(
    outcomes: list[TestRunOutcome],
    run: RunRecord,
    transcripts: Transcripts,
    junit_xml: Path | None,
) -> None:
    from prompttracker.report.junit import write_junit
    from prompttracker.report.summary import summary_table, totals_line
    from prompttracker.report.transcript import transcript_view

    console.print(summary_table(outcomes))
    shown = [
        o
        for o in outcomes
        if transcripts is Transcripts.all
        or (transcripts is Transcripts.failed and o.status != "passed")
    ]
    for outcome in shown:
        console.print(transcript_view(outcome))
    if junit_xml:
        write_junit(outcomes, junit_xml, run=run)
        console.print(f"JUnit report: {junit_xml}")
    console.print(totals_line(outcomes, run))
