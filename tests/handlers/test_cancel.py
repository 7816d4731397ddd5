"""DELETE /jobs/{job_id}: cancelling at once (PENDING) and cooperatively (RUNNING), for the owner only."""

import threading
import time
import uuid

import pytest

from jobs.handlers import cancel, on_failure, worker
from jobs.model import StoredResult
from tests.events import BOB, LambdaContext, cancel_event, checked_answer
from tests.handlers.conftest import job_item
from tests.handlers.test_on_failure import invocation_record
from tests.handlers.test_worker import get_status, run_worker, submit_job

pytestmark = pytest.mark.usefixtures("aws")


def call(event):
    return checked_answer(cancel.handler(event, LambdaContext(function_name="cancel", timeout_seconds=29)))


def test_a_pending_job_is_cancelled_at_once_and_never_runs():
    job_id = submit_job("sleep", {"seconds": 1})
    code, body, headers = call(cancel_event(job_id))
    assert code == 202
    assert body["status"] == "CANCELLED"
    assert "Retry-After" not in headers  # nothing more will happen

    assert run_worker(job_id)["outcome"] == "SKIPPED"  # the event still arrives; it changes nothing
    assert get_status(job_id)[0]["status"] == "CANCELLED"
    assert job_item(job_id)["attempts"] == 0


def test_a_running_job_stops_at_its_next_progress_report():
    job_id = submit_job("sleep", {"seconds": 30})
    answers: list = []

    def cancel_once_running() -> None:
        # The worker must run on the main thread (its deadline uses SIGALRM), so the
        # owner's DELETE comes from here, once the job shows RUNNING.
        give_up = time.monotonic() + 10
        while job_item(job_id)["status"] != "RUNNING" and time.monotonic() < give_up:
            time.sleep(0.02)
        answers.append(call(cancel_event(job_id)))

    owner = threading.Thread(target=cancel_once_running)
    started = time.monotonic()
    owner.start()
    outcome = run_worker(job_id)
    owner.join(timeout=10)

    assert outcome == {"job_id": job_id, "outcome": "CANCELLED"}
    assert time.monotonic() - started < 5  # stopped long before the task's 30 s
    [(code, body, headers)] = answers
    assert code == 202
    assert body["status"] == "RUNNING"
    assert body["cancel_requested"] is True
    assert headers["Retry-After"] == "2"  # poll until it shows CANCELLED
    job, _ = get_status(job_id)
    assert job["status"] == "CANCELLED"
    assert "cancel_requested" not in job and "result" not in job and "error" not in job


def test_a_cancel_request_wins_over_a_result_that_arrives_later():
    job_id = submit_job("sleep", {"seconds": 0})
    store = worker.runner._store
    assert store.claim(job_id, "req-1", lease_seconds=900) is not None
    assert call(cancel_event(job_id))[0] == 202
    assert store.complete(job_id, "req-1", StoredResult(13, inline_json='{"late":true}')) is False
    assert store.cancel(job_id, "someone-else") is False
    assert store.cancel(job_id, "req-1") is True
    assert job_item(job_id)["status"] == "CANCELLED"


def test_a_worker_that_died_after_the_request_leaves_the_job_cancelled_not_failed():
    job_id = submit_job("sleep", {"seconds": 0})
    assert worker.runner._store.claim(job_id, "req-dead", lease_seconds=900) is not None
    call(cancel_event(job_id))
    on_failure.handler(invocation_record(job_id), LambdaContext(function_name="on-failure"))
    assert get_status(job_id)[0]["status"] == "CANCELLED"


def test_a_retry_of_a_cancelled_running_job_cancels_instead_of_running():
    job_id = submit_job("sleep", {"seconds": 30})
    assert worker.runner._store.claim(job_id, "req-crashed", lease_seconds=900) is not None
    call(cancel_event(job_id))
    # Lambda retries the crashed attempt with the same request id.
    assert run_worker(job_id, LambdaContext(aws_request_id="req-crashed"))["outcome"] == "CANCELLED"


def test_cancelling_again_is_harmless():
    job_id = submit_job("sleep", {"seconds": 1})
    assert call(cancel_event(job_id))[0] == 202
    code, body, _ = call(cancel_event(job_id))
    assert (code, body["status"]) == (202, "CANCELLED")


@pytest.mark.parametrize(
    ("task", "task_input", "status"), [("sleep", {"seconds": 0}, "COMPLETED"), ("fail", {}, "FAILED")]
)
def test_a_finished_job_cannot_be_cancelled(task, task_input, status):
    job_id = submit_job(task, task_input)
    run_worker(job_id)
    code, body, _ = call(cancel_event(job_id))
    assert code == 409
    assert body == {"message": f"job {job_id} already finished as {status}"}
    assert get_status(job_id)[0]["status"] == status


def test_only_the_owner_may_cancel():
    job_id = submit_job("sleep", {"seconds": 1})
    code, body, _ = call(cancel_event(job_id, caller=BOB))
    assert (code, body) == (404, {"message": f"job {job_id} not found"})
    assert job_item(job_id)["status"] == "PENDING"
    assert call(cancel_event(str(uuid.uuid4())))[0] == 404
    assert call(cancel_event("not-a-uuid"))[:2] == (400, {"message": "job_id must be a UUID"})
