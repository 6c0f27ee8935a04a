"""What a run is doing right now, for a live display: the test runs in flight (and the turn
each is on, and whether it is being scored) and the run's metered tokens and cost so far.

The engine opens a ``Play`` around each test run (``Activity.playing``); the conversation loop and
the evaluators mark their step on the current one (``step``) without knowing who watches. With
no ``Activity`` the marks are no-ops: nothing is kept.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prompttracker.llm.call_layer import Meter


@dataclass
class Play:
    """One test run in flight."""

    label: str
    max_turns: int
    started: float = field(default_factory=time.monotonic)
    turn: int = 0
    scoring: bool = False

    def describe(self) -> str:
        step = "scoring" if self.scoring else f"turn {self.turn}/{self.max_turns}"
        return f"{self.label} · {step}"


_current: ContextVar[Play | None] = ContextVar("pt_current_play", default=None)


class Activity:
    """The run's test runs in flight, oldest first, and its meter (set by the engine)."""

    def __init__(self) -> None:
        self.in_flight: dict[int, Play] = {}
        self.meter: Meter | None = None

    @contextmanager
    def playing(self, label: str, max_turns: int) -> Iterator[Play]:
        play = Play(label, max_turns)
        self.in_flight[id(play)] = play
        token = _current.set(play)
        try:
            yield play
        finally:
            _current.reset(token)
            del self.in_flight[id(play)]


def step(*, turn: int | None = None, scoring: bool = False) -> None:
    """Mark the current test run's step (a no-op outside a watched run)."""
    play = _current.get()
    if play is None:
        return
    if turn is not None:
        play.turn = turn
    play.scoring = scoring
