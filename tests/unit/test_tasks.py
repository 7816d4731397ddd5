"""The task registry, with the tests' own tasks; and the app's example tasks, while they exist.

A fork deletes the examples in ``lambdas/jobs/tasks.py``: their tests below then skip,
and nothing else in the suite notices (``tests/support/tasks.py`` brings its own)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pytest

import jobs.tasks as app_tasks
from jobs.registry import REGISTRY, TaskFailed, load_tasks, task

T = TypeVar("T")


class RecordingProgress:
    def __init__(self) -> None:
        self.reports: list[float] = []

    def report(self, percent: float, message: str | None = None) -> None:
        self.reports.append(percent)

    def step(self, name: str, function: Callable[[], T]) -> T:
        return function()

    def wait(self, seconds: float) -> None:
        pass


def example(name: str) -> Any:
    """The app's example task ``name`` (its function), or a skip once a fork has deleted it."""
    function = getattr(app_tasks, name, None)
    if function is None:
        pytest.skip(f"the example task {name!r} has been deleted")
    return function


def test_pipeline_runs_its_stages_as_steps_and_waits_once():
    class Steps(RecordingProgress):
        def __init__(self) -> None:
            super().__init__()
            self.steps: list[str] = []
            self.waits: list[float] = []

        def step(self, name: str, function: Callable[[], T]) -> T:
            self.steps.append(name)
            return function()

        def wait(self, seconds: float) -> None:
            self.waits.append(seconds)

    progress = Steps()
    result = example("pipeline")({"stages": 3, "stage_seconds": 0, "pause_seconds": 60}, progress)
    assert [stage["stage"] for stage in result["stages"]] == [1, 2, 3]
    assert progress.steps == ["stage-1", "stage-2", "stage-3"] and progress.waits == [60.0]
    assert progress.reports[-1] == 100


def test_the_tests_run_their_own_tasks_not_the_apps():
    assert load_tasks() is REGISTRY
    assert set(REGISTRY) == {"sleep", "fail", "primes", "report", "echo", "stages", "whoami"}
    for definition in REGISTRY.values():
        assert definition.function.__module__ == "tests.support.tasks"
        assert definition.input_schema["type"] == "object"
        assert definition.description


def test_registering_a_name_twice_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        task("sleep", {"type": "object"})(lambda i, p: None)


def test_sleep_reports_progress_and_returns_elapsed_time():
    progress = RecordingProgress()
    result = example("sleep")({"seconds": 0.2}, progress)
    assert result["slept_seconds"] >= 0.2
    assert len(progress.reports) > 5
    assert progress.reports == sorted(progress.reports)


def test_sleep_zero_seconds_returns_at_once():
    assert example("sleep")({"seconds": 0}, RecordingProgress())["slept_seconds"] < 0.1


def test_fail_raises_task_failed_with_the_message():
    with pytest.raises(TaskFailed, match="on purpose"):
        example("fail")({"message": "on purpose"}, RecordingProgress())


@pytest.mark.parametrize(("limit", "count"), [(2, 0), (3, 1), (10, 4), (100, 25), (1_000_000, 78_498)])
def test_primes_counts_primes_below_limit(limit, count):
    assert example("primes")({"limit": limit}, RecordingProgress())["prime_count"] == count
    assert REGISTRY["primes"].function({"limit": limit}, RecordingProgress())["prime_count"] == count  # the tests' own


def test_report_builds_the_rows_it_was_asked_for():
    rows = example("report")({"rows": 3}, RecordingProgress())["rows"]
    assert rows == [{"n": 0, "square": 0}, {"n": 1, "square": 1}, {"n": 2, "square": 4}]
