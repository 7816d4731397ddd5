"""The progress reporter that tasks call while they work.

Throttled, because a task may report on every loop iteration and each report is a
DynamoDB write: at most one write per interval, so a chatty task costs the same as a
quiet one. Reports inside the interval are dropped: progress is a hint for the client,
and the job's final status supersedes it. So is a report that cannot be stored: the task
goes on, and its outcome is recorded with retries of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from jobs.model import Progress
from jobs.observability import logger

T = TypeVar("T")


class JobNoLongerOwned(Exception):
    """The job was cancelled by its owner, finished, or taken over by another attempt: the
    task should stop. Let it propagate (do not catch it in a broad ``except Exception``)."""


class ProgressReporter:
    """Records a running job's progress, at most once per ``min_interval`` seconds.

    ``sink`` persists a progress value and returns False when this attempt no longer owns
    the job; the reporter then raises :class:`JobNoLongerOwned` so the task stops early.
    """

    def __init__(
        self,
        sink: Callable[[Progress], bool],
        min_interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sink = sink
        self._min_interval = min_interval
        self._clock = clock
        self._last_write: float | None = None
        self.writes = 0

    def report(self, percent: float, message: str | None = None) -> None:
        """Tell the client how far the job is (0-100), with an optional short message."""
        # A lone surrogate could not be stored (DynamoDB strings are UTF-8): it becomes "?".
        text = message[:200].encode("utf-8", "replace").decode() if message else None
        progress = Progress(int(max(0, min(100, percent))), text)
        now = self._clock()
        if self._last_write is not None and now - self._last_write < self._min_interval:
            return
        self._write(progress, now)

    def step(self, name: str, function: Callable[[], T]) -> T:
        """Run one named step of the task and return what ``function()`` returns. With
        ``dispatch=durable`` the step is checkpointed (``jobs.durable.DurableProgress``);
        here it simply runs, so a task written in steps works with every dispatcher."""
        return function()

    def wait(self, seconds: float) -> None:
        """Pause the task. With ``dispatch=durable`` the job waits without the function
        running; here it sleeps, within the attempt's time."""
        time.sleep(max(0.0, seconds))

    def _write(self, progress: Progress, now: float) -> None:
        self._last_write = now
        self.writes += 1
        try:
            owned = self._sink(progress)
        except Exception as error:  # AWS trouble storing a hint (the deadline is a BaseException)
            # The task is not at fault and goes on: its outcome is written with retries of its own.
            logger.warning("could not record progress; the task goes on", extra={"error": str(error)[:500]})
            return
        if not owned:
            raise JobNoLongerOwned("the job is no longer owned by this attempt")
