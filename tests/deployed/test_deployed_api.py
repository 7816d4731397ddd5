"""Against a deployed stack: ``ASYNC_JOBS_API_URL=<ApiUrl output> make test-deployed``.

Skipped unless ASYNC_JOBS_API_URL is set. Requests are signed with SigV4 using the
standard AWS credential chain, as IAM authorization requires.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.session import Session

API_URL = os.environ.get("ASYNC_JOBS_API_URL", "").rstrip("/")
pytestmark = [
    pytest.mark.deployed,
    pytest.mark.skipif(not API_URL, reason="set ASYNC_JOBS_API_URL to the stack's ApiUrl output"),
]


def signed_request(method: str, url: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None):
    session = Session()
    region = url.split(".execute-api.")[1].split(".", maxsplit=1)[0]
    data = json.dumps(body).encode() if body is not None else None
    request = AWSRequest(
        method=method, url=url, data=data, headers={"Content-Type": "application/json", **(headers or {})}
    )
    credentials = session.get_credentials()
    assert credentials is not None, "no AWS credentials found for signing"
    SigV4Auth(credentials, "execute-api", region).add_auth(request)
    prepared = urllib.request.Request(url, data=data, method=method, headers=dict(request.headers))
    try:
        with urllib.request.urlopen(prepared, timeout=35) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}"), dict(error.headers)


def test_submit_and_poll_to_completion():
    status, body, headers = signed_request("POST", f"{API_URL}/jobs", {"task": "sleep", "input": {"seconds": 3}})
    assert status == 202, body
    location = headers["Location"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status, job, headers = signed_request("GET", location)
        assert status == 200
        if job["status"] in {"COMPLETED", "FAILED"}:
            break
        time.sleep(int(headers.get("Retry-After", "2")))
    assert job["status"] == "COMPLETED", job
    assert job["result"]["slept_seconds"] >= 3


def test_unsigned_requests_are_refused():
    request = urllib.request.Request(f"{API_URL}/jobs/{uuid.uuid4()}")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403


def test_schema_violation_is_rejected_by_api_gateway():
    status, body, _ = signed_request("POST", f"{API_URL}/jobs", {"nope": 1})
    assert status == 400
    assert "message" in body
