"""The ``pt`` command line: one module per command group, all thin."""

from __future__ import annotations

import typer

from prompttracker import __version__
from prompttracker.cli import (
    chat,
    evaluators,
    init,
    judges,
    report,
    run_tests,
    runs,
    schema,
    sync,
    validate,
    vector_stores,
)

app = typer.Typer(
    name="pt",
    help="PromptTracker: test LLM prompts the way you test code.",
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("run-tests")(run_tests.run_tests)
app.command("validate")(validate.validate)
app.command("chat")(chat.chat)
app.command("report")(report.report)
app.command("init")(init.init)
app.command("schema")(schema.schema)
app.add_typer(runs.app, name="runs")
app.add_typer(sync.app, name="sync")
app.add_typer(vector_stores.app, name="vector-stores")
app.add_typer(evaluators.app, name="evaluators")
app.add_typer(judges.app, name="judges")


@app.command("run", hidden=True, context_settings={"ignore_unknown_options": True})
def _run(args: list[str] | None = typer.Argument(None, hidden=True)) -> None:  # noqa: B008
    """`pt run` is what people type first: point at the command they mean."""
    from prompttracker.cli.common import err_console

    err_console.print("[bold red]Error:[/] there is no `pt run`")
    err_console.print("[bold]Hint:[/] did you mean `pt run-tests`? (`pt -h` lists the commands)")
    raise typer.Exit(2)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pt {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """PromptTracker: test LLM prompts the way you test code."""


def main() -> None:
    """Console-script entry point."""
    app()
