"""``pt validate``: check every prompt and dataset file without calling any API."""

from __future__ import annotations

from pathlib import Path

from prompttracker.cli.common import ProjectOption, console, handle_errors


@handle_errors
def validate(project: ProjectOption = Path(".")) -> None:
    """Check every prompt and dataset file; print every problem with its file and place."""
    from prompttracker.config.loader import load_project
    from prompttracker.engine import plan

    loaded = load_project(project)
    tests = sum(len(p.tests) for p in loaded.prompts.values())
    planned = plan(loaded) if tests else []
    console.print(
        f"[green]✓[/] {len(loaded.prompts)} prompt file(s), {len(loaded.datasets)} dataset(s), "
        f"{tests} test(s): {len(planned)} test run(s) planned. No problems found."
    )
