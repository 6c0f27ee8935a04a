"""``pt judges check``: the LLM judges against a golden set of transcripts labelled by people."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from prompttracker.cli.common import ProjectOption, console, handle_errors

app = typer.Typer(help="Check the LLM judges against human verdicts.", no_args_is_help=True)


@app.command("check")
@handle_errors
def check(
    folder: Annotated[
        Path | None,
        typer.Argument(
            help="The golden set: a folder of labelled transcripts (default: golden/ in the "
            "project).",
            metavar="DIR",
            file_okay=False,
            show_default=False,
        ),
    ] = None,
    project: ProjectOption = Path("."),
    mock: Annotated[
        bool,
        typer.Option(
            "--mock",
            help="Judge offline: a smoke test of the plumbing (the mock's scores are a hash, "
            "not a judgement).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Run every judge of a golden set on its transcript and compare it with the human verdict.

    Exit 0: agreement and Cohen's kappa meet the judges_check settings; 1: they do not;
    2: bad input; 3: a missing key.
    """
    from prompttracker.golden import check_golden_set
    from prompttracker.report.golden import judges_check_view

    result = check_golden_set(project, folder, mock=mock)
    if as_json:
        typer.echo(json.dumps(result.model_dump(mode="json"), indent=2, ensure_ascii=False))
    else:
        console.print(judges_check_view(result))
    raise typer.Exit(0 if result.passed else 1)
