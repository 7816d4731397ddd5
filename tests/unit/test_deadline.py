import time

import pytest

from jobs.deadline import AttemptTimedOut, deadline


def test_interrupts_a_sleeping_task():
    started = time.monotonic()
    with pytest.raises(AttemptTimedOut), deadline(0.2):
        time.sleep(5)
    assert time.monotonic() - started < 1


def test_a_task_catching_exception_cannot_swallow_it():
    def stubborn() -> None:
        try:
            while True:
                time.sleep(0.01)
        except Exception:
            pass

    with pytest.raises(AttemptTimedOut), deadline(0.1):
        stubborn()


def test_no_alarm_fires_after_the_block():
    with deadline(0.1):
        pass
    time.sleep(0.2)  # would raise here if the timer had been left running


def test_no_time_left_fails_at_once():
    with pytest.raises(AttemptTimedOut), deadline(0):
        pytest.fail("the block must not run")
