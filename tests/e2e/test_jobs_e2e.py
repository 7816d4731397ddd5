"""The whole app over HTTP: API Gateway → submit → async worker → DynamoDB → status."""

from __future__ import annotations

import io
import json
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from jobs_cli import main as cli
from jobs_cli.client import JobsClient
from jobs_cli.main import Waiter
from local.server import LocalRuntime
from tests.e2e.conftest import ANY_TRANSPORT, execution_events, job_runner

pytestmark = pytest.mark.e2e


def submit(client: JobsClient, task: str, task_input: dict[str, Any], key: str | None = None) -> str:
    response = client.submit(task, task_input, key)
    assert response.status == 202, response.body
    assert str(response.header("Location")).endswith(f"/jobs/{response.body['job_id']}")
    return str(response.body["job_id"])


POLL_SECONDS = 0.5  # a test follows one job closely; the CLI's backoff grows to 10 s between polls


def wait(
    client: JobsClient, job_id: str, timeout: float = 60, poll_seconds: float | None = POLL_SECONDS
) -> dict[str, Any]:
    """The job once it is terminal: polled every ``poll_seconds`` at most (None: the CLI's own
    backoff from Retry-After, for many jobs at once)."""
    cap = poll_seconds if poll_seconds is not None else float("inf")
    job = Waiter(client, out=io.StringIO(), sleep=lambda delay: time.sleep(min(delay, cap))).wait(job_id, timeout)
    assert job is not None, f"job {job_id} did not finish in {timeout} s"
    return job


def dead_letters(runtime: LocalRuntime) -> list[dict[str, Any]]:
    sqs = runtime.aws_client("sqs")
    [url] = [url for name, url in runtime.queue_urls.items() if "DeadLetterQueue" in name]
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60).get("Messages"):
        messages.extend(json.loads(m["Body"]) for m in batch)
    return messages


def test_submit_poll_complete(alice):
    job_id = submit(alice, "sleep", {"seconds": 1})
    job = wait(alice, job_id)
    assert job["status"] == "COMPLETED"
    assert job["result"]["slept_seconds"] >= 1
    assert job["attempts"] == 1


@ANY_TRANSPORT
def test_the_functions_run_the_tests_own_tasks(alice):
    # "echo" exists only in tests/support/tasks.py, which the sandboxes preload: the suite
    # does not depend on the app's example tasks, which a fork deletes.
    job = wait(alice, submit(alice, "echo", {"any": ["thing", 1]}))
    assert (job["status"], job["result"]) == ("COMPLETED", {"echo": {"any": ["thing", 1]}})


def test_progress_is_reported_while_running(alice):
    job_id = submit(alice, "sleep", {"seconds": 2})
    out = io.StringIO()
    Waiter(alice, out=out, sleep=lambda _: time.sleep(0.2)).wait(job_id, 30)
    percents = [int(line.split("%")[0].split("]")[1]) for line in out.getvalue().splitlines()]
    assert any(0 < p < 100 for p in percents), out.getvalue()
    assert percents[-1] == 100


def test_failing_task_is_failed_with_its_error(runtime, alice, dispatch):
    job_id = submit(alice, "fail", {"message": "on purpose"})
    job = wait(alice, job_id)
    assert job["status"] == "FAILED"
    assert job["error"] == {"type": "TaskFailed", "message": "on purpose"}
    if dispatch == "stepfunctions":
        assert job["step"] == "process"  # where the workflow was when the task failed
        execution, _ = execution_events(runtime, job_id)
        assert (execution["status"], execution["error"]) == ("FAILED", "JobFailed")


SLOW_REDELIVERY = "with dispatch=sqs a retry waits the queue's visibility timeout (6 x 8 s); tests/handlers covers it"


def test_task_outliving_the_timeout_fails_after_retries_and_is_dead_lettered(runtime, alice, dispatch):
    if dispatch == "sqs":
        pytest.skip(SLOW_REDELIVERY)
    job_id = submit(alice, "sleep", {"seconds": 60})
    job = wait(alice, job_id, timeout=90)
    assert job["status"] == "FAILED"
    if dispatch == "stepfunctions":
        # The process step stops the task and raises TimedOut, which the definition retries
        # twice (worker_retry_attempts); then RecordFailure ends the job and the execution.
        assert job["error"]["type"] == "TimedOut" and job["step"] == "process"
        execution, events = execution_events(runtime, job_id)
        assert execution["status"] == "FAILED" and execution["error"] == "JobFailed"
        failures = [
            e["lambdaFunctionFailedEventDetails"]["error"] for e in events if e["type"] == "LambdaFunctionFailed"
        ]
        assert failures == ["TimedOut"] * 3
        return
    if dispatch == "durable":
        # One execution: the task outran each invocation (its progress reports noticed), and
        # each attempt after a pause ran in a fresh invocation; the third ended the job.
        assert job["error"]["type"] == "TimedOut" and "attempt 3 of 3" in job["error"]["message"]
        return
    assert job["attempts"] == 3  # 1 + worker_retry_attempts (2)
    assert job["error"]["type"] == "TimedOut"
    assert "attempt 3 of 3" in job["error"]["message"]
    deadline = time.time() + 30
    records: list[dict[str, Any]] = []
    while time.time() < deadline and not records:
        records = [r for r in dead_letters(runtime) if r["requestPayload"]["job_id"] == job_id]
        time.sleep(0.2)
    [record] = records
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["responsePayload"]["errorType"] == "AttemptFailed"


