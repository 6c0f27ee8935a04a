"""Planning: which test runs a run plays — the selection, repeats, shards, and resuming.

Every planned test run has a stable key (``PlannedRun.key``: test, version content, row,
repeat), so a plan is the same on every machine and in every run of the same files: a shard is
a deterministic part of it, a resumed run plays what its stored plan has not finished.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prompttracker.config.loader import Project
from prompttracker.errors import ConfigError
from prompttracker.hashing import short_id
from prompttracker.results import RunRecord
from prompttracker.runner import PlannedRun

if TYPE_CHECKING:
    from prompttracker.store.store import Store


@dataclass(frozen=True)
class Selection:
    """Which tests to run: glob patterns on ``slug::test`` and tags (any of)."""

    patterns: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Shard:
    """``--shard I/N``: the I-th of N parts of a plan (1-based)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        index, _, count = text.partition("/")
        try:
            shard = cls(int(index), int(count))
        except ValueError:
            shard = None
        if shard is None or not 1 <= shard.index <= shard.count:
            raise ConfigError(
                f"--shard {text!r} is not I/N with 1 ≤ I ≤ N",
                hint="for example --shard 2/4: the second of four parts",
            )
        return shard

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, planned: PlannedRun) -> bool:
        """Whether this shard plays ``planned``: by its row, so a row's repeats stay together,
        and by a hash, so every machine cuts the plan the same way."""
        return int(planned.row_key, 16) % self.count == self.index - 1

    def cut(self, planned: list[PlannedRun]) -> list[PlannedRun]:
        """This shard's part of the whole plan, in plan order."""
        return [p for p in planned if self.holds(p)]


@dataclass(frozen=True)
class Resumption:
    """What ``--resume`` plays: the stored run, its whole plan, and what it has not finished."""

    run: RunRecord
    whole: list[PlannedRun]  # the plan the run was cut from (all shards)
    shard: Shard | None
    remaining: list[PlannedRun]  # in plan order
    finished: int  # test runs already stored and kept


def plan_resumption(
    project: Project, store: Store, run_id: str, *, retry_errors: bool = False
) -> Resumption:
    """Re-plan a stored run with the selection it was started with, check that the project's
    files still give the same plan, and list what it has not finished (``retry_errors``: and
    what ended ``error``; their stored results are for the caller to remove, with
    ``Store.delete_errored``, once the run can start). Nothing is written here.

    A changed plan is refused, saying which planned test runs differ: the results would not
    belong together.
    """
    run = store.get_run(run_id)  # an id, a unique prefix, or "latest"
    stored_plan = store.run_plan(run.id)
    if not stored_plan:
        raise ConfigError(
            f"run {run.id} has no stored plan (it was made before pt stored plans)",
            hint="start a new run",
        )
    options = run.options
    selection = Selection(tuple(options.get("filters") or ()), tuple(options.get("tags") or ()))
    whole = plan(project, selection, repeat=options.get("repeat"))
    shard = Shard.parse(run.shard) if run.shard else None
    planned = shard.cut(whole) if shard else whole
    _check_same_plan(run.id, stored_plan, planned)
    done = store.finished_plan_keys(run.id, errors=not retry_errors)
    return Resumption(
        run=run,
        whole=whole,
        shard=shard,
        remaining=[p for p in planned if p.key not in done],
        finished=len(done),
    )


def _check_same_plan(run_id: str, stored: list[tuple[str, str]], planned: list[PlannedRun]) -> None:
    now = {p.key: p.label for p in planned}
    before = dict(stored)
    added = [label for key, label in now.items() if key not in before]
    removed = [label for key, label in before.items() if key not in now]
    if not added and not removed:
        return
    parts = []
    for what, labels in (
        ("planned now, not in the run", added),
        ("in the run, not planned now", removed),
    ):
        if labels:
            shown = "; ".join(labels[:3]) + (
                f" and {len(labels) - 3} more" if len(labels) > 3 else ""
            )
            parts.append(f"{what}: {shown}")
    raise ConfigError(
        f"cannot resume run {run_id}: the project's files no longer give its plan ("
        + " — ".join(parts)
        + ")",
        hint="a prompt version, row or test changed since the run (a changed version is a "
        "new test run); start a new run, or undo the change to resume",
    )


def plan_hash(planned: list[PlannedRun]) -> str:
    """The identity of a whole plan (its keys in order): shards of one plan share it."""

    return short_id(*(p.key for p in planned))


def plan(
    project: Project, selection: Selection = Selection(), *, repeat: int | None = None
) -> list[PlannedRun]:
    """Every enabled, selected test × version × row × repeat, in file order.

    A row's repeats are consecutive. ``repeat`` (``--repeat``) overrides each test's own.
    A shard is cut from this whole plan (``Shard.cut``).
    """
    from prompttracker.store.rows import version_hash

    planned = []
    for slug, prompt in project.prompts.items():
        for test in prompt.tests:
            if not test.enabled or not _selected(f"{slug}::{test.name}", test.tags, selection):
                continue
            dataset = project.datasets[test.dataset]
            repeats = repeat or test.repeat
            for version in project.versions_for(prompt, test):
                content = version_hash(slug, version)
                for row in dataset.rows:
                    planned += [
                        PlannedRun(
                            slug,
                            prompt,
                            test,
                            version,
                            test.dataset,
                            dataset,
                            row,
                            n,
                            repeats,
                            content,
                        )
                        for n in range(repeats)
                    ]
    if not planned and not skipped_tests(project, selection):
        raise ConfigError(
            "no test to run"
            + (" matches the selection" if selection.patterns or selection.tags else ""),
            hint="add `tests:` to a prompt file, or check --filter/--tag against `pt validate`",
        )
    return planned


def skipped_tests(project: Project, selection: Selection = Selection()) -> list[str]:
    """``prompt::test`` of every selected test that is ``enabled: false``: reported as skipped,
    never played."""
    return [
        f"{slug}::{test.name}"
        for slug, prompt in project.prompts.items()
        for test in prompt.tests
        if not test.enabled and _selected(f"{slug}::{test.name}", test.tags, selection)
    ]


def _selected(name: str, tags: list[str], selection: Selection) -> bool:
    if selection.patterns and not any(
        fnmatch.fnmatchcase(name, p) or p in name for p in selection.patterns
    ):
        return False
    return not selection.tags or bool(set(tags) & set(selection.tags))
