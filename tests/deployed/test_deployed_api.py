"""Against a deployed stack: ``ASYNC_JOBS_API_URL=<ApiUrl output> make test-deployed``
(the variable is named after ``app_name``: ``jobs_cli/app_name.py``).

Skipped unless it is set. Requests go through the ``jobs`` CLI's client,
signed with SigV4 from the standard AWS credential chain, as IAM authorization requires.
"""

from __future__ import annotations

import io
import os
import urllib.error
import urllib.request
import uuid

import pytest

from jobs_cli.app_name import api_url_variable
from jobs_cli.client import JobsClient
from jobs_cli.main import Waiter

API_URL = os.environ.get(api_url_variable(), "")
pytestmark = [
    pytest.mark.deployed,
    pytest.mark.skipif(not API_URL, reason=f"set {api_url_variable()} to the stack's ApiUrl output"),
]


@pytest.fixture
def client() -> JobsClient:
    return JobsClient(API_URL)


def test_submit_and_poll_to_completion(client):
    accepted = client.submit("sleep", {"seconds": 3})
    assert accepted.status == 202, accepted.body
    assert str(accepted.header("Location")).endswith(f"/jobs/{accepted.body['job_id']}")
    job = Waiter(client, out=io.StringIO()).wait(accepted.body["job_id"], timeout=120)
    assert job is not None and job["status"] == "COMPLETED", job
    assert job["result"]["slept_seconds"] >= 3


def test_unsigned_requests_are_refused():
    request = urllib.request.Request(f"{API_URL.rstrip('/')}/jobs/{uuid.uuid4()}")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403


def test_schema_violation_is_rejected_by_api_gateway(client):
    response = client.request("POST", "jobs", {"nope": 1})
    assert response.status == 400
    assert "message" in response.body
