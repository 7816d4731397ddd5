"""The local REST API's IAM identity: from the SigV4 access key, or an explicit local default."""

from __future__ import annotations

import json
from typing import Any

from local.apigateway import HttpRequest, LocalRestApi
from local.sandbox import InvocationResult
from local.template import ApiSpec, MethodSpec

SIGNED = (
    "AWS4-HMAC-SHA256 Credential=ALICEKEY/20261124/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=00"
)


def echo_api(
    default_identity: str | None = None, method: MethodSpec | None = None
) -> tuple[LocalRestApi, list[dict[str, Any]]]:
    """A one-method API whose function records the events it gets and answers 200."""
    events: list[dict[str, Any]] = []

    def invoke(function: str, event: dict[str, Any], wait: float) -> InvocationResult:
        events.append(event)
        return InvocationResult(True, {"statusCode": 200, "body": "{}"}, 1.0)

    method = method or MethodSpec("GET", "/jobs/{job_id}", "StatusFn", "AWS_IAM", 29_000)
    return LocalRestApi(ApiSpec("v1", [method]), invoke, default_identity), events


def get(api: LocalRestApi, authorization: str | None = None) -> int:
    headers = [("Authorization", authorization)] if authorization else []
    response = api.handle(HttpRequest("GET", "/v1/jobs/abc", headers, b""))
    if response.status != 200:
        assert json.loads(response.body) == {"message": "Missing Authentication Token"}
    return response.status


def test_caller_is_the_signing_access_key():
    api, events = echo_api()
    assert get(api, SIGNED) == 200
    identity = events[0]["requestContext"]["identity"]
    assert identity["accessKey"] == "ALICEKEY"
    assert identity["userArn"] == "arn:aws:iam::123456789012:user/ALICEKEY"
    assert events[0]["pathParameters"] == {"job_id": "abc"}


def test_unsigned_request_is_refused_like_aws():
    api, events = echo_api()
    assert get(api) == 403
    assert events == []


def test_unsigned_request_uses_the_opt_in_default_identity():
    api, events = echo_api(default_identity="arn:aws:iam::123456789012:role/dev")
    assert get(api) == 200
    assert events[0]["requestContext"]["identity"]["userArn"] == "arn:aws:iam::123456789012:role/dev"
    assert get(api, SIGNED) == 200  # a signed request still names its own caller
    assert events[1]["requestContext"]["identity"]["accessKey"] == "ALICEKEY"


def test_required_parameters_are_checked_before_the_function_runs():
    method = MethodSpec(
        "GET",
        "/jobs",
        "ListFn",
        "NONE",
        29_000,
        validate_parameters=True,
        required_parameters=["method.request.header.X-Tenant", "method.request.querystring.status"],
    )
    api, events = echo_api(method=method)
    refused = api.handle(HttpRequest("GET", "/v1/jobs", [], b""))
    assert refused.status == 400
    assert json.loads(refused.body) == {"message": "Missing required request parameters: [X-Tenant, status]"}
    accepted = api.handle(HttpRequest("GET", "/v1/jobs?status=", [("x-tenant", "a")], b""))
    assert accepted.status == 200
    assert len(events) == 1
