"""``pt evaluators list``: the evaluator types and their config keys."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from prompttracker.cli.common import console, handle_errors

app = typer.Typer(help="The evaluator types and their config keys.", no_args_is_help=True)


@app.command("list")
@handle_errors
def list_evaluators(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List every evaluator type with its config keys, types, defaults and a description."""
    from prompttracker.evaluators.catalog import catalog
    from prompttracker.report.evaluators import evaluators_view

    infos = catalog()
    if as_json:
        typer.echo(json.dumps([info.model_dump(mode="json") for info in infos], indent=2))
    else:
        console.print(evaluators_view(infos))
