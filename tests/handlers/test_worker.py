"""The worker against moto's DynamoDB: completion, failure, timeouts, retries, redelivery."""

import json
import time
import uuid
from typing import Any

import boto3
import pytest

from jobs.handlers import status, submit, worker
from jobs.model import JobStatus, StoredResult
from jobs.runner import AttemptFailed
from jobs.strict_json import MAX_JSON_DEPTH
from tests.events import LambdaContext, checked_answer, status_event, submit_event
from tests.handlers.conftest import job_item

pytestmark = pytest.mark.usefixtures("aws")


def nested(levels: int) -> Any:
    """A list nested ``levels`` deep."""
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


def submit_job(task: str, task_input: dict) -> str:
    response = submit.handler(submit_event({"task": task, "input": task_input}), LambdaContext(function_name="submit"))
    assert response["statusCode"] == 202, response["body"]
    return json.loads(response["body"])["job_id"]


def run_worker(job_id: str, context: LambdaContext | None = None) -> dict:
    return worker.handler({"job_id": job_id, "correlation_id": "req-1"}, context or LambdaContext())


def get_status(job_id: str) -> tuple[dict, dict]:
    code, body, headers = checked_answer(status.handler(status_event(job_id), LambdaContext(function_name="status")))
    assert code == 200, body
    return body, headers


def test_submit_run_and_poll_to_completion():
    job_id = submit_job("sleep", {"seconds": 0.3})
    assert get_status(job_id)[0]["status"] == "PENDING"

    assert run_worker(job_id)["outcome"] == "COMPLETED"

    body, headers = get_status(job_id)
    assert body["status"] == "COMPLETED"
    assert body["result"]["slept_seconds"] >= 0.3
    assert body["progress"] == {"percent": 100}  # the last running message is gone
    assert body["attempts"] == 1
    assert "Retry-After" not in headers  # finished: nothing more to poll for


def test_progress_is_visible_while_running():
    job_id = submit_job("sleep", {"seconds": 1})  # reports every 0.1 s at most (progress_min_interval_ms)
    seen: list[int] = []
    original = worker.runner._store.report_progress

    def spy(job, attempt, progress):
        written = original(job, attempt, progress)
        seen.append(int(job_item(job)["progress_percent"]))
        return written

    worker.runner._store.report_progress = spy  # type: ignore[method-assign]
    try:
        run_worker(job_id)
    finally:
        worker.runner._store.report_progress = original  # type: ignore[method-assign]
    assert len(seen) >= 3  # several, whatever the load (about ten on an idle machine)
    assert seen == sorted(seen)
    assert 0 < seen[-1] < 100


def test_a_failing_task_fails_the_job_once_without_retry():
    job_id = submit_job("fail", {"message": "bad input data"})

    assert run_worker(job_id)["outcome"] == "FAILED"  # returned, not raised: Lambda must not retry

    body, _ = get_status(job_id)
    assert body["status"] == "FAILED"
    assert body["error"] == {"type": "TaskFailed", "message": "bad input data"}
    assert "result" not in body


def test_a_redelivered_event_for_a_finished_job_changes_nothing():
    job_id = submit_job("sleep", {"seconds": 0})
    run_worker(job_id)
    before = job_item(job_id)

    assert run_worker(job_id, LambdaContext(aws_request_id="another-delivery"))["outcome"] == "SKIPPED"

    assert job_item(job_id) == before


def test_a_duplicate_delivery_while_the_owner_runs_is_skipped():
    job_id = submit_job("sleep", {"seconds": 0})
    owner = worker.runner._store.claim(job_id, "owner-attempt", lease_seconds=900)
    assert owner is not None

    assert run_worker(job_id, LambdaContext(aws_request_id="duplicate"))["outcome"] == "SKIPPED"
    item = job_item(job_id)
    assert item["attempt_id"] == "owner-attempt"
    assert item["attempts"] == 1


def test_a_retry_after_a_crash_reclaims_the_job_and_finishes_it_once():
    job_id = submit_job("sleep", {"seconds": 0})
    # The first attempt claimed the job, then its process died (no final write).
    assert worker.runner._store.claim(job_id, "req-crashed", lease_seconds=900) is not None

    # Lambda retries the event with the same request id.
    assert run_worker(job_id, LambdaContext(aws_request_id="req-crashed"))["outcome"] == "COMPLETED"

    item = job_item(job_id)
    assert item["status"] == "COMPLETED"
    assert item["attempts"] == 2


