import pytest

from jobs.model import Progress
from jobs.progress import JobNoLongerOwned, ProgressReporter


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def recorder(written: list[Progress]):
    def sink(progress: Progress) -> bool:
        written.append(progress)
        return True

    return sink


def test_reports_are_throttled_to_one_write_per_interval():
    written: list[Progress] = []
    clock = FakeClock()
    reporter = ProgressReporter(recorder(written), min_interval=2.0, clock=clock)

    for step in range(100):  # a chatty task: 100 reports within 1 second
        clock.now = step / 100
        reporter.report(step)
    assert [p.percent for p in written] == [0]

    clock.now = 2.5
    reporter.report(60, "past the interval")
    assert written[-1] == Progress(60, "past the interval")
    assert reporter.writes == 2


def test_percent_is_clamped_and_message_truncated():
    written: list[Progress] = []
    reporter = ProgressReporter(recorder(written), min_interval=0)
    reporter.report(150, "x" * 500)
    reporter.report(-3)
    assert written[0].percent == 100
    assert written[0].message is not None
    assert len(written[0].message) == 200
    assert written[1].percent == 0


def test_lost_ownership_stops_the_task():
    reporter = ProgressReporter(lambda p: False, min_interval=0)
    with pytest.raises(JobNoLongerOwned):
        reporter.report(10)
