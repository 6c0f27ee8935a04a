"""``pt run-tests``: play every test, store the results, print them, exit 0/1."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from prompttracker.cli.common import (
    DbOption,
    ProjectOption,
    console,
    db_path,
    err_console,
    handle_errors,
)

if TYPE_CHECKING:
    from prompttracker.engine import RunReport
    from prompttracker.results import RunRecord, TestRunOutcome

T = TypeVar("T")


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
    from prompttracker.report.summary import FULL_TABLE_LIMIT
    from prompttracker.store.store import Store

    loaded = load_project(project)
    planned = plan(loaded, Selection(tuple(filters or ()), tuple(tags or ())))
    preflight(loaded, planned, mock=mock)
    workers = concurrency or loaded.settings.concurrency
    store = Store(db_path(project, db))
    options = {"concurrency": workers, "filters": filters or [], "tags": tags or []}
    # A large run prints a line only for what did not pass; the bar counts the rest.
    quiet_passes = len(planned) > FULL_TABLE_LIMIT
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
        progress.advance(task)
        if quiet_passes and outcome.status == "passed":
            return
        score = f"  score {outcome.score:.0f}" if outcome.score is not None else ""
        mark, style = STATUS_MARK[outcome.status]
        progress.console.print(Text.assemble((mark, style), f" {outcome.label}{score}"))

    try:
        with progress:
            report = _run_until_signalled(
                execute(
                    loaded,
                    planned,
                    store,
                    mock=mock,
                    concurrency=workers,
                    options=options,
                    on_start=started,
                    on_result=finished,
                    # Only what will be printed is kept whole; the rest is in the store.
                    keep=lambda o: transcripts is Transcripts.all or o.status != "passed",
                )
            )
    except (KeyboardInterrupt, _Terminated) as exc:
        how, code = ("Terminated", 143) if isinstance(exc, _Terminated) else ("Interrupted", 130)
        if current:
            run = store.get_run(current[0].id)
            console.print(
                f"[yellow]{how}.[/] Run {run.id} kept {run.total} finished test run(s); "
                f"see `pt runs show {run.id}`."
            )
        raise typer.Exit(code) from None
    finally:
        store.close()
    _report(report, transcripts, junit_xml)
    if report.store_error is not None:
        raise report.store_error
    raise typer.Exit(0 if report.ok else 1)


class _Terminated(Exception):
    """SIGTERM arrived during the run (what CI sends when a job is cancelled)."""


def _run_until_signalled(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run``, with SIGTERM handled like Ctrl-C: the run is cancelled and cleans up
    (finished test runs stored, the run marked ``interrupted``), then ``_Terminated`` is raised.
    """

    async def main() -> T:
        loop = asyncio.get_running_loop()
        this = asyncio.current_task()
        terminated = False

        def terminate() -> None:
            nonlocal terminated
            terminated = True
            if this is not None:
                this.cancel()

        loop.add_signal_handler(signal.SIGTERM, terminate)
        try:
            return await coroutine
        except asyncio.CancelledError:
            if terminated:
                raise _Terminated from None
            raise
        finally:
            loop.remove_signal_handler(signal.SIGTERM)

    return asyncio.run(main())


def _report(report: RunReport, transcripts: Transcripts, junit_xml: Path | None) -> None:
    from prompttracker.report.junit import write_junit
    from prompttracker.report.summary import calls_note, run_summary, totals_line
    from prompttracker.report.transcript import transcript_view
    from prompttracker.results import TestRunOutcome

    outcomes, run = report.outcomes, report.run
    console.print(run_summary(outcomes, run))
    shown = [
        o
        for o in outcomes
        if isinstance(o, TestRunOutcome)
        and (
            transcripts is Transcripts.all
            or (transcripts is Transcripts.failed and o.status != "passed")
        )
    ]
    for outcome in shown:
        console.print(transcript_view(outcome))
    if junit_xml:
        write_junit(outcomes, junit_xml, run=run)
        console.print(f"JUnit report: {junit_xml}")
    note = calls_note(report.calls)
    if note is not None:
        console.print(note)
    if report.callback_error is not None:
        error = report.callback_error
        err_console.print(
            Text.assemble(
                ("Warning:", "yellow"), f" progress output stopped: {type(error).__name__}: {error}"
            )
        )
    if report.unstored:
        where = "the summary above" + (" and the JUnit report" if junit_xml else "")
        err_console.print(
            f"[yellow]Warning:[/] {len(report.unstored)} finished test run(s) could not be "
            f"stored; they are only in {where}."
        )
    console.print(totals_line(outcomes, run))