def test_an_expired_lease_lets_another_delivery_take_over_and_the_stale_attempt_cannot_finish():
    job_id = submit_job("sleep", {"seconds": 0})
    store = worker.runner._store
    assert store.claim(job_id, "stale", lease_seconds=-1) is not None  # lease already over

    assert run_worker(job_id, LambdaContext(aws_request_id="fresh"))["outcome"] == "COMPLETED"

    assert store.complete(job_id, "stale", StoredResult(13, inline_json='{"late":true}')) is False
    assert json.loads(job_item(job_id)["result"]) != {"late": True}


def test_a_task_that_outlives_its_time_is_retried_then_failed_as_timed_out():
    job_id = submit_job("sleep", {"seconds": 30})
    request_id = str(uuid.uuid4())  # Lambda keeps the request id across retries

    for attempt in (1, 2):
        with pytest.raises(AttemptFailed) as raised:
            run_worker(job_id, LambdaContext(aws_request_id=request_id, timeout_seconds=1.5))
        assert raised.value.final is False
        item = job_item(job_id)
        assert item["status"] == "RUNNING"
        assert item["attempts"] == attempt
        assert item["last_error_type"] == "TimedOut"

    started = time.monotonic()
    with pytest.raises(AttemptFailed) as raised:
        run_worker(job_id, LambdaContext(aws_request_id=request_id, timeout_seconds=1.5))
    assert raised.value.final is True
    assert time.monotonic() - started < 1.5  # stopped before Lambda would have killed it

    body, _ = get_status(job_id)
    assert body["status"] == "FAILED"
    assert body["error"]["type"] == "TimedOut"
    assert "attempt 3 of 3 timed out" in body["error"]["message"]


def test_a_transient_error_is_retried(monkeypatch):
    from jobs import registry

    calls = []

    def flaky(task_input, progress):
        calls.append(1)
        if len(calls) == 1:
            raise registry.TransientTaskError("downstream busy")
        return {"ok": True}

    monkeypatch.setitem(registry.REGISTRY, "sleep", registry.TaskDefinition("sleep", flaky, {"type": "object"}, ""))
    job_id = submit_job("sleep", {"seconds": 1})
    request_id = "req-flaky"
    with pytest.raises(AttemptFailed):
        run_worker(job_id, LambdaContext(aws_request_id=request_id))
    assert run_worker(job_id, LambdaContext(aws_request_id=request_id))["outcome"] == "COMPLETED"
    assert get_status(job_id)[0]["result"] == {"ok": True}


@pytest.mark.parametrize(
    ("result", "error_type"),
    [
        ({"blob": "x" * 9000}, "ResultTooLarge"),
        ({"not_json": {1, 2}}, "ResultNotSerializable"),
        # Python's json writes these as bare NaN/Infinity, which no strict JSON parser reads.
        ({"ratio": float("nan")}, "ResultNotSerializable"),
        ({"ratio": [float("inf")]}, "ResultNotSerializable"),
        ({"ratio": -float("inf")}, "ResultNotSerializable"),
        # Python's parser recurses: a result it could write but not read back would be a 500
        # on every GET (found by an outside attack at ~980 levels); the cap is the inputs'.
        ({"deep": nested(MAX_JSON_DEPTH)}, "ResultNotSerializable"),
        ({"deep": nested(2000)}, "ResultNotSerializable"),
        ({"text": "lone \ud800"}, "ResultNotSerializable"),
        ({"count": 10**400}, "ResultNotSerializable"),  # JSON.parse would read Infinity
    ],
)
def test_results_must_be_strict_json_and_within_the_limit(monkeypatch, result, error_type):
    from jobs import registry

    monkeypatch.setitem(
        registry.REGISTRY, "sleep", registry.TaskDefinition("sleep", lambda i, p: result, {"type": "object"}, "")
    )
    job_id = submit_job("sleep", {"seconds": 1})
    assert run_worker(job_id)["outcome"] == "FAILED"
    job, _ = get_status(job_id)
    assert job["error"]["type"] == error_type and "result" not in job
    if error_type == "ResultNotSerializable":
        assert job["error"]["message"].startswith("the result is not JSON: ")


