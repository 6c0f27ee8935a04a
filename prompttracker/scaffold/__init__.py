"""``pt init``: the files of a new project, all checked before any is written.

The project gets its JSON Schemas in ``schemas/`` (the files ``pt schema --all`` writes), and
every YAML file points at them with a relative ``# yaml-language-server: $schema=`` comment:
editors then complete and check keys offline, and the schemas are committed with the project,
so everyone who clones it gets them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from prompttracker import __version__
from prompttracker.config.settings import SETTINGS_FILE
from prompttracker.errors import ConfigError
from prompttracker.scaffold import templates
from prompttracker.schemas import SchemaKind, schema_text

GITIGNORE = ".gitignore"
IGNORED = ".prompttracker/"

# What happened to .gitignore: written by us; there already, ignoring .prompttracker/; there
# already without it (left alone: the user adds the line).
GitignoreState = Literal["created", "already_ignored", "left_alone"]


@dataclass(frozen=True)
class ScaffoldResult:
    """What ``init_project`` did: the files it wrote (relative to ``root``), and .gitignore."""

    root: Path
    written: tuple[str, ...]
    gitignore: GitignoreState


def project_files() -> dict[str, str]:
    """The files of a new project, by path relative to its root."""
    return {
        SETTINGS_FILE: templates.SETTINGS,
        f"prompts/{templates.PROMPT_SLUG}.yaml": templates.PROMPT,
        f"datasets/{templates.DATASET_NAME}.yaml": templates.DATASET,
        ".github/workflows/prompttracker.yml": templates.WORKFLOW.format(
            version=__version__, junit=templates.JUNIT_REPORT
        ),
        **{f"schemas/{kind.file_name}": schema_text(kind) for kind in SchemaKind},
    }


def init_project(root: Path) -> ScaffoldResult:
    """Write a new project into ``root`` (created when missing).

    Refuses with a ``ConfigError`` that names every file in the way — writing nothing — when
    any file it would write exists. ``.gitignore`` is written only when there is none.
    """
    if root.exists() and not root.is_dir():
        raise ConfigError(
            f"{root} is a file, not a folder", hint="name a new or existing folder: `pt init DIR`"
        )
    files = project_files()
    blocked = [name for name in files if _in_the_way(root, name)]
    if blocked:
        listed = "\n".join(f"  {root / name}" for name in blocked)
        raise ConfigError(
            f"pt init would overwrite {len(blocked)} file(s), so it wrote nothing:\n{listed}",
            hint="move or delete them, or start the project in a new folder: `pt init DIR`",
        )
    try:
        for name, text in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        gitignore = _gitignore(root / GITIGNORE)
    except OSError as exc:
        raise ConfigError(
            f"cannot write the project into {root}: {exc.strerror or exc} ({exc.filename or root})",
            hint="pick a folder you can write to",
        ) from None
    return ScaffoldResult(root=root, written=tuple(files), gitignore=gitignore)


def _in_the_way(root: Path, name: str) -> bool:
    """``name`` exists (a dangling link too), or one of its folders is a file."""
    path = root / name
    if os.path.lexists(path):
        return True
    return any(parent.exists() and not parent.is_dir() for parent in path.parents)


def _gitignore(path: Path) -> GitignoreState:
    if not os.path.lexists(path):
        path.write_text(templates.GITIGNORE, encoding="utf-8")
        return "created"
    lines = {
        line.strip().strip("/")
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
    }
    return "already_ignored" if IGNORED.strip("/") in lines else "left_alone"
