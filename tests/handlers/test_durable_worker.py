"""The durable worker (dispatch=durable) in AWS's in-process durable runner, against moto's
DynamoDB: the job's steps are checkpointed, waits suspend, failures end the job; the
recorder takes Lambda's status-change event; cancel stops the execution."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_durable_execution_sdk_python.lambda_service import InvocationStatus
from aws_durable_execution_sdk_python_testing.runner import DurableFunctionTestRunner
from botocore.stub import Stubber

from jobs.dispatcher import DurableExecutions, LambdaDispatcher
from jobs.handlers import durable_worker, on_failure
from jobs.registry import REGISTRY, ProgressSink, task
from jobs.repository import JobRepository
from jobs.service import JobService
from jobs.settings import Settings
from tests.events import LambdaContext
from tests.handlers.conftest import job_item
from tests.handlers.test_on_failure import dead_letter_queue_url, dead_letters  # noqa: F401  (its fixture)
from tests.handlers.test_worker import submit_job

pytestmark = pytest.mark.usefixtures("aws")
ARN = "arn:aws:lambda:eu-west-1:123456789012:function:worker:1/durable-execution/{job}/0f38fcd1"


def run_execution(job_id: str) -> Any:
    with DurableFunctionTestRunner(handler=durable_worker.run) as runner:  # waits skipped
        return runner.run(input=json.dumps({"job_id": job_id, "correlation_id": "req-1"}), execution_timeout=60)


def test_a_job_in_steps_with_a_wait_completes_and_each_step_is_checkpointed():
    job_id = submit_job("stages", {"stages": 3, "wait_seconds": 5})
    result = run_execution(job_id)
    assert result.status is InvocationStatus.SUCCEEDED, result.error
    assert json.loads(result.result) == {"job_id": job_id, "outcome": "COMPLETED"}
    item = job_item(job_id)
    assert (item["status"], item["step"]) == ("COMPLETED", "stage-3")
    assert json.loads(item["result"]) == {"stages": [1, 2, 3]}
    assert item["execution_arn"]  # noted for cancel
    assert [op.name for op in result.get_context("attempt-1").child_operations] == [
        "stage-1",
        "wait",
        "stage-2",
        "stage-3",
    ]
    assert result.get_step("prepare").result and result.get_step("finish").result == '"COMPLETED"'


def test_a_failing_task_fails_the_job_not_the_execution():
    job_id = submit_job("fail", {"message": "on purpose"})
    result = run_execution(job_id)
    assert result.status is InvocationStatus.SUCCEEDED  # an ordinary failed job is no Lambda error
    item = job_item(job_id)
    assert (item["status"], item["error_type"], item["error_message"]) == ("FAILED", "TaskFailed", "on purpose")


def test_a_single_function_task_runs_unchanged():
    job_id = submit_job("echo", {"x": 1})
    assert run_execution(job_id).status is InvocationStatus.SUCCEEDED
    assert json.loads(job_item(job_id)["result"]) == {"echo": {"x": 1}}


def test_a_second_execution_of_a_finished_job_changes_nothing():
    job_id = submit_job("echo", {"x": 1})
    run_execution(job_id)
    before = job_item(job_id)
    result = run_execution(job_id)
    assert json.loads(result.result)["outcome"] == "SKIPPED"
    assert job_item(job_id) == before


def status_change(job_id: str, status: str) -> dict[str, Any]:
    """Lambda's EventBridge event (Lambda Developer Guide, "Monitoring durable functions")."""
    return {
        "version": "0",
        "detail-type": "Durable Execution Status Change",
        "source": "aws.lambda",
        "detail": {
            "durableExecutionArn": ARN.format(job=job_id),
            "durableExecutionName": job_id,
            "functionArn": "arn:aws:lambda:eu-west-1:123456789012:function:worker:1",
            "status": status,
        },
    }


def test_the_recorder_fails_a_job_whose_execution_timed_out_and_keeps_the_event():
    job_id = submit_job("sleep", {"seconds": 1})
    on_failure.handler(status_change(job_id, "TIMED_OUT"), LambdaContext(function_name="on-failure"))
    item = job_item(job_id)
    assert (item["status"], item["error_type"]) == ("FAILED", "DurableExecutionTimedOut")
    [kept] = dead_letters()
    assert kept["detail"]["durableExecutionName"] == job_id


