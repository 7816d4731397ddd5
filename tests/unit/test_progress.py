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


def test_a_report_that_cannot_be_stored_is_dropped_and_the_task_goes_on():
    # Progress is a hint: AWS trouble writing it is not the task's failure (found by an
    # outside attack: a failed write ended the job FAILED with the store's error text).
    calls: list[Progress] = []

    def failing(progress: Progress) -> bool:
        calls.append(progress)
        raise ConnectionError("the store did not answer")

    clock = FakeClock()
    reporter = ProgressReporter(failing, min_interval=0, clock=clock)
    reporter.report(10)
    reporter.report(20)
    assert [p.percent for p in calls] == [10, 20]  # each tried, none raised


def test_a_message_with_a_lone_surrogate_is_stored_with_a_replacement():
    written: list[Progress] = []
    ProgressReporter(recorder(written), min_interval=0).report(5, "bad \ud800 half")
    assert written == [Progress(5, "bad ? half")]  # storable as DynamoDB's UTF-8
