"""``pt sync openai``: turn OpenAI Assistants into prompt-version YAML."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from prompttracker.cli.common import ProjectOption, console, handle_errors
from prompttracker.sync import DEFAULT_MAX_PAGES, SyncTarget

app = typer.Typer(help="Turn provider-side prompts into prompt-version YAML.", no_args_is_help=True)


@app.command("openai")
@handle_errors
def sync_openai(
    project: ProjectOption = Path("."),
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for the files (default: prompts/ under --project).",
            file_okay=False,
        ),
    ] = None,
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--from-file",
            help='Read an exported assistants list ({"object": "list", "data": [...]} or a JSON '
            "array) instead of the API; needs no key.",
            dir_okay=False,
        ),
    ] = None,
    target: Annotated[
        SyncTarget | None,
        typer.Option(
            "--as",
            help="Write versions for the Responses API or the Assistants API (shut down on "
            "2026-08-26). Default: responses for new files; an existing file keeps its API.",
            show_default=False,
        ),
    ] = None,
    max_pages: Annotated[
        int, typer.Option("--max-pages", min=1, help="Read at most this many pages of 100.")
    ] = DEFAULT_MAX_PAGES,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; write nothing.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Append new versions to hand-edited files too (their content is kept, their "
            "exact text is copied to <file>.bak).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """One prompts/assistant_<id>.yaml per assistant; a changed assistant appends a version.

    Exits 1 when an assistant was skipped (a hand-edited file) or could not be converted.
    """
    from prompttracker.report.sync import sync_summary, sync_table
    from prompttracker.sync.service import sync_openai_assistants

    report = sync_openai_assistants(
        project,
        out=out,
        from_file=from_file,
        target=target,
        max_pages=max_pages,
        dry_run=dry_run,
        force=force,
    )
    if as_json:
        typer.echo(json.dumps(report.model_dump(mode="json"), indent=2))
    else:
        console.print(sync_table(report))
        console.print(sync_summary(report))
    if report.exit_code:
        raise typer.Exit(report.exit_code)
