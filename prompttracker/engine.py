"""Plan test runs, check they can start, play them concurrently, commit each as it finishes."""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prompttracker.api_types import ApiType
from prompttracker.config.loader import Project
from prompttracker.config.models import ModelConfig
from prompttracker.errors import ConfigError, RunStartError
from prompttracker.results import RunRecord, TestRunOutcome
from prompttracker.runner import PlannedRun, PromptVersionRunner
from prompttracker.store.store import Store

JUDGE_TYPES = {"llm_judge", "conversation_judge"}


@dataclass(frozen=True)
class Selection:
    """Which tests to run: glob patterns on ``slug::test`` and tags (any of)."""

    patterns: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass
class RunReport:
    run: RunRecord
    outcomes: list[TestRunOutcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.outcomes) and all(o.status == "passed" for o in self.outcomes)


def plan(project: Project, selection: Selection = Selection()) -> list[PlannedRun]:
    """Every enabled, selected test × version × row, in file order."""
    planned = []
    for slug, prompt in project.prompts.items():
        for test in prompt.tests:
            if not test.enabled or not _selected(f"{slug}::{test.name}", test.tags, selection):
                continue
            dataset = project.datasets[test.dataset]
            for version in project.versions_for(prompt, test):
                for row in dataset.rows:
                    planned.append(
                        PlannedRun(slug, prompt, test, version, test.dataset, dataset, row)
                    )
    if not planned:
        raise ConfigError(
            "no test to run"
            + (" matches the selection" if selection.patterns or selection.tags else ""),
            hint="add `tests:` to a prompt file, or check --filter/--tag against `pt validate`",
        )
    return planned


def _selected(name: str, tags: list[str], selection: Selection) -> bool:
    if selection.patterns and not any(
        fnmatch.fnmatchcase(name, p) or p in name for p in selection.patterns
    ):
        return False
    return not selection.tags or bool(set(tags) & set(selection.tags))


def required_configs(project: Project, planned: list[PlannedRun]) -> list[tuple[ModelConfig, str]]:
    """Every model config the run will call, each with who uses it (for error messages)."""
    uses: list[tuple[ModelConfig, str]] = [
        (p.version.model_config_, f"{project.prompt_file(p.prompt_slug)} v{p.version.version}")
        for p in planned
    ]
    if any(p.dataset.mode == "conversational" for p in planned):
        uses.append((project.settings.interlocutor, "the interlocutor setting (simulated user)"))
    if any(e.type in JUDGE_TYPES for p in planned for e in p.test.evaluators):
        uses.append((project.settings.judge, "the judge setting (LLM judges)"))
    unique: dict[tuple[str, str], tuple[ModelConfig, str]] = {}
    for config, user in uses:
        unique.setdefault((config.model_dump_json(), user), (config, user))
    return list(unique.values())


def preflight(project: Project, planned: list[PlannedRun], *, mock: bool) -> None:
    """Stop before any call when a route is not available or a key is missing."""
    from prompttracker.llm.clients import require_api_key
    from prompttracker.llm.router import effective_config, session_class

    users_by_provider: dict[str, list[str]] = {}
    for config, user in required_configs(project, planned):
        effective = effective_config(config, mock=mock)
        session_class(effective.api_type)
        if effective.api_type is not ApiType.MOCK:
            users = users_by_provider.setdefault(effective.provider, [])
            if user not in users:
                users.append(user)
    for provider, users in users_by_provider.items():
        try:
            require_api_key(project.settings, provider)
        except RunStartError as exc:
            shown = ", ".join(users[:4]) + (f" and {len(users) - 4} more" if len(users) > 4 else "")
            raise RunStartError(
                f"{exc.message}; needed by {shown}",
                hint=f"{exc.hint}; or leave those tests out with --tag / -k",
            ) from None


async def execute(
    project: Project,
    planned: list[PlannedRun],
    store: Store,
    *,
    mock: bool,
    concurrency: int,
    options: dict,
    on_start: Callable[[RunRecord], None] = lambda run: None,
    on_result: Callable[[TestRunOutcome], None] = lambda outcome: None,
) -> RunReport:
    """Play every planned run with at most ``concurrency`` at once.

    Each outcome is committed as soon as it finishes. On cancellation (Ctrl-C) the run is
    marked ``interrupted`` and everything finished stays in the database.
    """
    runner = PromptVersionRunner(project, mock=mock)
    run = store.start_run(mock=mock, project_root=str(project.root), options=options)
    on_start(run)
    report = RunReport(run=run)
    semaphore = asyncio.Semaphore(concurrency)

    async def play(item: PlannedRun) -> None:
        async with semaphore:
            try:
                outcome = await runner.run(item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one broken test run must not stop the others
                outcome = _crashed(item, exc, mock)
        store.record_test_run(run.id, outcome, version=item.version)
        report.outcomes.append(outcome)
        on_result(outcome)

    tasks = [asyncio.create_task(play(item)) for item in planned]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        report.run = store.finish_run(run.id, "interrupted")
        raise
    report.run = store.finish_run(run.id, "completed")
    return report


def _crashed(item: PlannedRun, exc: Exception, mock: bool) -> TestRunOutcome:
    from prompttracker.llm.router import effective_config

    now = datetime.now(UTC)
    return TestRunOutcome(
        test_name=item.test.name,
        prompt_slug=item.prompt_slug,
        prompt_name=item.prompt.name,
        version=item.version.version,
        dataset=item.dataset_name,
        row_name=item.row.name,
        model_config=effective_config(item.version.model_config_, mock=mock),
        status="error",
        error=f"{type(exc).__name__}: {exc}",
        started_at=now,
        finished_at=now,
        mock=mock,
    )
