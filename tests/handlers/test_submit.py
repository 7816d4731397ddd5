import json
import uuid
from contextlib import contextmanager
from unittest.mock import ANY

import pytest
from botocore.stub import Stubber

from jobs import clients, dispatcher
from jobs.handlers import submit
from tests.events import ALICE, BOB, LambdaContext, checked_answer, submit_event
from tests.handlers.conftest import all_job_items, job_item

pytestmark = pytest.mark.usefixtures("aws")


def call(event):
    return checked_answer(submit.handler(event, LambdaContext(function_name="submit", timeout_seconds=29)))


def test_accepts_a_job_with_202_location_and_retry_after():
    status, body, headers = call(submit_event({"task": "sleep", "input": {"seconds": 1}}))

    assert status == 202
    assert body["status"] == "PENDING"
    assert body["task"] == "sleep"
    assert uuid.UUID(body["job_id"]).version == 4
    assert headers["Location"] == f"/v1/jobs/{body['job_id']}"  # resolved against the URL called
    assert headers["Retry-After"] == "2"
    item = job_item(body["job_id"])
    assert item["status"] == "PENDING"
    assert item["owner"] == ALICE
    assert json.loads(item["input"]) == {"seconds": 1}
    assert item["expires_at"] > 0  # TTL set from the start


def test_a_callback_url_is_kept_on_the_job_and_shown_pending():
    url = "https://hooks.example.com/jobs?tenant=7"
    status, body, _ = call(submit_event({"task": "sleep", "input": {"seconds": 1}, "callback_url": url}))
    assert status == 202
    assert body["callback"] == {"url": url, "status": "PENDING"}
    assert job_item(body["job_id"])["callback_url"] == url


def test_input_defaults_to_an_empty_object():
    status, body, _ = call(submit_event({"task": "fail"}))
    assert status == 202
    assert json.loads(job_item(body["job_id"])["input"]) == {}


@pytest.mark.parametrize(
    ("event", "status", "message"),
    [
        (submit_event("{not json"), 400, "not valid JSON"),
        (submit_event({"input": {}}), 400, "invalid request body"),
        (submit_event({"task": "sleep", "extra": 1}), 400, "invalid request body"),
        (submit_event({"task": "sleep", "input": []}), 400, "invalid request body"),
        (submit_event({"task": "no-such-task"}), 422, "unknown task 'no-such-task'"),
        (submit_event({"task": "sleep", "input": {"seconds": "ten"}}), 422, "invalid input for task 'sleep'"),
        (submit_event({"task": "sleep", "input": {}}), 422, "invalid input for task 'sleep'"),
        (submit_event({"task": "sleep"}, headers={"Content-Type": "text/plain"}), 415, "application/json"),
        (submit_event({"task": "sleep"}, headers={"Content-Type": None}), 415, "application/json"),
        (submit_event({"task": "sleep", "input": {"pad": "x" * 5000}}), 413, "limit is 4096 bytes"),
        (submit_event({"task": "sleep"}, caller=None), 403, "caller identity"),
        (
            submit_event({"task": "sleep", "input": {"seconds": 1}, "callback_url": "http://hooks.example.com/"}),
            422,
            "callback_url must use https",
        ),
        (
            submit_event({"task": "sleep", "input": {"seconds": 1}, "callback_url": "https://169.254.169.254/x"}),
            422,
            "callback_url must be a public address",
        ),
        (submit_event({"task": "sleep", "input": {"seconds": 1}, "callback_url": 7}), 400, "invalid request body"),
        (
            submit_event({"task": "sleep", "input": {"seconds": 1}}, headers={"Idempotency-Key": "a b"}),
            400,
            "Idempotency-Key",
        ),
    ],
)
def test_bad_requests_get_a_clear_json_error_and_store_nothing(event, status, message):
    got_status, body, _ = call(event)
    assert got_status == status
    assert set(body) == {"message"}
    assert message in body["message"]
    assert "Traceback" not in body["message"]
    assert all_job_items() == []


def test_charset_in_content_type_is_accepted():
    event = submit_event({"task": "fail"}, headers={"Content-Type": "application/json; charset=utf-8"})
    assert call(event)[0] == 202


def test_same_idempotency_key_and_body_returns_the_same_job():
    event = {"task": "sleep", "input": {"seconds": 3}}
    first = call(submit_event(event, headers={"Idempotency-Key": "order-42"}))
    second = call(submit_event(event, headers={"Idempotency-Key": "order-42"}))

    assert first[0] == second[0] == 202
    assert first[1]["job_id"] == second[1]["job_id"]
    assert len(all_job_items()) == 1


def test_same_idempotency_key_with_another_body_is_refused():
    call(submit_event({"task": "sleep", "input": {"seconds": 3}}, headers={"Idempotency-Key": "order-42"}))
    status, body, _ = call(
        submit_event({"task": "sleep", "input": {"seconds": 4}}, headers={"Idempotency-Key": "order-42"})
    )

    assert status == 422
    assert "different request body" in body["message"]
    assert len(all_job_items()) == 1


