"""Shared option aliases, the console, and the one place that turns errors into exit codes."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.segment import Segment

from prompttracker.errors import ConfigError, PromptTrackerError

if TYPE_CHECKING:
    from prompttracker.results import RunRecord, TestRunOutcome
    from prompttracker.store.store import Store

# Control characters that text from a model, a dataset or an API could carry to the terminal
# (ESC sequences recolour, move the cursor or retitle the window): shown, never obeyed.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def escape_controls(text: str) -> str:
    """``text`` with every control character but newline and tab written out (``\\x1b``)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class OutputConsole(Console):
    """A console whose reader may go away (``pt run-tests | head``): then it goes quiet.

    Rich's default exits the process on a broken pipe, which would kill a run whose results
    are still being stored; here the output stops and the run goes on to its normal exit code.

    Every text segment is stripped of control characters before it is written, whatever
    renders it (transcripts, tables, errors); rich's own styles and cursor moves are kept.
    """

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        return super()._render_buffer(
            segment if segment.control else Segment(escape_controls(segment.text), segment.style)
            for segment in buffer
        )

    def on_broken_pipe(self) -> None:
        self.quiet = True
        # Point the file descriptor at /dev/null so that later writes, and Python's flush at
        # exit, do not fail again.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.file.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass


console = OutputConsole(highlight=False)
err_console = OutputConsole(stderr=True, highlight=False)

ProjectOption = Annotated[
    Path,
    typer.Option(
        "--project",
        "-p",
        help="Project root holding prompts/ and datasets/.",
        file_okay=False,
        show_default=True,
    ),
]
DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help="Results database (default: the project setting, .prompttracker/results.db).",
        dir_okay=False,
    ),
]

P = ParamSpec("P")
R = TypeVar("R")


def handle_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Print ``Error:`` / ``Hint:`` for our errors and exit with their code."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except PromptTrackerError as exc:
            err_console.print(f"[bold red]Error:[/] {_escape(exc.message)}", soft_wrap=True)
            if exc.hint:
                err_console.print(f"[bold]Hint:[/] {_escape(exc.hint)}", soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def db_path(project: Path, db: Path | None) -> Path:
    """``--db`` wins; else the settings file's ``database`` under the project root."""
    if db is not None:
        return db
    from prompttracker.config.loader import load_settings, project_root

    return load_settings(project).database_path(project_root(project))


def open_store(project: Path, db: Path | None) -> Store:
    """The results database of a command that reads runs back; bad input when there is none."""
    from prompttracker.store.store import Store

    path = db_path(project, db)
    if not path.exists():
        raise ConfigError(
            f"no results database at {path}",
            hint="run `pt run-tests` first, or point --db at an existing results file",
        )
    return Store(path)


def load_run(project: Path, db: Path | None, run_id: str) -> tuple[RunRecord, list[TestRunOutcome]]:
    """A stored run (``latest``, its id, or a unique start or end of it) and its test runs."""
    store = open_store(project, db)
    try:
        run = store.get_run(run_id)
        return run, store.load_outcomes(run.id)
    finally:
        store.close()
