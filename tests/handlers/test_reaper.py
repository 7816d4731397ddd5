"""The stuck-job reaper against moto's DynamoDB, through the sparse active-jobs index."""

import time

import boto3
import pytest

from jobs.handlers import reaper
from jobs.model import JobError, JobStatus
from jobs.reaper import Reaper
from tests.conftest import TEST_ENVIRONMENT
from tests.events import LambdaContext, cancel_event
from tests.handlers.conftest import job_item
from tests.handlers.test_cancel import call as cancel
from tests.handlers.test_worker import get_status, run_worker, submit_job

pytestmark = pytest.mark.usefixtures("aws")


def jobs_table():
    return boto3.resource("dynamodb").Table(TEST_ENVIRONMENT["JOBS_TABLE_NAME"])


def let_deadline_pass(job_id: str) -> None:
    """As if the job's deadline (set at submit, an hour or more ahead) were behind us."""
    jobs_table().update_item(
        Key={"job_id": job_id}, UpdateExpression="SET stuck_after = :past", ExpressionAttributeValues={":past": 1}
    )


def run_reaper() -> dict:
    return reaper.handler({"source": "aws.events", "detail-type": "Scheduled Event"}, LambdaContext())


def test_a_job_whose_event_was_lost_is_failed_with_the_reason():
    job_id = submit_job("sleep", {"seconds": 0})  # moto accepts the invoke; no worker ever runs
    assert int(job_item(job_id)["stuck_after"]) > time.time() + 3600  # event age + timeout + slack
    assert run_reaper() == {"failed": [], "cancelled": []}  # not yet: it may still run

    let_deadline_pass(job_id)
    assert run_reaper() == {"failed": [job_id], "cancelled": []}
    job, headers = get_status(job_id)
    assert job["status"] == "FAILED"
    assert job["error"]["type"] == "DeadlineExceeded"
    assert "ended by the reaper" in job["error"]["message"]
    assert "Retry-After" not in headers
    assert "active_shard" not in job_item(job_id)  # out of the index: never looked at again
    assert run_reaper() == {"failed": [], "cancelled": []}


def test_a_running_job_abandoned_after_a_cancel_request_ends_cancelled():
    job_id = submit_job("sleep", {"seconds": 30})
    worker_store = reaper.reaper._store
    assert worker_store.claim(job_id, "req-vanished", lease_seconds=900) is not None  # type: ignore[attr-defined]
    assert cancel(cancel_event(job_id))[0] == 202
    let_deadline_pass(job_id)
    assert run_reaper() == {"failed": [], "cancelled": [job_id]}
    assert get_status(job_id)[0]["status"] == "CANCELLED"


def test_finished_jobs_leave_the_index_and_are_never_touched():
    done = submit_job("sleep", {"seconds": 0})
    failed = submit_job("fail", {})
    cancelled = submit_job("sleep", {"seconds": 1})
    run_worker(done)
    run_worker(failed)
    cancel(cancel_event(cancelled))
    for job_id in (done, failed, cancelled):
        item = job_item(job_id)
        assert "active_shard" not in item and "stuck_after" not in item
    assert run_reaper() == {"failed": [], "cancelled": []}
    assert [get_status(j)[0]["status"] for j in (done, failed, cancelled)] == ["COMPLETED", "FAILED", "CANCELLED"]


def test_a_worker_arriving_after_the_reaper_changes_nothing():
    job_id = submit_job("sleep", {"seconds": 0})
    let_deadline_pass(job_id)
    run_reaper()
    assert run_worker(job_id)["outcome"] == "SKIPPED"
    assert get_status(job_id)[0]["status"] == "FAILED"


def test_a_job_finishing_between_query_and_update_is_left_finished():
    job_id = submit_job("sleep", {"seconds": 0})
    let_deadline_pass(job_id)
    store = reaper.reaper._store

    class FinishesMeanwhile:
        def find_stuck(self, now: int, limit: int) -> list[str]:
            found = store.find_stuck(now, limit)
            run_worker(job_id)  # the worker completes it right after the query
            return found

        def expire(self, job_id: str, now: int, error: JobError) -> JobStatus | None:
            return store.expire(job_id, now, error)

    report = Reaper(FinishesMeanwhile(), stuck_after_seconds=60).run(int(time.time()))
    assert (report.failed, report.cancelled, report.finished_meanwhile) == ([], [], 1)
    assert get_status(job_id)[0]["status"] == "COMPLETED"


def test_a_backlog_is_worked_off_batch_by_batch_across_shards():
    job_ids = [submit_job("sleep", {"seconds": 0}) for _ in range(12)]
    assert len({job_item(j)["active_shard"] for j in job_ids}) > 1  # spread over the shards
    for job_id in job_ids:
        let_deadline_pass(job_id)
    batched = Reaper(reaper.reaper._store, stuck_after_seconds=60, batch_limit=5)
    now = int(time.time())
    sizes = [len(batched.run(now).failed) for _ in range(4)]
    assert sizes == [5, 5, 2, 0]
    assert {get_status(j)[0]["status"] for j in job_ids} == {"FAILED"}
