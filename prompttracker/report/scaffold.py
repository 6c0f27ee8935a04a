"""What ``pt init`` prints: the files it wrote, what it did with .gitignore, what to run next."""

from __future__ import annotations

import shlex
from pathlib import Path

from rich.console import Group, RenderableType
from rich.text import Text

from prompttracker.scaffold import IGNORED, ScaffoldResult

_GITIGNORE = {
    "created": f"  .gitignore (ignores {IGNORED}: the results database)",
    "already_ignored": f"  .gitignore exists and already ignores {IGNORED}: left alone",
    "left_alone": (
        f"  .gitignore exists: left alone. Add the line {IGNORED} to it, so that the results "
        "database stays out of git"
    ),
}


def scaffold_view(result: ScaffoldResult) -> RenderableType:
    """The files written (relative to the project), then the next commands to try."""
    here = result.root.resolve() == Path.cwd().resolve()
    where = "the current folder" if here else str(result.root)
    lines = [Text.assemble(("✓", "green"), f" Created a PromptTracker project in {where}:")]
    lines += [Text(f"  {name}") for name in result.written]
    lines.append(Text(_GITIGNORE[result.gitignore]))
    steps = [] if here else [f"cd {shlex.quote(str(result.root))}"]
    steps += [
        "pt validate                  # check every file, call nothing",
        "pt run-tests --mock          # play the tests offline: every test run passes",
        "export OPENAI_API_KEY=sk-... # then the real thing:",
        "pt run-tests",
    ]
    lines += [Text(""), Text("Next:", style="bold"), *(Text(f"  {step}") for step in steps)]
    lines.append(
        Text(
            "\nEditors: the YAML files point at schemas/ for completion (VS Code: the YAML "
            "extension). CI: .github/workflows/prompttracker.yml.",
            style="dim",
        )
    )
    return Group(*lines)