def test_worker_process_dying_mid_job_is_retried_and_finished_once(runtime, alice, dispatch):
    if dispatch == "sqs":
        pytest.skip(SLOW_REDELIVERY)
    job_id = submit(alice, "sleep", {"seconds": 2})
    deadline = time.time() + 30
    while alice.status(job_id).body["status"] != "RUNNING":
        assert time.time() < deadline
        time.sleep(0.05)
    # With stepfunctions the prepare step marks it RUNNING and the process step starts after:
    # the crash must hit the task, so wait for the runner to be busy with it.
    while job_runner(runtime).kill_busy_sandboxes() == 0:
        assert time.time() < deadline
        time.sleep(0.02)
    job = wait(alice, job_id)
    assert job["status"] == "COMPLETED"
    if dispatch == "stepfunctions":
        # Lambda answers Runtime.ExitError; the definition retries the step in the same
        # execution (the same attempt of the job, so one claim), and it finishes once.
        assert job["attempts"] == 1
        execution, events = execution_events(runtime, job_id)
        assert execution["status"] == "SUCCEEDED"
        failures = [
            e["lambdaFunctionFailedEventDetails"]["error"] for e in events if e["type"] == "LambdaFunctionFailed"
        ]
        assert failures == ["Runtime.ExitError"]
        return
    if dispatch == "durable":
        # Lambda invoked the worker again and the one execution replayed: one claim.
        assert job["attempts"] == 1 and job["result"]["slept_seconds"] >= 2
        return
    assert job["attempts"] == 2
    assert not [r for r in dead_letters(runtime) if r["requestPayload"]["job_id"] == job_id]


@ANY_TRANSPORT
def test_idempotent_submit(alice):
    first = submit(alice, "sleep", {"seconds": 0}, key="e2e-key-1")
    second = submit(alice, "sleep", {"seconds": 0}, key="e2e-key-1")
    assert first == second
    conflict = alice.submit("sleep", {"seconds": 1}, "e2e-key-1")
    assert conflict.status == 422


@ANY_TRANSPORT
def test_another_callers_job_is_not_found(alice, bob):
    job_id = submit(alice, "sleep", {"seconds": 0})
    response = bob.status(job_id)
    assert response.status == 404
    assert response.body == {"message": f"job {job_id} not found"}


def test_hundred_concurrent_submissions_each_finish_exactly_once(runtime, alice):
    with ThreadPoolExecutor(max_workers=20) as pool:
        job_ids = list(pool.map(lambda i: submit(alice, "sleep", {"seconds": 0.2}), range(100)))
        jobs = list(pool.map(lambda job_id: wait(alice, job_id, timeout=120, poll_seconds=None), job_ids))
    assert len(set(job_ids)) == 100
    unfinished = [(job["status"], job.get("step"), job.get("error")) for job in jobs if job["status"] != "COMPLETED"]
    assert [job["status"] for job in jobs] == ["COMPLETED"] * 100, unfinished
    assert [job["attempts"] for job in jobs] == [1] * 100
    assert runtime.lambdas.wait_idle(30)


