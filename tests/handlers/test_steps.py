"""The workflow steps (dispatch=stepfunctions) against moto's DynamoDB, driven as the state
machine drives them: prepare → process → finalise, a failure recorded with its step."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from jobs.dispatcher import StateMachineDispatcher
from jobs.handlers import steps
from jobs.registry import REGISTRY, TaskDefinition, TransientTaskError
from tests.events import LambdaContext
from tests.handlers.conftest import job_item
from tests.handlers.test_worker import get_status, submit_job

pytestmark = pytest.mark.usefixtures("aws")


def step(name: str, job_id: str, timeout_seconds: int = 30, **extra: Any) -> dict[str, Any]:
    """One task state: the state machine's payload for the step (execution name = job id)."""
    handler = getattr(steps, name)
    answer = handler({"job_id": job_id, "execution": job_id, **extra}, LambdaContext(timeout_seconds=timeout_seconds))
    return dict(answer)


def run_workflow(job_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The definition's happy path and its Choice states (tests/infra asserts the definition)."""
    trail = [("prepare", step("prepare", job_id, correlation_id="req-1"))]
    if trail[-1][1]["outcome"] != "READY":
        return trail
    trail.append(("process", step("process", job_id)))
    if trail[-1][1]["outcome"] != "PROCESSED":
        return trail
    trail.append(("finalise", step("finalise", job_id, result=trail[-1][1]["result"])))
    return trail


def test_a_job_runs_through_the_three_steps_and_shows_each():
    job_id = submit_job("sleep", {"seconds": 0.1})
    seen = []
    original = steps.steps._store.enter_step

    def spy(job: str, attempt: str, name: str) -> bool:
        entered = original(job, attempt, name)
        seen.append((job_item(job)["step"], job_item(job)["status"]))
        return entered

    steps.steps._store.enter_step = spy  # type: ignore[method-assign,assignment]
    try:
        trail = run_workflow(job_id)
    finally:
        steps.steps._store.enter_step = original  # type: ignore[method-assign]
    assert [(name, answer["outcome"]) for name, answer in trail] == [
        ("prepare", "READY"),
        ("process", "PROCESSED"),
        ("finalise", "COMPLETED"),
    ]
    assert seen == [("prepare", "RUNNING"), ("process", "RUNNING"), ("finalise", "RUNNING")]
    body, _ = get_status(job_id)
    assert body["status"] == "COMPLETED"
    assert body["step"] == "finalise"
    assert body["result"]["slept_seconds"] >= 0.1
    assert body["attempts"] == 1


def test_a_large_result_goes_to_the_result_store_between_process_and_finalise():
    job_id = submit_job("report", {"rows": 200})
    trail = run_workflow(job_id)
    processed = trail[1][1]["result"]
    assert processed["location"] is not None and processed["inline_json"] is None  # the state stays small
    body, _ = get_status(job_id)
    assert body["status"] == "COMPLETED"
    assert body["result_bytes"] == processed["size"]


def test_a_failing_task_fails_the_job_in_the_process_step_without_a_lambda_error():
    job_id = submit_job("fail", {"message": "disk full"})
    trail = run_workflow(job_id)
    assert trail[-1] == ("process", {"outcome": "FAILED"})
    body, _ = get_status(job_id)
    assert body["status"] == "FAILED"
    assert body["step"] == "process"
    assert body["error"] == {"type": "TaskFailed", "message": "disk full"}


def test_retryable_errors_are_raised_for_the_state_machine_to_retry(monkeypatch: pytest.MonkeyPatch):
    job_id = submit_job("sleep", {"seconds": 0})
    assert step("prepare", job_id)["outcome"] == "READY"

    def flaky(*_: Any) -> Any:
        raise TransientTaskError("downstream busy")

    monkeypatch.setitem(REGISTRY, "sleep", TaskDefinition("sleep", flaky, {}, ""))
    with pytest.raises(TransientTaskError):
        step("process", job_id)
    assert job_item(job_id)["status"] == "RUNNING"  # still this execution's, for the retry
    monkeypatch.undo()
    assert step("process", job_id)["outcome"] == "PROCESSED"  # the state machine's retry


def test_a_step_that_overruns_raises_an_error_the_state_machine_retries():
    job_id = submit_job("sleep", {"seconds": 5})
    step("prepare", job_id)
    with pytest.raises(Exception) as raised:  # what matters is the class and its name
        step("process", job_id, timeout_seconds=2)  # 2 s minus the 1 s margin
    # An Exception, so Lambda's runtime reports it (a BaseException kills the process:
    # Runtime.ExitError, tests/local), named as the definition's Retry names it (tests/infra).
    assert type(raised.value).__name__ == "TimedOut"
    assert "timed out after 1 s" in str(raised.value)
    assert job_item(job_id)["status"] == "RUNNING"  # still this execution's, for the retry


def test_a_caught_step_error_is_recorded_with_the_step_and_its_message():
    job_id = submit_job("sleep", {"seconds": 0})
    step("prepare", job_id)
    cause = json.dumps({"errorMessage": "Unable to reach DynamoDB", "errorType": "EndpointConnectionError"})
    answer = step(
        "record_failure", job_id, step="finalise", failure={"Error": "EndpointConnectionError", "Cause": cause}
    )
    assert answer == {"outcome": "FAILED"}
    body, _ = get_status(job_id)
    assert body["status"] == "FAILED"
    assert body["step"] == "finalise"
    assert body["error"] == {"type": "EndpointConnectionError", "message": "Unable to reach DynamoDB"}


def test_a_failure_before_the_claim_still_fails_the_job():
    job_id = submit_job("sleep", {"seconds": 0})
    answer = step("record_failure", job_id, step="prepare", failure={"Error": "States.Timeout", "Cause": None})
    assert answer == {"outcome": "FAILED"}
    assert get_status(job_id)[0]["error"]["type"] == "States.Timeout"


def test_cancelled_while_processing_ends_cancelled_and_finalise_is_skipped():
    from jobs.handlers import cancel
    from tests.events import cancel_event

    job_id = submit_job("sleep", {"seconds": 3})
    step("prepare", job_id)
    cancel.handler(cancel_event(job_id), LambdaContext(function_name="cancel"))
    assert step("process", job_id) == {"outcome": "CANCELLED"}
    assert get_status(job_id)[0]["status"] == "CANCELLED"


def test_a_finished_or_unknown_job_is_not_run_again():
    job_id = submit_job("sleep", {"seconds": 0})
    run_workflow(job_id)
    assert step("prepare", job_id) == {"outcome": "SKIPPED"}
    assert step("prepare", "9b2f4c1e-0000-4000-8000-000000000000") == {"outcome": "SKIPPED"}


def test_prepare_run_again_in_the_same_execution_is_still_one_attempt():
    # A crash between the claim and the step's checkpoint runs prepare again in the same
    # execution (Step Functions' Retry, a durable replay): the job's one attempt, lease renewed.
    job_id = submit_job("sleep", {"seconds": 0})
    assert step("prepare", job_id) == {"outcome": "READY"}
    lease = job_item(job_id)["lease_expires_at"]
    boto3.resource("dynamodb").Table("jobs").update_item(
        Key={"job_id": job_id}, UpdateExpression="SET lease_expires_at = :past", ExpressionAttributeValues={":past": 1}
    )
    assert step("prepare", job_id) == {"outcome": "READY"}
    assert job_item(job_id)["lease_expires_at"] >= lease
    other = steps.prepare({"job_id": job_id, "execution": "another-execution"}, LambdaContext(timeout_seconds=30))
    assert other == {"outcome": "SKIPPED"}  # the renewed lease keeps it ours
    body, _ = get_status(job_id)
    assert (body["status"], body["attempts"]) == ("RUNNING", 1)


def test_an_unknown_task_fails_in_prepare():
    job_id = submit_job("sleep", {"seconds": 0})
    boto3.resource("dynamodb").Table("jobs").update_item(
        Key={"job_id": job_id}, UpdateExpression="SET task = :t", ExpressionAttributeValues={":t": "retired-task"}
    )
    assert step("prepare", job_id) == {"outcome": "FAILED"}
    body, _ = get_status(job_id)
    assert (body["step"], body["error"]["type"]) == ("prepare", "UnknownTask")


def test_the_dispatcher_starts_one_execution_named_after_the_job():
    sfn = boto3.client("stepfunctions")
    role = "arn:aws:iam::123456789012:role/workflow"
    arn = sfn.create_state_machine(
        name="jobs", definition='{"StartAt":"A","States":{"A":{"Type":"Succeed"}}}', roleArn=role
    )["stateMachineArn"]
    dispatcher = StateMachineDispatcher(arn)
    job_id = "5f0c7a8e-1d7a-4c8e-9a57-0d5b0f0f3a41"
    dispatcher.dispatch(job_id, "req-1")
    dispatcher.dispatch(job_id, "req-1")  # a retried submission: no second execution, no error
    [execution] = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert execution["name"] == job_id
    described = sfn.describe_execution(executionArn=execution["executionArn"])
    assert json.loads(described["input"]) == {"job_id": job_id, "correlation_id": "req-1"}
