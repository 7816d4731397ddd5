"""``dispatch=sqs``: the queue dispatcher and the queue worker (Powertools batch utility) on moto."""

import json
import uuid

import boto3
import pytest

from jobs.dispatcher import LambdaDispatcher, QueueDispatcher, dispatcher_for
from jobs.handlers import queue_worker
from jobs.settings import Settings
from tests.conftest import TEST_ENVIRONMENT
from tests.events import LambdaContext
from tests.handlers.conftest import job_item
from tests.handlers.test_worker import get_status, submit_job

pytestmark = pytest.mark.usefixtures("aws")


def sqs_event(*bodies: str, message_ids: list[str] | None = None, receive_count: int = 1) -> dict:
    """An SQS event as the event source mapping delivers it."""
    ids = message_ids or [str(uuid.uuid4()) for _ in bodies]
    return {
        "Records": [
            {
                "messageId": message_id,
                "receiptHandle": f"handle-{message_id}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": str(receive_count),
                    "SentTimestamp": "1795516800000",
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": "1795516800001",
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:jobs",
                "awsRegion": "eu-west-1",
            }
            for body, message_id in zip(bodies, ids, strict=True)
        ]
    }


def message(job_id: str) -> str:
    return json.dumps({"job_id": job_id, "correlation_id": "req-1"})


def run(event: dict) -> list[str]:
    """The ids of the messages the worker asks to see again."""
    response = queue_worker.handler(event, LambdaContext(function_name="queue-worker"))
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def test_a_batch_runs_each_job_and_reports_only_the_failed_message(monkeypatch):
    from jobs import registry

    def flaky(task_input, progress):
        raise registry.TransientTaskError("downstream busy")

    monkeypatch.setitem(registry.REGISTRY, "flaky", registry.TaskDefinition("flaky", flaky, {"type": "object"}, ""))
    done, retried = submit_job("sleep", {"seconds": 0}), submit_job("flaky", {})
    ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    assert run(sqs_event(message(done), message(retried), message_ids=ids)) == [ids[1]]
    assert get_status(done)[0]["status"] == "COMPLETED"
    item = job_item(retried)
    assert (item["status"], item["attempt_id"], item["last_error_type"]) == ("RUNNING", ids[1], "TransientTaskError")

    # The queue redelivers the same message (same id: the same attempt, counted again).
    assert run(sqs_event(message(retried), message_ids=[ids[1]], receive_count=2)) == [ids[1]]
    # The last attempt fails the job and still reports the message, so that the redrive
    # policy dead-letters it, as Lambda's on-failure destination does for dispatch=lambda.
    assert run(sqs_event(message(retried), message_ids=[ids[1]], receive_count=3)) == [ids[1]]
    job, _ = get_status(retried)
    assert (job["status"], job["attempts"], job["error"]["type"]) == ("FAILED", 3, "TransientTaskError")


def test_a_duplicate_message_for_a_finished_job_is_acknowledged_and_changes_nothing():
    job_id = submit_job("sleep", {"seconds": 0})
    assert run(sqs_event(message(job_id))) == []
    assert run(sqs_event(message(job_id))) == []  # a second message (at-least-once delivery)
    assert job_item(job_id)["attempts"] == 1


@pytest.mark.parametrize("body", ["not json", "{}", json.dumps({"job_id": "../etc"}), "[]"])
def test_a_malformed_message_is_acknowledged_not_redelivered_forever(body):
    assert run(sqs_event(body)) == []


def test_the_queue_dispatcher_sends_the_job_and_the_settings_choose_it():
    queue_url = boto3.client("sqs").create_queue(QueueName="jobs")["QueueUrl"]
    settings = Settings.from_env({**TEST_ENVIRONMENT, "DISPATCH": "sqs", "JOBS_QUEUE_URL": queue_url})
    dispatcher = dispatcher_for(settings)
    assert isinstance(dispatcher, QueueDispatcher)
    dispatcher.dispatch("5f0c7a8e-1d7a-4c8e-9a57-0d5b0f0f3a41", "req-9")
    [sent] = boto3.client("sqs").receive_message(QueueUrl=queue_url)["Messages"]
    assert json.loads(sent["Body"]) == {"job_id": "5f0c7a8e-1d7a-4c8e-9a57-0d5b0f0f3a41", "correlation_id": "req-9"}
    assert isinstance(dispatcher_for(Settings.from_env(TEST_ENVIRONMENT)), LambdaDispatcher)  # the default