def test_a_strict_json_result_at_the_limits_is_kept_as_it_is(monkeypatch):
    from jobs import registry

    result = {"deep": nested(MAX_JSON_DEPTH - 1), "big": 10**308, "emoji": "\U0001f600", "text": '"[[[[\\'}
    monkeypatch.setitem(
        registry.REGISTRY, "sleep", registry.TaskDefinition("sleep", lambda i, p: result, {"type": "object"}, "")
    )
    job_id = submit_job("sleep", {"seconds": 1})
    assert run_worker(job_id)["outcome"] == "COMPLETED"
    assert get_status(job_id)[0]["result"] == result


def test_a_small_result_is_inline_and_a_large_one_is_a_presigned_link():
    small, large = submit_job("report", {"rows": 5}), submit_job("report", {"rows": 200})
    run_worker(small)
    run_worker(large, LambdaContext(aws_request_id="attempt-7"))

    inline, _ = get_status(small)
    assert inline["result"]["rows"][4] == {"n": 4, "square": 16}
    assert "result_url" not in inline and "result_location" not in job_item(small)

    job, _ = get_status(large)
    assert "result" not in job and "result" not in job_item(large)  # nothing large on the item
    assert job["result_bytes"] > 1024 and job["result_url_expires_in"] == 60
    url = job["result_url"]
    assert f"/results/{large}/attempt-7.json" in url  # one object per attempt
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=60" in url  # SigV4, short-lived
    stored = boto3.client("s3").get_object(Bucket="results", Key=f"results/{large}/attempt-7.json")
    assert stored["ContentType"] == "application/json"
    body = json.loads(stored["Body"].read())
    assert len(body["rows"]) == 200 and len(json.dumps(body, separators=(",", ":"))) == job["result_bytes"]


def test_an_unexpected_exception_fails_the_job_without_leaking_a_trace(monkeypatch):
    from jobs import registry

    def buggy(task_input, progress):
        return dict[str, int]()["missing"]

    monkeypatch.setitem(registry.REGISTRY, "sleep", registry.TaskDefinition("sleep", buggy, {"type": "object"}, ""))
    job_id = submit_job("sleep", {"seconds": 1})
    assert run_worker(job_id)["outcome"] == "FAILED"
    error = get_status(job_id)[0]["error"]
    assert error["type"] == "KeyError"
    assert "Traceback" not in error["message"]


@pytest.mark.parametrize("event", [{}, {"job_id": "nope"}, {"job_id": 42}])
def test_malformed_events_are_dropped_not_retried(event):
    assert worker.handler(event, LambdaContext())["outcome"] == "SKIPPED"


def test_an_event_for_an_unknown_job_is_skipped():
    assert run_worker(str(uuid.uuid4()))["outcome"] == "SKIPPED"


def test_completed_jobs_get_a_fresh_ttl():
    job_id = submit_job("sleep", {"seconds": 0})
    table = boto3.resource("dynamodb").Table("jobs")
    table.update_item(
        Key={"job_id": job_id}, UpdateExpression="SET expires_at = :e", ExpressionAttributeValues={":e": 1}
    )
    run_worker(job_id)
    assert job_item(job_id)["expires_at"] > time.time() + 6 * 86400
    assert job_item(job_id)["status"] == JobStatus.COMPLETED


@pytest.fixture
def log_lines():
    """The JSON log lines the functions write, as Powertools formats them."""
    import io
    import logging

    from jobs.observability import logger
    from jobs.runner import logger as runner_logger

    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logger.registered_formatter)
    logger._logger.addHandler(handler)  # the runner's child logger propagates here
    levels = logger.log_level, runner_logger.log_level
    logger.setLevel(logging.INFO)
    runner_logger.setLevel(logging.INFO)

    def read() -> list[dict]:
        lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
        buffer.seek(0)
        buffer.truncate()
        return lines

    yield read
    logger._logger.removeHandler(handler)
    logger.setLevel(levels[0])
    runner_logger.setLevel(levels[1])


def test_worker_logs_carry_the_api_request_id_and_no_job_keys_leak(log_lines):
    job_id = submit_job("sleep", {"seconds": 0})
    log_lines()
    worker.handler({"job_id": job_id, "correlation_id": "api-request-7"}, LambdaContext())
    completed = [line for line in log_lines() if line["message"] == "job completed"]
    assert len(completed) == 1
    assert completed[0]["correlation_id"] == "api-request-7"
    assert completed[0]["job_id"] == job_id

    worker.handler({"job_id": "bad"}, LambdaContext())  # the next invocation in the same sandbox
    lines = log_lines()
    assert lines
    assert all("job_id" not in line and "correlation_id" not in line for line in lines)