def test_the_recorder_leaves_a_cancelled_job_cancelled_and_keeps_nothing():
    job_id = submit_job("stages", {"stages": 2, "wait_seconds": 600})
    repository = JobRepository.from_settings(Settings.from_env())
    assert repository.claim(job_id, job_id, 600) is not None
    assert repository.request_cancel(job_id, job_item(job_id)["owner"]) is not None
    on_failure.handler(status_change(job_id, "STOPPED"), LambdaContext(function_name="on-failure"))
    assert job_item(job_id)["status"] == "CANCELLED"
    assert dead_letters() == []


class Stopped:
    def __init__(self) -> None:
        self.stopped: list[str] = []

    def stop(self, execution_arn: str) -> bool:
        self.stopped.append(execution_arn)
        return True


def test_cancel_stops_a_running_jobs_execution_and_records_it_at_once():
    job_id = submit_job("stages", {"stages": 2, "wait_seconds": 600})
    repository = JobRepository.from_settings(Settings.from_env())
    repository.claim(job_id, job_id, 600)
    repository.record_execution(job_id, job_id, ARN.format(job=job_id))
    stopper = Stopped()
    job = JobService(repository, executions=stopper).cancel_for_owner(job_item(job_id)["owner"], job_id)
    assert stopper.stopped == [ARN.format(job=job_id)]
    assert job.status.value == "CANCELLED" and job_item(job_id)["status"] == "CANCELLED"


def test_the_dispatcher_starts_one_named_execution_through_the_alias():
    client = boto3.client("lambda")
    with Stubber(client) as stub:
        expected = {
            "FunctionName": "worker:live",
            "InvocationType": "Event",
            "DurableExecutionName": "job-1",
            "Payload": b'{"job_id": "job-1", "correlation_id": null}',
        }
        stub.add_response("invoke", {"StatusCode": 202}, expected)
        stub.add_client_error("invoke", "DurableExecutionAlreadyStartedException", http_status_code=409)
        dispatcher = LambdaDispatcher("worker:live", client, durable=True)
        dispatcher.dispatch("job-1", None)
        dispatcher.dispatch("job-1", None)  # already started: the one execution the job gets
        stub.assert_no_pending_responses()


def test_stopping_an_execution_that_already_ended_is_not_an_error():
    client = boto3.client("lambda")
    with Stubber(client) as stub:
        stub.add_client_error("stop_durable_execution", "ResourceNotFoundException", http_status_code=404)
        assert DurableExecutions(client).stop(ARN.format(job="job-1")) is False


def test_a_job_whose_owner_cancelled_before_it_ran_is_cancelled_not_run():
    job_id = submit_job("stages", {"stages": 1})
    repository = JobRepository.from_settings(Settings.from_env())
    repository.claim(job_id, job_id, 600)  # an earlier invocation claimed it, then died
    repository.request_cancel(job_id, job_item(job_id)["owner"])
    result = run_execution(job_id)
    assert json.loads(result.result)["outcome"] == "CANCELLED"
    assert job_item(job_id)["status"] == "CANCELLED" and "step" not in job_item(job_id)


@pytest.fixture
def unserialisable_step() -> Iterator[str]:
    @task("unserialisable-step", {"type": "object"})
    def unserialisable(input: dict[str, Any], progress: ProgressSink) -> Any:
        return progress.step("bad", lambda: {1, 2, 3})  # a set is no JSON

    yield "unserialisable-step"
    del REGISTRY["unserialisable-step"]


def test_a_step_whose_result_is_not_json_fails_the_job_with_that_reason(unserialisable_step: str):
    job_id = submit_job(unserialisable_step, {})
    result = run_execution(job_id)
    assert result.status is InvocationStatus.SUCCEEDED
    item = job_item(job_id)
    assert (item["status"], item["error_type"]) == ("FAILED", "StepResultNotSerializable")