@ANY_TRANSPORT
def test_gateway_rejects_before_any_function_runs(runtime, alice):
    unsigned = urllib.request.Request(runtime.api_url + "jobs", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(unsigned, timeout=10)
    assert refused.value.code == 403
    assert json.loads(refused.value.read()) == {"message": "Missing Authentication Token"}

    assert alice.request("GET", "nowhere").status == 403
    invalid = alice.request("POST", "jobs", {"task": 42})
    assert invalid.status == 400
    assert "message" in invalid.body


@ANY_TRANSPORT
def test_bad_content_type_gets_415(alice):
    response = alice.request("POST", "jobs", {"task": "sleep"}, {"Content-Type": "text/plain"})
    assert response.status == 415
    assert response.body == {"message": "Content-Type must be application/json"}


@ANY_TRANSPORT
def test_cli_follows_a_job_to_the_end_without_aws_credentials(runtime, monkeypatch, tmp_path, capsys):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert cli.main(["--api-url", runtime.api_url, "submit", "sleep", "--input", '{"seconds": 1}', "--wait"]) == 0
    out, err = capsys.readouterr()
    result = json.loads(out.split("\n", 1)[1])
    assert set(result) == {"slept_seconds"} and 1 <= result["slept_seconds"] < 2  # a busy machine sleeps longer
    assert "100% COMPLETED" in err

    code = cli.main(["--api-url", runtime.api_url, "submit", "fail", "--input", '{"message": "no"}', "--wait"])
    assert code == cli.EXIT_FAILED
    assert "FAILED: TaskFailed: no" in capsys.readouterr().err


def test_cancelling_a_running_job_stops_it_and_a_finished_one_is_refused(alice, bob, dispatch):
    job_id = submit(alice, "sleep", {"seconds": 3})
    deadline = time.monotonic() + 20
    while alice.status(job_id).body["status"] != "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert bob.cancel(job_id).status == 404  # only the owner may cancel
    response = alice.cancel(job_id)
    assert response.status == 202, response.body
    # dispatch=durable stops the job's execution at once; the others stop at the next report.
    if dispatch == "durable":
        assert response.body["status"] == "CANCELLED"
    else:
        assert response.body["status"] == "RUNNING" and response.body["cancel_requested"] is True
    job = wait(alice, job_id, timeout=10)
    assert job["status"] == "CANCELLED"
    assert job["progress"]["percent"] < 100  # it stopped early
    assert alice.cancel(job_id).status == 202  # asking again changes nothing

    finished = wait(alice, submit(alice, "sleep", {"seconds": 0}))
    refused = alice.cancel(finished["job_id"])
    assert refused.status == 409
    assert refused.body == {"message": f"job {finished['job_id']} already finished as COMPLETED"}


def test_the_scheduled_reaper_ends_a_job_whose_event_was_lost(runtime, alice):
    done = wait(alice, submit(alice, "sleep", {"seconds": 0}))
    dynamodb = runtime.aws_client("dynamodb")
    [table] = [name for name in runtime.template.tables if "JobsTable" in name]
    item = dynamodb.get_item(TableName=table, Key={"job_id": {"S": done["job_id"]}})["Item"]
    # A job exactly as submit stores it, whose worker event Lambda then lost, an hour ago.
    lost = str(uuid.uuid4())
    keep = ("owner", "task", "input", "created_at", "updated_at", "attempts", "expires_at")
    dynamodb.put_item(
        TableName=table,
        Item={
            **{k: v for k, v in item.items() if k in keep},
            "job_id": {"S": lost},
            "status": {"S": "PENDING"},
            "active_shard": {"S": "3"},
            "stuck_after": {"N": str(int(time.time()) - 1)},
        },
    )
    job = wait(alice, lost, timeout=20)  # the rule fires every 2 s here
    assert job["status"] == "FAILED"
    assert job["error"]["type"] == "DeadlineExceeded"


@ANY_TRANSPORT
def test_listing_pages_through_the_callers_own_jobs(runtime, alice, bob):
    mine = [submit(alice, "sleep", {"seconds": 0}) for _ in range(3)]
    for job_id in mine:
        wait(alice, job_id)
    first = alice.list_jobs(limit=2)
    assert first.status == 200, first.body
    second = alice.list_jobs(limit=2, next_token=first.body["next_token"])
    listed = [job["job_id"] for job in first.body["jobs"] + second.body["jobs"]]
    assert listed[:3] == mine[::-1]  # newest first, across pages
    assert all(job["job_id"] not in mine for job in bob.list_jobs(limit=100).body["jobs"])
    refused = alice.list_jobs(status="DONE")
    assert (refused.status, refused.body["message"]) == (
        400,
        "status must be one of PENDING, RUNNING, COMPLETED, FAILED, CANCELLED",
    )


def test_a_large_result_is_fetched_from_its_presigned_url(runtime, alice, capsys, monkeypatch):
    job = wait(alice, submit(alice, "report", {"rows": 5000}))  # ~120 KB: over the 64 KiB inline limit
    assert job["status"] == "COMPLETED" and "result" not in job
    assert job["result_bytes"] > 65536
    rows = alice.fetch_result(job)["rows"]  # a plain GET of the presigned URL, no signing
    assert len(rows) == 5000 and rows[-1] == {"n": 4999, "square": 4999 * 4999}

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ALICE")  # the CLI signs from the environment: as alice
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    assert cli.main(["--api-url", runtime.api_url, "wait", job["job_id"]]) == cli.EXIT_OK
    assert json.loads(capsys.readouterr().out)["rows"][1] == {"n": 1, "square": 1}


@ANY_TRANSPORT
def test_an_input_over_the_limit_is_413_with_the_way_out(alice):
    response = alice.request("POST", "jobs", {"task": "sleep", "input": {"seconds": 1, "pad": "x" * 70_000}})
    assert response.status == 413
    assert "pass large inputs by reference" in response.body["message"]
