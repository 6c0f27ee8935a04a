"""Finished test runs are written off the event loop: one thread, batched transactions, retries.

The engine hands each finished test run to ``submit`` and goes on at once; the writer thread
takes whatever has queued up and stores it in one transaction. A write that fails for a reason
that may pass (a full disk, an I/O error) is retried; one that still fails — or cannot succeed
(read-only, damaged, locked past the busy timeout) — sets ``error``, tells the engine through
``on_failure``, and keeps every later test run in ``unstored`` instead of losing it silently.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
import time
from collections.abc import Callable

from prompttracker.errors import StoreError
from prompttracker.store.store import Finished, Store, database_problem

MAX_BATCH = 500
# After the first test run of a batch arrives, wait this long for more: one transaction for
# many test runs costs far less than one each, and a result waits at most this long in memory
# (Ctrl-C, SIGTERM and the end of the run drain the queue at once).
LINGER_SECONDS = 0.05
RETRY_DELAYS = (0.2, 1.0, 3.0)  # seconds before each retry of a write that may yet succeed
# Errors that may pass. SQLITE_BUSY is not among them: the busy timeout already waited.
_TRANSIENT = ("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_LOCKED", "SQLITE_PROTOCOL")

_STOP = object()


class StoreWriter:
    """Stores one run's finished test runs from a thread of its own. ``close`` drains it."""

    def __init__(
        self,
        store: Store,
        run_id: str,
        *,
        on_failure: Callable[[StoreError], None] = lambda error: None,
        retry_delays: tuple[float, ...] | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.stored = 0
        self.unstored: list[Finished] = []  # finished, but the database could not take them
        self.error: StoreError | None = None
        self._on_failure = on_failure
        self._retry_delays = RETRY_DELAYS if retry_delays is None else retry_delays
        self._loop = asyncio.get_running_loop()
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="pt-store-writer", daemon=True)
        self._thread.start()

    def submit(self, finished: Finished) -> None:
        """Queue a finished test run (and the version that ran) to be stored. Never blocks."""
        self._queue.put(finished)

    def close(self) -> None:
        """Store everything submitted so far, then stop the thread. Blocks; idempotent."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    def _work(self) -> None:
        stopping = False
        while not stopping:
            batch: list[Finished] = []
            item = self._queue.get()
            deadline = time.monotonic() + LINGER_SECONDS
            while True:
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)  # type: ignore[arg-type]
                if len(batch) >= MAX_BATCH:
                    break
                try:
                    item = self._queue.get(timeout=max(deadline - time.monotonic(), 0))
                except queue.Empty:
                    break
            if batch:
                self._write(batch)

    def _write(self, batch: list[Finished]) -> None:
        if self.error is not None:
            self.unstored.extend(batch)
            return
        for delay in (*self._retry_delays, None):
            try:
                self.store.record_test_runs(self.run_id, batch)
            except sqlite3.Error as exc:
                if delay is not None and (exc.sqlite_errorname or "").startswith(_TRANSIENT):
                    time.sleep(delay)
                    continue
                locked = (exc.sqlite_errorname or "").startswith("SQLITE_BUSY")
                self._fail(database_problem(exc), batch, locked=locked)
            except Exception as exc:  # a value that cannot be stored: report it, lose nothing else
                self._fail(f"a test run could not be stored ({type(exc).__name__}: {exc})", batch)
            else:
                self.stored += len(batch)
            return

    def _fail(self, problem: str, batch: list[Finished], *, locked: bool = False) -> None:
        fix = (
            "close what keeps it locked (an open `sqlite3` shell, a stuck process)"
            if locked
            else "free disk space or fix the file's permissions"
        )
        self.error = StoreError(
            f"could not write to the results database {self.store.path}: {problem}",
            hint=f"{fix}, then run again; what was stored is kept (`pt runs show {self.run_id}`)",
        )
        self.unstored.extend(batch)
        self._loop.call_soon_threadsafe(self._on_failure, self.error)
