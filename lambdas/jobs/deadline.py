"""Stop a task before Lambda kills the process, so the attempt can still be recorded.

Uses SIGALRM: Lambda runs the Python handler on the main thread, where signals are
delivered, and the alarm interrupts pure-Python loops and ``time.sleep`` alike. A task
blocked inside a C call is interrupted when the call returns; the safety margin
(``TIMEOUT_MARGIN_SECONDS``) leaves room for that and for the final DynamoDB write.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

# When the running attempt's deadline passes (time.monotonic()); none outside an attempt.
_ends_at: float | None = None


class AttemptTimedOut(BaseException):
    """The attempt's time is up. A BaseException so that a task's ``except Exception``
    cannot swallow it."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`AttemptTimedOut` inside the block once ``seconds`` have passed."""
    if seconds <= 0:
        raise AttemptTimedOut()

    def on_alarm(_signum: int, _frame: FrameType | None) -> None:
        raise AttemptTimedOut()

    global _ends_at  # noqa: PLW0603  one attempt runs at a time per process
    previous = signal.signal(signal.SIGALRM, on_alarm)
    _ends_at = time.monotonic() + seconds
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        _ends_at = None


def remaining_seconds() -> float:
    """Seconds left before the running attempt is stopped (``inf`` outside an attempt).

    For a task's own timeouts (a database query, an HTTP call): set them below this, so
    that a slow dependency fails the attempt with its own clear error rather than the
    generic timeout."""
    return math.inf if _ends_at is None else max(0.0, _ends_at - time.monotonic())
