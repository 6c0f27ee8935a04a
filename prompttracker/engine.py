"""Plan test runs, check they can start, play them concurrently, store each as it finishes."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from prompttracker.api_types import ApiType
from prompttracker.config.loader import Project
from prompttracker.config.models import ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.errors import RunStartError, StoreError
from prompttracker.llm.call_layer import CallLayer
from prompttracker.messages import Metered
from prompttracker.planning import Resumption as Resumption
from prompttracker.planning import Selection as Selection
from prompttracker.planning import Shard
from prompttracker.planning import plan as plan
from prompttracker.planning import plan_hash as plan_hash
from prompttracker.planning import plan_resumption as plan_resumption

# Planning is the engine's first step; its names are re-exported for callers of the engine.
from prompttracker.progress import Activity
from prompttracker.results import RunRecord, RunStatus, TestRunOutcome, TestRunRow
from prompttracker.runner import PlannedRun, PromptVersionRunner
from prompttracker.store.store import Store
from prompttracker.store.writer import StoreWriter

if TYPE_CHECKING:
    from prompttracker.llm.cassettes import Cassettes
    from prompttracker.llm.endpoint import EndpointStats

T = TypeVar("T")

JUDGE_TYPES = {"llm_judge", "conversation_judge"}
# Who needs a key, in preflight's error, for the calls the settings route.
INTERLOCUTOR_USER = "the interlocutor setting (simulated user)"
JUDGE_USER = "the judge setting (LLM judges)"


@dataclass
class RunReport:
    """What a run did: its record, every outcome, and what went wrong around the test runs."""

    run: RunRecord
    # One per finished test run: whole where ``keep`` said so, else its summary line.
    outcomes: list[TestRunRow] = field(default_factory=list)
    stored: int = 0
    store_error: StoreError | None = None  # the database stopped taking writes
    unstored: list[TestRunOutcome] = field(default_factory=list)  # finished, not stored
    callback_error: Exception | None = None  # a progress callback raised; not called again
    calls: dict[str, EndpointStats] = field(default_factory=dict)  # by provider
    metered: dict[str, Metered] = field(default_factory=dict)  # every call, by caller
    pricing: dict[str, Any] = field(default_factory=dict)  # where the prices came from
    # --max-cost was reached: these planned test runs were not started.
    not_started: int = 0
    # Providers that refused the key (401/403), with what they said; the planned test runs
    # that needed one of them and were not started.
    refused: dict[str, str] = field(default_factory=dict)
    refused_not_started: int = 0

    def __repr__(self) -> str:
        # Short on purpose: asyncio puts the main task's result in reprs that Python 3.11
        # builds as it restores signal handlers, and a repr of every outcome took seconds.
        return f"RunReport(run={self.run.id!r}, outcomes={len(self.outcomes)})"

    @property
    def budget_stopped(self) -> bool:
        return self.not_started > 0


def required_configs(project: Project, planned: list[PlannedRun]) -> list[tuple[ModelConfig, str]]:
    """Every model config the run will call, each with who uses it (for error messages)."""
    uses: list[tuple[ModelConfig, str]] = [
        (p.version.model_config_, f"{project.prompt_file(p.prompt_slug)} v{p.version.version}")
        for p in planned
    ]
    if any(p.dataset.mode == "conversational" for p in planned):
        uses.append((project.settings.interlocutor, INTERLOCUTOR_USER))
    if any(e.type in JUDGE_TYPES for p in planned for e in p.test.evaluators):
        uses.append((project.settings.judge, JUDGE_USER))
    unique: dict[tuple[str, str], tuple[ModelConfig, str]] = {}
    for config, user in uses:
        unique.setdefault((config.model_dump_json(), user), (config, user))
    return list(unique.values())


def preflight(
    project: Project, planned: list[PlannedRun], *, mock: bool, keys: bool = True
) -> None:
    """Stop before any call when a route is not available or (``keys``) a key is missing."""
    check_routes(project.settings, required_configs(project, planned), mock=mock, keys=keys)


def check_routes(
    settings: Settings, uses: list[tuple[ModelConfig, str]], *, mock: bool, keys: bool = True
) -> None:
    """``preflight`` for any list of model configs, each with who uses it: one
    ``RunStartError`` naming every missing key and who needs it."""
    from prompttracker.llm.router import effective_config, session_class

    users_by_provider: dict[str, list[str]] = {}
    for config, user in uses:
        effective = effective_config(config, mock=mock)
        session_class(effective.api_type)
        if effective.api_type is not ApiType.MOCK:
            users = users_by_provider.setdefault(effective.provider, [])
            if user not in users:
                users.append(user)
    missing = []
    for provider, users in users_by_provider.items() if keys else ():
        if not settings.api_key(provider):
            shown = ", ".join(users[:4]) + (f" and {len(users) - 4} more" if len(users) > 4 else "")
            missing.append((provider, settings.api_key_env(provider), users, shown))
    if not missing:
        return
    lines = [f"{env} (for {provider}: {shown})" for provider, env, _, shown in missing]
    settings_users = {INTERLOCUTOR_USER, JUDGE_USER}
    hints = [
        "set "
        + " and ".join(f"`export {env}=...`" for _, env, _, _ in missing)
        + " (keys are read from the environment, never from files)",
        "run with --mock to play offline",
    ]
    if any(set(users) & settings_users for _, _, users, _ in missing):
        hints.append(
            "the simulated user and the judges follow the `interlocutor:` and `judge:` settings "
            "in prompttracker.yaml, not --tag: point them at a provider whose key you have"
        )
    if any(set(users) - settings_users for _, _, users, _ in missing):
        hints.append("leave the tests of a provider out with --tag / -k")
    raise RunStartError(
        f"{len(missing)} API key(s) missing: " + "; ".join(lines),
        hint="; ".join(hints),
    )


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
    keep: Callable[[TestRunOutcome], bool] = lambda outcome: True,
    max_cost_usd: float | None = None,
    regenerate_invalid: int = 0,
    plan_hash: str | None = None,
    shard: Shard | None = None,
    resume: str | None = None,
    cassettes: Cassettes | None = None,
    activity: Activity | None = None,
) -> RunReport:
    """Play every planned run with at most ``concurrency`` at once, through one call layer.

    The report holds each outcome whole when ``keep`` says so and its summary line otherwise,
    so that a big run's memory does not grow with its conversations (they are in the store).

    Each outcome is handed to a writer thread as soon as it finishes, so the event loop never
    waits for the disk. When the database stops taking writes, no further test run starts and
    the report carries the ``store_error``; everything stored is kept. On cancellation (Ctrl-C,
    SIGTERM) the run is marked ``interrupted`` once every finished test run is stored.
    A callback that raises is not called again (``callback_error``); the run goes on.
    ``activity`` (for a progress display) is kept up to date with the test runs in flight and the
    run's meter.

    With ``max_cost_usd``, no test run starts once the run's metered cost reaches it; those in
    flight finish and are stored, the run is marked ``budget`` and the report counts what was
    ``not_started``. A conversation the simulated user made invalid is played again up to
    ``regenerate_invalid`` times (``PromptVersionRunner``). Once a provider refuses the key
    (401/403), no test run that needs it starts: the run is marked ``failed`` and the report
    says who ``refused`` what.

    With ``resume`` (a stored run's id), ``planned`` is what that run has not finished: it is
    played into the same run, which is marked ``running`` again.
    """
    calls = CallLayer(
        project.settings,
        concurrency=concurrency,
        max_cost_usd=max_cost_usd,
        cassettes=cassettes,
    )
    pricing = calls.pricer.source()
    run = (
        store.reopen_run(resume)
        if resume
        else store.start_run(
            mock=mock,
            project_root=str(project.root),
            options=options,
            pricing=pricing,
            plan=[(p.key, p.label) for p in planned],
            plan_hash=plan_hash,
            shard=str(shard) if shard else None,
        )
    )
    report = RunReport(run=run, pricing=pricing)
    if activity is not None:
        activity.meter = calls.meter
    _notify(on_start, run, report)
    workers: list[asyncio.Task[None]] = []
    writer = StoreWriter(store, run.id, on_failure=lambda error: _cancel(workers))
    pending = iter(planned)
    try:
        async with calls:
            runner = PromptVersionRunner(
                project, calls, mock=mock, regenerate_invalid=regenerate_invalid
            )

            async def work() -> None:
                for item in pending:
                    if calls.budget_reached:
                        report.not_started += 1
                        continue
                    if (refused := calls.refusals()) and _providers(project, item, mock) & set(
                        refused
                    ):
                        report.refused_not_started += 1
                        continue
                    if activity is None:
                        outcome = await _play(runner, item, mock)
                    else:
                        turns = item.row.max_turns if item.dataset.mode == "conversational" else 1
                        with activity.playing(item.label, turns):
                            outcome = await _play(runner, item, mock)
                    writer.submit((outcome, item.version))
                    report.outcomes.append(outcome if keep(outcome) else outcome.summary())
                    _notify(on_result, outcome, report)

            slots = min(concurrency, len(planned))  # none for an empty shard
            workers.extend(asyncio.create_task(work()) for _ in range(slots))
            try:
                await asyncio.gather(*workers)
            finally:
                report.calls = calls.stats
                report.metered = dict(calls.meter.by_caller)
                report.refused = calls.refusals()
    except asyncio.CancelledError:
        if writer.error is None:  # interrupted from outside, not stopped by the writer
            _cancel(workers)
            await asyncio.gather(*workers, return_exceptions=True)
            writer.close()
            report.run = _finish(store, run.id, "interrupted") or report.run
            raise
    finally:
        writer.close()
    report.stored = writer.stored
    if writer.error is not None:
        report.store_error = writer.error
        report.unstored = [outcome for outcome, _ in writer.unstored]
        report.run = _finish(store, run.id, "failed") or report.run
        return report
    status: RunStatus = (
        "budget" if report.budget_stopped else "failed" if report.refused else "completed"
    )
    finished = _finish(store, run.id, status)
    if finished is None:
        report.store_error = StoreError(
            f"all {writer.stored} test runs are stored, but the run {run.id} could not be "
            f"marked completed in {store.path}",
            hint="check the disk and the file's permissions",
        )
    else:
        report.run = finished
    return report


def _providers(project: Project, item: PlannedRun, mock: bool) -> set[str]:
    """The providers a test run calls: its version's, the simulated user's, the judges'."""
    from prompttracker.llm.router import effective_config

    return {
        effective_config(config, mock=mock).provider
        for config, _ in required_configs(project, [item])
    }


async def _play(runner: PromptVersionRunner, item: PlannedRun, mock: bool) -> TestRunOutcome:
    try:
        return await runner.run(item)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # one broken test run must not stop the others
        return _crashed(item, exc, mock)


def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()


def _notify(callback: Callable[[T], None], value: T, report: RunReport) -> None:
    """Call a progress callback; one that raises is dropped, and the run goes on."""
    if report.callback_error is not None:
        return
    try:
        callback(value)
    except Exception as exc:
        report.callback_error = exc


def _finish(store: Store, run_id: str, status: RunStatus) -> RunRecord | None:
    """Mark the run finished; None when the database cannot take even that."""
    try:
        return store.finish_run(run_id, status)
    except sqlite3.Error:
        return None


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
