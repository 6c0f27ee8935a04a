"""``pt init``: scaffold a working project (prompt, dataset, settings, CI workflow, schemas)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from prompttracker.cli.common import console, handle_errors


@handle_errors
def init(
    directory: Annotated[
        Path,
        typer.Argument(help="Where to create the project (created when missing).", file_okay=False),
    ] = Path("."),
) -> None:
    """Create a project that passes `pt validate` and `pt run-tests --mock` as it is.

    Writes nothing when any file it would write already exists, and names those files.
    """
    from prompttracker.report.scaffold import scaffold_view
    from prompttracker.scaffold import init_project

    console.print(scaffold_view(init_project(directory)))