def test_idempotency_keys_are_per_caller():
    body = {"task": "sleep", "input": {"seconds": 3}}
    alice = call(submit_event(body, headers={"Idempotency-Key": "k1"}, caller=ALICE))
    bob = call(submit_event(body, headers={"Idempotency-Key": "k1"}, caller=BOB))
    assert alice[1]["job_id"] != bob[1]["job_id"]
    assert len(all_job_items()) == 2


def test_without_a_key_every_request_is_a_new_job():
    body = {"task": "sleep", "input": {"seconds": 3}}
    assert call(submit_event(body))[1]["job_id"] != call(submit_event(body))[1]["job_id"]


@contextmanager
def lambda_invoke(stub_error: str | None = None, expected_job: bool = True):
    """Watch (or fail) the submit function's Invoke call with botocore's Stubber."""
    client = clients.lambda_()  # the dispatcher's: one client per service and process
    with Stubber(client) as stubber:
        if stub_error:
            stubber.add_client_error("invoke", service_error_code=stub_error, http_status_code=429)
        else:
            stubber.add_response(
                "invoke",
                {"StatusCode": 202},
                {"FunctionName": "worker", "InvocationType": "Event", "Payload": ANY},
            )
        yield stubber
        if expected_job:
            stubber.assert_no_pending_responses()


def test_dispatch_is_one_asynchronous_invoke_of_the_worker_with_the_job_id():
    with lambda_invoke() as stubber:
        calls = []
        stubber.client.meta.events.register(
            "before-parameter-build.lambda.Invoke", lambda params, **_: calls.append(params)
        )
        status, body, _ = call(submit_event({"task": "sleep", "input": {"seconds": 1}}))
    assert status == 202
    payload = json.loads(calls[0]["Payload"])
    assert payload["job_id"] == body["job_id"]
    assert payload["correlation_id"]  # the API request id, carried into the worker's logs


def test_dispatch_failure_answers_503_and_leaves_no_pending_job():
    with lambda_invoke("TooManyRequestsException"):
        status, body, headers = call(submit_event({"task": "sleep", "input": {"seconds": 1}}))

    assert status == 503
    assert headers["Retry-After"] == "2"
    assert "retry" in body["message"]
    [item] = all_job_items()
    assert item["status"] == "FAILED"  # nobody would ever run it, so it is not left PENDING
    assert item["error_type"] == "DispatchFailed"


def test_a_table_still_throttling_after_retries_answers_503_with_retry_after_and_stores_nothing():
    """A hot partition or a table quota (ProvisionedThroughputExceededException, also for an
    on-demand table) is capacity, not a bug: the caller is told to retry, not given a 500."""
    with Stubber(clients.dynamodb()) as stubber:
        stubber.add_client_error(
            "put_item", service_error_code="ProvisionedThroughputExceededException", http_status_code=400
        )
        status, body, headers = call(submit_event({"task": "sleep", "input": {"seconds": 1}}))
    assert (status, headers["Retry-After"]) == (503, "2")
    assert body == {"message": "the service is busy; retry after the Retry-After header"}
    assert all_job_items() == []


def test_a_snapstart_version_not_ready_yet_is_waited_for_then_invoked(monkeypatch):
    pauses: list[float] = []
    monkeypatch.setattr("jobs.dispatcher.time.sleep", pauses.append)
    with Stubber(clients.lambda_()) as stubber:
        for _ in range(2):
            stubber.add_client_error("invoke", service_error_code="SnapStartNotReadyException", http_status_code=409)
        stubber.add_response("invoke", {"StatusCode": 202})
        status, body, _ = call(submit_event({"task": "sleep", "input": {"seconds": 1}}))
        stubber.assert_no_pending_responses()
    assert status == 202 and job_item(body["job_id"])["status"] == "PENDING"
    assert pauses == list(dispatcher.NOT_READY_PAUSES[:2])


def test_a_snapstart_version_that_stays_not_ready_answers_503(monkeypatch):
    monkeypatch.setattr("jobs.dispatcher.time.sleep", lambda _seconds: None)
    with Stubber(clients.lambda_()) as stubber:
        for _ in range(len(dispatcher.NOT_READY_PAUSES) + 1):
            stubber.add_client_error("invoke", service_error_code="SnapStartNotReadyException", http_status_code=409)
        status, _, headers = call(submit_event({"task": "sleep", "input": {"seconds": 1}}))
        stubber.assert_no_pending_responses()
    assert status == 503 and headers["Retry-After"] == "2"


def test_a_retry_after_a_failed_dispatch_with_the_same_key_creates_the_job():
    body = {"task": "sleep", "input": {"seconds": 1}}
    with lambda_invoke("TooManyRequestsException"):
        assert call(submit_event(body, headers={"Idempotency-Key": "retry-me"}))[0] == 503

    status, job, _ = call(submit_event(body, headers={"Idempotency-Key": "retry-me"}))

    assert status == 202
    assert job_item(job["job_id"])["status"] == "PENDING"
