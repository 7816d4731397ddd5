"""The worker's on-failure destination: marks the job FAILED and dead-letters the record."""

import json

import boto3
import pytest

from jobs.handlers import on_failure
from tests.events import LambdaContext
from tests.handlers.test_worker import get_status, run_worker, submit_job

pytestmark = pytest.mark.usefixtures("aws")


def invocation_record(job_id: str, condition: str = "RetriesExhausted") -> dict:
    """What Lambda sends a destination after an asynchronous invocation fails for good."""
    return {
        "version": "1.0",
        "timestamp": "2026-11-24T10:15:00.000Z",
        "requestContext": {
            "requestId": "c1f5b2b6-6a0f-4b57-9f13-1b5f0e3c0a11",
            "functionArn": "arn:aws:lambda:eu-west-1:123456789012:function:worker:$LATEST",
            "condition": condition,
            "approximateInvokeCount": 3,
        },
        "requestPayload": {"job_id": job_id, "correlation_id": "req-1"},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {
            "errorMessage": "2026-11-24T10:14:59.000Z Task timed out after 900.00 seconds",
            "errorType": "Sandbox.Timedout",
        },
    }


def dead_letters() -> list[dict]:
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName="dead-letters")["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


@pytest.fixture(autouse=True)
def dead_letter_queue_url(aws, monkeypatch):
    url = boto3.client("sqs").get_queue_url(QueueName="dead-letters")["QueueUrl"]
    monkeypatch.setattr(on_failure, "dead_letter_queue_url", url)


def test_a_job_whose_worker_died_is_failed_with_the_reason_and_the_event_kept():
    job_id = submit_job("sleep", {"seconds": 1})
    record = invocation_record(job_id)

    result = on_failure.handler(record, LambdaContext(function_name="on-failure"))

    assert result["marked_failed"] is True
    body, _ = get_status(job_id)
    assert body["status"] == "FAILED"
    assert body["error"]["type"] == "RetriesExhausted"
    assert "failed 3 attempt(s)" in body["error"]["message"]
    assert "Sandbox.Timedout" in body["error"]["message"]
    assert dead_letters() == [record]


def test_an_expired_event_is_explained():
    job_id = submit_job("sleep", {"seconds": 1})
    on_failure.handler(invocation_record(job_id, "EventAgeExceeded"), LambdaContext())
    error = get_status(job_id)[0]["error"]
    assert error["type"] == "EventAgeExceeded"
    assert "maximum event age" in error["message"]


def test_a_job_already_finished_keeps_its_outcome_but_the_event_is_still_kept():
    job_id = submit_job("sleep", {"seconds": 0})
    run_worker(job_id)

    result = on_failure.handler(invocation_record(job_id), LambdaContext())

    assert result["marked_failed"] is False
    assert get_status(job_id)[0]["status"] == "COMPLETED"
    assert len(dead_letters()) == 1


def test_a_record_without_a_job_is_still_dead_lettered():
    record = invocation_record("garbage")
    assert on_failure.handler(record, LambdaContext())["marked_failed"] is False
    assert dead_letters() == [record]
