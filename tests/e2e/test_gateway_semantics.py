"""The local runtime's API Gateway semantics, on a small test-only app whose routes misbehave on purpose."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.server import LocalRuntime
from local.synth import synthesize
from tests.support import TEST_TASKS

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def slow_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    cdk_out = synthesize(Path(__file__).parent / "slow_app" / "app.py", tmp_path_factory.mktemp("slow-app"))
    runtime = LocalRuntime(cdk_out, port=0, stack_name="SlowApp", preload=TEST_TASKS).start()
    yield runtime
    runtime.stop()


def get(runtime: LocalRuntime, path: str) -> tuple[int, dict[str, Any], float]:
    """GET a route; the stage's throttle (2 rps, burst 3) is respected by pausing on 429 first."""
    started = time.monotonic()
    try:
        with urllib.request.urlopen(runtime.api_url + path, timeout=30) as response:
            return response.status, json.loads(response.read()), time.monotonic() - started
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), time.monotonic() - started


@pytest.fixture(autouse=True)
def refill_throttle_bucket() -> None:
    time.sleep(1.5)  # 2 rps: every test starts with room for a few requests


def test_proxy_event_and_context_have_aws_shape(slow_app):
    status, seen, _ = get(slow_app, "echo/abc?colour=red&colour=blue")
    assert status == 200
    event, context = seen["event"], seen["context"]
    assert event["resource"] == "/echo/{item}"
    assert event["path"] == "/echo/abc"
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"item": "abc"}
    assert event["queryStringParameters"] == {"colour": "blue"}
    assert event["multiValueQueryStringParameters"] == {"colour": ["red", "blue"]}
    assert event["isBase64Encoded"] is False
    assert event["body"] is None
    assert {k.lower() for k in event["headers"]} == {k.lower() for k in event["multiValueHeaders"]}
    request_context = event["requestContext"]
    assert request_context["stage"] == "test"
    assert request_context["resourcePath"] == "/echo/{item}"
    assert request_context["path"] == "/test/echo/abc"
    assert request_context["identity"]["sourceIp"] == "127.0.0.1"
    assert request_context["identity"]["userArn"] is None  # authorization NONE: no caller
    assert len(request_context["requestId"]) == 36
    assert context["function_name"].startswith("SlowApp-EchoItem")
    assert context["memory_limit_in_mb"] == 128
    assert 0 < context["remaining_ms"] <= 10_000  # the function's 10 s timeout, from the template
    assert context["aws_request_id"] != request_context["requestId"]


def test_route_slower_than_the_integration_timeout_gets_504(slow_app):
    status, body, elapsed = get(slow_app, "slow")
    assert (status, body) == (504, {"message": "Endpoint request timed out"})
    assert 0.9 < elapsed < 2.5  # the 1 s integration timeout, not the function's 3 s


def test_malformed_proxy_response_gets_502(slow_app):
    assert get(slow_app, "malformed")[:2] == (502, {"message": "Internal server error"})


def test_function_error_gets_502(slow_app):
    assert get(slow_app, "crash")[:2] == (502, {"message": "Internal server error"})


def test_unknown_route_and_stage_get_403(slow_app):
    assert get(slow_app, "nowhere")[:2] == (403, {"message": "Missing Authentication Token"})
    wrong_stage = slow_app.api_url.replace("/test/", "/prod/")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(wrong_stage + "echo", timeout=10)
    assert refused.value.code == 403


def test_stage_throttling_answers_429_past_the_burst(slow_app):
    statuses = [get(slow_app, "echo")[:2] for _ in range(8)]
    allowed = [s for s, _ in statuses if s == 200]
    throttled = [b for s, b in statuses if s == 429]
    assert 3 <= len(allowed) <= 5  # burst 3, plus what 2 rps refills while the requests run
    assert throttled and all(b == {"message": "Too Many Requests"} for b in throttled)
