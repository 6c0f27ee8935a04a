"""``pt report RUN_ID -o report.html``: a stored run as one self-contained HTML file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from prompttracker.cli.common import (
    DbOption,
    ProjectOption,
    console,
    handle_errors,
    load_run,
)


@handle_errors
def report(
    run_id: Annotated[
        str,
        typer.Argument(
            help="Run id, or its start or end if no other run has it, or `latest` "
            "(as `pt runs show` takes it)."
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="The HTML file to write (replaced if it exists; its folder is created).",
            dir_okay=False,
        ),
    ] = Path("report.html"),
    project: ProjectOption = Path("."),
    db: DbOption = None,
) -> None:
    """Write one offline HTML file of a stored run: summary, filters, transcripts, evidence."""
    from prompttracker.report.html import write_html_report

    run, outcomes = load_run(project, db, run_id)
    path = write_html_report(run, outcomes, output)
    size = path.stat().st_size
    console.print(f"HTML report of {run.id} ({len(outcomes)} test runs, {size:,} bytes): {path}")
