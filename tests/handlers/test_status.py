import uuid

import pytest

from jobs.handlers import status
from tests.events import BOB, LambdaContext, checked_answer, status_event
from tests.handlers.test_worker import submit_job

pytestmark = pytest.mark.usefixtures("aws")


def call(event):
    return checked_answer(status.handler(event, LambdaContext(function_name="status", timeout_seconds=29)))


def test_owner_sees_a_pending_job_with_retry_after():
    job_id = submit_job("sleep", {"seconds": 1})
    code, body, headers = call(status_event(job_id))
    assert code == 200
    assert body["job_id"] == job_id
    assert body["task"] == "sleep"
    assert body["status"] == "PENDING"
    assert body["created_at"].endswith("Z")
    assert body["updated_at"] >= body["created_at"]
    assert headers["Retry-After"] == "2"
    assert headers["Cache-Control"] == "no-store"


def test_another_callers_job_is_not_found():
    job_id = submit_job("sleep", {"seconds": 1})
    code, body, _ = call(status_event(job_id, caller=BOB))
    unknown_code, unknown_body, _ = call(status_event(str(uuid.uuid4()), caller=BOB))
    # Indistinguishable from a job that does not exist: ids of others cannot be probed.
    assert code == unknown_code == 404
    assert body.keys() == unknown_body.keys() == {"message"}


# "\n": the one id Powertools' route pattern took for the listing ("$" matches before a final newline).
@pytest.mark.parametrize("job_id", ["not-a-uuid", "1", "D3E9598F-769B-4D85-8524-901D956AAAED", "\n"])
def test_a_malformed_id_is_a_bad_request(job_id):
    code, body, _ = call(status_event(job_id))
    assert code == 400
    assert body == {"message": "job_id must be a UUID"}


def test_an_unsigned_request_is_refused():
    job_id = submit_job("sleep", {"seconds": 1})
    code, body, _ = call(status_event(job_id, caller=None))
    assert code == 403
    assert "identity" in body["message"]


def test_an_unknown_route_is_json_404():
    event = status_event(str(uuid.uuid4()))
    event["resource"] = "/jobs/{job_id}/nope"
    event["path"] = event["path"] + "/nope"
    code, body, _ = call(event)
    assert code == 404
    assert set(body) == {"message"}
