"""Stop a task before Lambda kills the process, so the attempt can still be recorded.

Uses SIGALRM: Lambda runs the Python handler on the main thread, where signals are
delivered, and the alarm interrupts pure-Python loops and ``time.sleep`` alike. A task
blocked inside a C call is interrupted when the call returns; the safety margin
(``TIMEOUT_MARGIN_SECONDS``) leaves room for that and for the final DynamoDB write.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


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

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
