"""Planning, preflight, bounded concurrency and interruption."""

from __future__ import annotations

import asyncio

import pytest

from prompttracker.api_types import ApiType
from prompttracker.config.loader import load_project
from prompttracker.engine import Selection, execute, plan, preflight
from prompttracker.errors import ConfigError, NotImplementedRouteError, RunStartError
from prompttracker.planning import skipped_tests
from prompttracker.runner import PromptVersionRunner
from prompttracker.store.store import Store
from tests.project_factory import DATASET, PROMPT, write_project

THREE_ROWS = DATASET + "".join(
    f"""  - name: row {i}
    variables: {{ company: Acme, opening_message: "hello {i}" }}
    interlocutor_simulation_prompt: You are customer {i}.
    max_turns: 2
"""
    for i in (2, 3)
)


def test_plan_is_test_x_version_x_row(tmp_path):
    text = PROMPT.replace("status: active", "status: active") + (
        "  - name: second\n    dataset: billing\n    tags: [slow]\n    enabled: false\n"
    )
    write_project(tmp_path, prompts={"p": text}, datasets={"billing": THREE_ROWS})
    project = load_project(tmp_path)
    planned = plan(project)
    assert [p.label for p in planned] == [
        "p::double charge is refunded v1 [angry double charge]",
        "p::double charge is refunded v1 [row 2]",
        "p::double charge is refunded v1 [row 3]",
    ]
    # The only slow test is disabled: nothing to play, and it is reported skipped, not an error.
    assert plan(project, Selection(tags=("slow",))) == []
    assert skipped_tests(project, Selection(tags=("slow",))) == ["p::second"]
    with pytest.raises(ConfigError):
        plan(project, Selection(tags=("no-such-tag",)))


def test_preflight_needs_the_key_unless_mock(tmp_path, monkeypatch):
    project = load_project(write_project(tmp_path))
    planned = plan(project)
    with pytest.raises(RunStartError, match="OPENAI_API_KEY"):
        preflight(project, planned, mock=False)
    preflight(project, planned, mock=True)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    preflight(project, planned, mock=False)


def test_preflight_names_what_needs_the_missing_key(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    text = PROMPT.replace("provider: openai", "provider: anthropic").replace(
        "api: chat_completions", "api: messages"
    )
    project = load_project(write_project(tmp_path, prompts={"p": text}))
    with pytest.raises(RunStartError) as info:
        preflight(project, plan(project), mock=False)
    assert "ANTHROPIC_API_KEY (for anthropic: prompts/p.yaml v1)" in info.value.message
    assert "--tag" in (info.value.hint or "")


def test_preflight_lists_every_missing_key_at_once_with_hints_that_can_work(tmp_path, monkeypatch):
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    claude = PROMPT.replace("provider: openai", "provider: anthropic").replace(
        "api: chat_completions", "api: messages"
    )
    project = load_project(write_project(tmp_path, prompts={"p": claude}))
    with pytest.raises(RunStartError) as info:
        preflight(project, plan(project), mock=False)
    message, hint = info.value.message, info.value.hint or ""
    # The version needs Anthropic; the (default) simulated user needs OpenAI: both, in one error.
    assert message.startswith("2 API key(s) missing: ")
    assert "ANTHROPIC_API_KEY (for anthropic: prompts/p.yaml v1)" in message
    assert "OPENAI_API_KEY (for openai: the interlocutor setting (simulated user))" in message
    # --tag cannot leave out the simulated user: the hint says which setting to change.
    assert "`interlocutor:` and `judge:` settings" in hint
    assert "`export ANTHROPIC_API_KEY=...`" in hint and "`export OPENAI_API_KEY=...`" in hint


def test_preflight_rejects_a_route_missing_from_the_table(tmp_path, monkeypatch):
    from prompttracker.llm import router

    monkeypatch.delitem(router.ROUTES, ApiType.OPENAI_CHAT_COMPLETIONS)
    project = load_project(write_project(tmp_path))
    with pytest.raises(NotImplementedRouteError, match="openai_chat_completions"):
        preflight(project, plan(project), mock=False)


async def test_concurrency_is_bounded(tmp_path, monkeypatch):
    project = load_project(write_project(tmp_path, datasets={"billing": THREE_ROWS}))
    active = 0
    peak = 0
    original = PromptVersionRunner.run

    async def tracked(self, item):
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.01)
        try:
            return await original(self, item)
        finally:
            active -= 1

    monkeypatch.setattr(PromptVersionRunner, "run", tracked)
    store = Store(tmp_path / "r.db")
    report = await execute(project, plan(project), store, mock=True, concurrency=2, options={})
    assert peak == 2
    assert len(report.outcomes) == 3
    assert report.run.status == "completed" and report.run.total == 3


async def test_interrupted_run_keeps_finished_test_runs(tmp_path, monkeypatch):
    project = load_project(write_project(tmp_path, datasets={"billing": THREE_ROWS}))
    original = PromptVersionRunner.run
    first_done = asyncio.Event()

    async def hang_after_first(self, item):
        if item.row.name == "angry double charge":
            return await original(self, item)
        await first_done.wait()
        await asyncio.sleep(3600)  # never finishes: the run is cancelled

    monkeypatch.setattr(PromptVersionRunner, "run", hang_after_first)
    store = Store(tmp_path / "r.db")
    task = asyncio.create_task(
        execute(
            project,
            plan(project),
            store,
            mock=True,
            concurrency=3,
            options={},
            on_result=lambda outcome: first_done.set(),
        )
    )
    await first_done.wait()
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    reopened = Store(tmp_path / "r.db")
    (run,) = reopened.list_runs()
    assert run.status == "interrupted"
    assert run.total == 1
    (outcome,) = reopened.load_outcomes(run.id)
    assert outcome.row_name == "angry double charge"
    assert outcome.conversation is not None and outcome.conversation.turn_count >= 1


async def test_a_crashing_test_run_becomes_an_error_and_others_continue(tmp_path, monkeypatch):
    project = load_project(write_project(tmp_path, datasets={"billing": THREE_ROWS}))
    original = PromptVersionRunner.run

    async def crash_one(self, item):
        if item.row.name == "row 2":
            raise RuntimeError("boom")
        return await original(self, item)

    monkeypatch.setattr(PromptVersionRunner, "run", crash_one)
    report = await execute(
        project, plan(project), Store(tmp_path / "r.db"), mock=True, concurrency=1, options={}
    )
    statuses = {o.row_name: o.status for o in report.outcomes}
    assert statuses["row 2"] == "error"
    assert len(statuses) == 3
    assert "RuntimeError: boom" in next(o.error for o in report.outcomes if o.row_name == "row 2")


async def test_the_report_keeps_whole_only_what_it_is_asked_to(tmp_path):
    from prompttracker.results import TestRunOutcome, TestRunSummary

    project = load_project(write_project(tmp_path, datasets={"billing": THREE_ROWS}))
    with Store(tmp_path / "r.db") as store:
        report = await execute(
            project,
            plan(project),
            store,
            mock=True,
            concurrency=3,
            options={},
            keep=lambda outcome: outcome.row_name == "row 2",
        )
        stored = {o.row_name: o for o in store.load_outcomes(report.run.id)}
    kept = {o.row_name: o for o in report.outcomes}
    assert isinstance(kept["row 2"], TestRunOutcome)
    assert isinstance(kept["row 3"], TestRunSummary)
    assert kept["row 3"] == stored["row 3"].summary()  # the store has the rest
