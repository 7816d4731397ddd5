"""dispatch=durable end to end: AWS's local durable runner plays the durable execution
service (checkpoints, waits, replays) for the unchanged worker, over HTTP on loopback.

The local worker's timeout is 4 s per invocation (tests/conftest.py): these jobs need more
than one invocation, as a job longer than 15 minutes would in AWS."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from local.server import LocalRuntime
from tests.e2e.test_jobs_e2e import dead_letters, submit, wait

# Only the durable variant of the session's runtimes.
pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("dispatch", ["durable"], indirect=True)]


def journal_of(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_steps_and_a_wait_longer_than_one_invocation_complete(runtime: LocalRuntime, alice, tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    worker_timeout = runtime.template.functions[_worker(runtime)].timeout_seconds
    started = time.monotonic()
    job_id = submit(alice, "stages", {"stages": 3, "stage_seconds": 1.5, "wait_seconds": 3, "journal": str(journal)})
    job = wait(alice, job_id, timeout=90)
    elapsed = time.monotonic() - started
    assert job["status"] == "COMPLETED", job
    assert job["result"] == {"stages": [1, 2, 3]}
    assert job["step"] == "stage-3"
    assert elapsed > worker_timeout  # more than one invocation could hold
    assert journal_of(journal) == [f"{what} stage-{n}" for n in (1, 2, 3) for what in ("start", "done")]


def test_a_crash_inside_a_step_resumes_without_running_finished_steps_again(
    runtime: LocalRuntime, alice, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    Path(f"{journal}.crash").touch()  # the process dies once, inside stage-2
    job_id = submit(alice, "stages", {"stages": 3, "crash_in": "stage-2", "journal": str(journal)})
    job = wait(alice, job_id, timeout=120)
    assert job["status"] == "COMPLETED", job
    assert not Path(f"{journal}.crash").exists()  # the crash did happen
    assert journal_of(journal) == [
        "start stage-1",
        "done stage-1",
        "start stage-2",  # killed here: Lambda invoked the worker again, which replayed stage-1's answer
        "start stage-2",
        "done stage-2",
        "start stage-3",
        "done stage-3",
    ]
    assert job["result"] == {"stages": [1, 2, 3]}


def test_cancel_stops_a_job_waiting_between_steps(runtime: LocalRuntime, alice, tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    job_id = submit(alice, "stages", {"stages": 2, "wait_seconds": 600, "journal": str(journal)})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and journal_of(journal) != ["start stage-1", "done stage-1"]:
        time.sleep(0.1)
    time.sleep(1)  # into the wait
    answer = alice.cancel(job_id)
    assert answer.status == 202
    assert answer.body["status"] == "CANCELLED"  # stopped at once, not at a progress report
    # The stopped execution's status-change event reaches the recorder, which leaves the
    # job as its owner asked and dead-letters nothing.
    time.sleep(3)
    job = alice.status(job_id).body
    assert job["status"] == "CANCELLED"
    assert journal_of(journal) == ["start stage-1", "done stage-1"]
    assert not [r for r in dead_letters(runtime) if r.get("detail", {}).get("durableExecutionName") == job_id]


def _worker(runtime: LocalRuntime) -> str:
    [logical_id] = [
        logical_id
        for logical_id, spec in runtime.template.functions.items()
        if spec.handler == "jobs.handlers.durable_worker.handler"
    ]
    return logical_id
