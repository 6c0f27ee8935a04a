"""``pt runs list|show``: read stored runs and transcripts back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from prompttracker.cli.common import DbOption, ProjectOption, console, db_path, handle_errors
from prompttracker.cli.run_tests import Transcripts
from prompttracker.errors import ConfigError

app = typer.Typer(help="Read stored runs and transcripts back.", no_args_is_help=True)


def _open_store(project: Path, db: Path | None):
    from prompttracker.store.store import Store

    path = db_path(project, db)
    if not path.exists():
        raise ConfigError(
            f"no results database at {path}",
            hint="run `pt run-tests` first, or point --db at an existing results file",
        )
    return Store(path)


@app.command("list")
@handle_errors
def list_runs(
    project: ProjectOption = Path("."),
    db: DbOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many runs.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List the most recent runs, newest first."""
    from prompttracker.report.summary import runs_table

    store = _open_store(project, db)
    try:
        runs = store.list_runs(limit=limit)
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in runs], indent=2))
    else:
        console.print(runs_table(runs))


@app.command("show")
@handle_errors
def show_run(
    run_id: Annotated[
        str, typer.Argument(help="Run id (or a unique prefix), from `pt runs list`.")
    ],
    project: ProjectOption = Path("."),
    db: DbOption = None,
    transcripts: Annotated[
        Transcripts, typer.Option("--transcripts", help="Which transcripts to print.")
    ] = Transcripts.all,
) -> None:
    """Print a stored run: its summary table and transcripts."""
    from prompttracker.report.summary import summary_table, totals_line
    from prompttracker.report.transcript import transcript_view

    store = _open_store(project, db)
    try:
        run = store.get_run(run_id)
        outcomes = store.load_outcomes(run.id)
    finally:
        store.close()
    console.print(summary_table(outcomes))
    for outcome in outcomes:
        if transcripts is Transcripts.all or (
            transcripts is Transcripts.failed and outcome.status != "passed"
        ):
            console.print(transcript_view(outcome))
    console.print(totals_line(outcomes, run))
