import pytest

from jobs.tasks import REGISTRY, TaskFailed, task


class RecordingProgress:
    def __init__(self) -> None:
        self.reports: list[float] = []

    def report(self, percent: float, message: str | None = None) -> None:
        self.reports.append(percent)


def test_example_tasks_are_registered_with_schemas():
    assert {"sleep", "fail", "primes"} <= set(REGISTRY)
    for definition in REGISTRY.values():
        assert definition.input_schema["type"] == "object"
        assert definition.description


def test_sleep_reports_progress_and_returns_elapsed_time():
    progress = RecordingProgress()
    result = REGISTRY["sleep"].function({"seconds": 0.2}, progress)
    assert result["slept_seconds"] >= 0.2
    assert len(progress.reports) > 5
    assert progress.reports == sorted(progress.reports)


def test_sleep_zero_seconds_returns_at_once():
    assert REGISTRY["sleep"].function({"seconds": 0}, RecordingProgress())["slept_seconds"] < 0.1


def test_fail_raises_task_failed_with_the_message():
    with pytest.raises(TaskFailed, match="on purpose"):
        REGISTRY["fail"].function({"message": "on purpose"}, RecordingProgress())


@pytest.mark.parametrize(("limit", "count"), [(2, 0), (3, 1), (10, 4), (100, 25), (1_000_000, 78_498)])
def test_primes_counts_primes_below_limit(limit, count):
    progress = RecordingProgress()
    assert REGISTRY["primes"].function({"limit": limit}, progress)["prime_count"] == count


def test_registering_a_name_twice_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        task("sleep", {"type": "object"})(lambda i, p: None)
