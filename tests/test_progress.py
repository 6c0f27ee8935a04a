"""The live display's source: test runs in flight with their step, and the run's spend."""

from __future__ import annotations

from io import StringIO

import pytest
from rich.console import Console, Group

from prompttracker.config.loader import load_project
from prompttracker.conversation import simulate
from prompttracker.engine import execute, plan
from prompttracker.evaluators import registry
from prompttracker.progress import Activity, step
from prompttracker.report.live import SHOWN_IN_FLIGHT, RunProgress, activity_lines
from prompttracker.store.store import Store
from tests.project_factory import write_project
from tests.test_conversation import ScriptedSession, ScriptedUser
from tests.test_engine import THREE_ROWS


async def test_the_conversation_marks_each_turn_on_the_play_in_flight() -> None:
    activity = Activity()
    seen: list[str] = []

    class Watched(ScriptedSession):
        async def _send(self, user_message: str):  # type: ignore[override]
            seen.extend(play.describe() for play in activity.in_flight.values())
            return await super()._send(user_message)

    with activity.playing("p::t v1 [row]", max_turns=3):
        await simulate(Watched(["a1", "a2", "a3"]), ScriptedUser(["u2", "u3"]), "u1", 3)
        step(scoring=True)
        assert [p.describe() for p in activity.in_flight.values()] == ["p::t v1 [row] · scoring"]
    assert seen == [f"p::t v1 [row] · turn {n}/3" for n in (1, 2, 3)]
    assert activity.in_flight == {}


def test_step_outside_a_watched_run_keeps_nothing() -> None:
    step(turn=2)  # no Activity: a no-op, not an error
    assert Activity().in_flight == {}


async def test_the_engine_shows_what_is_in_flight_and_the_spend_so_far(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = load_project(write_project(tmp_path, datasets={"billing": THREE_ROWS}))
    activity = Activity()
    snapshots: list[tuple[list[str], int]] = []
    original = registry.run_evaluators

    async def watched(specs, ctx):  # while a test run is scored: what the display would show
        meter = activity.meter
        assert meter is not None
        described = sorted(p.describe() for p in activity.in_flight.values())
        snapshots.append((described, meter.total.total_tokens))
        return await original(specs, ctx)

    monkeypatch.setattr("prompttracker.runner.run_evaluators", watched)
    with Store(tmp_path / "r.db") as store:
        planned = plan(project)
        report = await execute(
            project, planned, store, mock=True, concurrency=1, options={}, activity=activity
        )
    assert len(report.outcomes) == 3
    # One at a time (concurrency 1), in plan order: each is the only one in flight.
    assert [described for described, _ in snapshots] == [[f"{p.label} · scoring"] for p in planned]
    tokens = [spent for _, spent in snapshots]
    assert tokens == sorted(tokens) and tokens[0] > 0  # the spend grows as the run goes
    assert activity.in_flight == {}


def test_the_display_lists_the_oldest_plays_and_counts_the_rest() -> None:
    activity = Activity()
    plays = [activity.playing(f"p::t v1 [row {i}]", max_turns=4) for i in range(6)]
    for play in plays:
        play.__enter__().turn = 2
    lines = [line.plain for line in activity_lines(activity, mock=True)]
    assert lines == [
        *(f"  p::t v1 [row {i}] · turn 2/4" for i in range(SHOWN_IN_FLIGHT)),
        f"  and {6 - SHOWN_IN_FLIGHT} more in flight",
    ]
    for play in reversed(plays):
        play.__exit__(None, None, None)
    assert activity.in_flight == {}


def test_the_progress_bar_renders_eta_spend_and_plays_at_80_columns() -> None:
    from prompttracker.llm.call_layer import Meter
    from prompttracker.messages import Usage

    activity = Activity()
    activity.meter = Meter()
    activity.meter.add("assistant", Usage(input_tokens=1200, output_tokens=34), 0.0021)
    out = StringIO()
    console = Console(file=out, width=80, force_terminal=False)
    progress = RunProgress(activity, console=console, mock=False)
    progress.add_task("Running tests", total=10, completed=4)
    with activity.playing("billing_support::a long test name v2 [double charged]", 3) as play:
        play.turn = 2
        console.print(Group(*progress.get_renderables()))
    text = out.getvalue()
    assert "4/10" in text and "ETA" in text
    assert "1,234 tokens · $0.0021" in text
    assert "billing_support::a long test name v2 [double charged] · turn 2/3" in text
