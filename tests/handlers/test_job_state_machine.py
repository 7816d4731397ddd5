"""Property-based test of the job life cycle (hypothesis stateful testing) on moto's DynamoDB.

Hypothesis interleaves everything that can happen to one job in production, in any
order and any number of times: the worker running a delivery (completing, failing,
timing out, or finding the job cancelled), a stale or duplicate attempt writing late,
Lambda's retries, the on-failure recorder, the owner's cancel requests and reaper runs.
Whatever the sequence: a job reaches at most one terminal state, once there its item
never changes again (no finish twice, no way out), and it leaves the reaper's index
when it finishes.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

import jobs.observability  # noqa: F401  (the parent logger the runner's child logger needs, as in Lambda)
from jobs.model import Job, JobError, JobStatus, StoredResult, new_job_id
from jobs.registry import TaskDefinition, TaskFailed, TransientTaskError
from jobs.repository import JobRepository
from jobs.runner import AttemptFailed, JobRunner, Outcome
from tests.conftest import TEST_ENVIRONMENT

OWNER = "arn:aws:iam::123456789012:user/alice"
ATTEMPTS = st.sampled_from(["req-1", "req-2", "req-3"])
FAR_FUTURE = 2**40  # a reaper run long after every deadline


class JobLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        table = boto3.resource("dynamodb").Table(TEST_ENVIRONMENT["JOBS_TABLE_NAME"])
        self.store = JobRepository(
            boto3.client("dynamodb"),
            TEST_ENVIRONMENT["JOBS_TABLE_NAME"],
            retention_seconds=3600,
            stuck_after_seconds=3600,
        )
        self.table = table
        self.finished: dict[str, Any] | None = None  # the item as it was when the job finished
        self.job_id = ""

    def runner(self, outcome: str) -> JobRunner:
        def behave(input: dict[str, Any], progress: Any) -> Any:
            """A task that does what the state machine asks of this delivery."""
            progress.report(50, "half way")  # where a cancel request is noticed
            if outcome == "fail":
                raise TaskFailed("asked to fail")
            if outcome == "transient":
                raise TransientTaskError("asked to be retried")
            return {"answer": 42}

        task = TaskDefinition("behave", behave, {"type": "object"}, "")
        return JobRunner(
            self.store,
            {"behave": task},
            max_attempts=3,
            max_result_bytes=4096,
            progress_min_interval=0,
            timeout_margin_seconds=0,
        )

    def item(self) -> dict[str, Any]:
        return dict(self.table.get_item(Key={"job_id": self.job_id}, ConsistentRead=True)["Item"])

    @initialize()
    def submit(self) -> None:
        job = Job(job_id=new_job_id(), owner=OWNER, task="behave", input={})
        self.store.create(job)
        self.job_id = job.job_id

    # -- what can happen to a job ------------------------------------------------------------

    @rule(attempt=ATTEMPTS, outcome=st.sampled_from(["complete", "fail", "transient"]))
    def deliver(self, attempt: str, outcome: str) -> None:
        """Lambda delivers the worker's event (first time, retry, or duplicate)."""
        before = self._terminal()
        try:
            report = self.runner(outcome).run(self.job_id, attempt, lambda: 900.0)
        except AttemptFailed:
            report = None
        if before or report is None:
            return
        status = JobStatus(self.item()["status"])
        expected = {
            Outcome.COMPLETED: JobStatus.COMPLETED,
            Outcome.FAILED: JobStatus.FAILED,
            Outcome.CANCELLED: JobStatus.CANCELLED,
        }.get(report.outcome)
        if expected is not None:  # the runner's word matches the store
            assert status is expected

    @rule(attempt=ATTEMPTS, expired=st.booleans())
    def stale_claim(self, attempt: str, expired: bool) -> None:
        """A duplicate delivery claims the job (taking over if the owner's lease ran out)."""
        self.store.claim(self.job_id, attempt, lease_seconds=-1 if expired else 900)

    @rule(attempt=ATTEMPTS)
    def late_complete(self, attempt: str) -> None:
        self.store.complete(self.job_id, attempt, StoredResult(6, inline_json='"late"'))

    @rule(attempt=ATTEMPTS)
    def late_fail(self, attempt: str) -> None:
        self.store.fail(self.job_id, JobError("Late", "a stale attempt"), attempt)

    @rule(attempt=ATTEMPTS)
    def late_progress_and_attempt_error(self, attempt: str) -> None:
        from jobs.model import Progress

        self.store.report_progress(self.job_id, attempt, Progress(10))
        self.store.record_attempt_error(self.job_id, attempt, JobError("TimedOut", "attempt timed out"))

    @rule()
    def on_failure_destination(self) -> None:
        """Lambda gave up on the event: the recorder fails the job, or cancels it if asked."""
        if not self.store.fail(self.job_id, JobError("RetriesExhausted", "gave up")):
            self.store.cancel(self.job_id)

    @rule()
    def owner_cancels(self) -> None:
        assert self.store.request_cancel(self.job_id, OWNER) is not None

    @rule()
    def reaper_runs(self) -> None:
        if self.job_id in self.store.find_stuck(FAR_FUTURE, limit=1000):
            self.store.expire(self.job_id, FAR_FUTURE, JobError("DeadlineExceeded", "reaped"))

    # -- what must always hold ---------------------------------------------------------------

    def _terminal(self) -> bool:
        return JobStatus(self.item()["status"]).is_terminal

    @invariant()
    def a_finished_job_never_changes_again(self) -> None:
        if not self.job_id:
            return
        item = self.item()
        status = JobStatus(item["status"])
        if self.finished is not None:
            assert item == self.finished, "a finished job was written to again"
        elif status.is_terminal:
            self.finished = item
            assert "active_shard" not in item and "stuck_after" not in item  # out of the reaper's index
            assert "lease_expires_at" not in item
            if status is JobStatus.COMPLETED:
                assert "result" in item and "error_type" not in item
            if status is JobStatus.FAILED:
                assert "error_type" in item and "result" not in item
            if status is JobStatus.CANCELLED:
                assert "result" not in item and "error_type" not in item
        else:
            assert "active_shard" in item  # unfinished jobs stay where the reaper looks


@pytest.mark.usefixtures("aws")
def test_no_sequence_of_events_finishes_a_job_twice_or_leaves_a_terminal_state():
    run_state_machine_as_test(
        JobLifecycle,
        settings=settings(
            max_examples=100,
            stateful_step_count=20,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
