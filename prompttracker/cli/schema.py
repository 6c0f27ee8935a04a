"""``pt schema``: the JSON Schema of a prompt, dataset or settings file, for editors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from prompttracker.cli.common import console, handle_errors
from prompttracker.errors import ConfigError
from prompttracker.schemas import SchemaKind


@handle_errors
def schema(
    kind: Annotated[
        SchemaKind | None,
        typer.Argument(help="Which file: prompt (prompts/*.yaml), dataset, or settings."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", dir_okay=False, help="Write the schema to FILE."),
    ] = None,
    all_into: Annotated[
        Path | None,
        typer.Option(
            "--all",
            metavar="DIR",
            file_okay=False,
            help="Write all three schemas into DIR (e.g. `pt schema --all schemas`).",
        ),
    ] = None,
) -> None:
    """Print the JSON Schema (draft 2020-12) of a kind of file, generated from the models.

    Editors use it to complete and check keys: see the README, "Editor support".
    """
    from prompttracker.schemas import schema_text, write_schema, write_schemas

    if all_into is not None:
        if kind is not None or output is not None:
            raise ConfigError(
                "--all writes every schema: it takes no KIND and no --output",
                hint="run `pt schema --all DIR`, or `pt schema KIND -o FILE` for one",
            )
        target = all_into
    elif kind is None:
        raise ConfigError(
            "name the kind of file: prompt, dataset or settings",
            hint="run `pt schema prompt`, or `pt schema --all DIR` for all three",
        )
    elif output is None:
        typer.echo(schema_text(kind), nl=False)
        return
    else:
        target = output
    try:
        written = write_schemas(target) if kind is None else [write_schema(kind, target)]
    except OSError as exc:
        raise ConfigError(
            f"cannot write {target}: {exc.strerror or exc}", hint="pick a path you can write to"
        ) from None
    for path in written:
        console.print(f"[green]✓[/] wrote {path}")
