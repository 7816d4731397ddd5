"""Lambda events and contexts for tests, shaped like the ones AWS sends.

``apigateway_rest_proxy.json`` follows AWS's published sample of an API Gateway REST proxy
(payload 1.0) event with AWS_IAM authorization.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext as PowertoolsLambdaContext

SAMPLE = json.loads((Path(__file__).parent / "apigateway_rest_proxy.json").read_text())
ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:iam::123456789012:user/bob"


def api_event(
    method: str,
    path: str,
    resource: str,
    *,
    body: str | dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    path_parameters: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    caller: str | None = ALICE,
) -> dict[str, Any]:
    """A REST proxy event for ``method path``, made by IAM principal ``caller``."""
    event: dict[str, Any] = copy.deepcopy(SAMPLE)
    event["httpMethod"] = method
    event["path"] = path
    event["resource"] = resource
    event["pathParameters"] = path_parameters
    event["queryStringParameters"] = query or None
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
    event["body"] = json.dumps(body) if isinstance(body, dict) else body
    if headers is not None:
        event["headers"].update(headers)
        event["headers"] = {k: v for k, v in event["headers"].items() if v is not None}
    event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}
    context = event["requestContext"]
    context["httpMethod"] = method
    context["resourcePath"] = resource
    context["path"] = f"/{context['stage']}{path}"
    context["requestId"] = str(uuid.uuid4())
    context["identity"]["userArn"] = caller
    context["identity"]["caller"] = caller.rsplit("/", 1)[-1].upper() if caller else None
    return event


def submit_event(body: str | dict[str, Any] | None, **kwargs: Any) -> dict[str, Any]:
    return api_event("POST", "/jobs", "/jobs", body=body, **kwargs)


def status_event(job_id: str, **kwargs: Any) -> dict[str, Any]:
    return api_event("GET", f"/jobs/{job_id}", "/jobs/{job_id}", path_parameters={"job_id": job_id}, **kwargs)


def list_event(query: dict[str, str] | None = None, **kwargs: Any) -> dict[str, Any]:
    return api_event("GET", "/jobs", "/jobs", query=query, **kwargs)


def cancel_event(job_id: str, **kwargs: Any) -> dict[str, Any]:
    return api_event("DELETE", f"/jobs/{job_id}", "/jobs/{job_id}", path_parameters={"job_id": job_id}, **kwargs)


def checked_answer(response: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
    """A proxy response as (status, body, headers), its body checked against the documented
    shapes (``docs/job.schema.json``, which the OpenAPI document is built from)."""
    import jsonschema

    from stacks.openapi import job_schema

    status, body = response["statusCode"], json.loads(response["body"])
    if status >= 400:
        jsonschema.validate(body, ERROR_SCHEMA)
    elif "jobs" in body:
        for job in body["jobs"]:
            jsonschema.validate(job, job_schema())
            assert "result" not in job
    else:
        jsonschema.validate(body, job_schema())
    return status, body, response_headers(response)


ERROR_SCHEMA = {
    "type": "object",
    "properties": {"message": {"type": "string"}},
    "required": ["message"],
    "additionalProperties": False,
}


def response_headers(response: dict[str, Any]) -> dict[str, str]:
    """A proxy response's headers as API Gateway merges them (multiValueHeaders included)."""
    headers = {name: values[-1] for name, values in (response.get("multiValueHeaders") or {}).items()}
    headers.update(response.get("headers") or {})
    return headers


class LambdaContext(PowertoolsLambdaContext):
    """The context object Lambda passes to handlers, with a real clock behind it: Powertools'
    ``LambdaContext`` (the type the handlers declare) with its fields filled in."""

    def __init__(
        self,
        function_name: str = "worker",
        timeout_seconds: float = 900,
        aws_request_id: str | None = None,
        memory_limit_in_mb: int = 1024,
    ) -> None:
        self._function_name = function_name
        self._function_version = "$LATEST"
        self._invoked_function_arn = f"arn:aws:lambda:eu-west-1:123456789012:function:{function_name}"
        self._memory_limit_in_mb = memory_limit_in_mb
        self._aws_request_id = aws_request_id or str(uuid.uuid4())
        self._log_group_name = f"/aws/lambda/{function_name}"
        self._log_stream_name = "2026/11/24/[$LATEST]abcdef"
        self.timeout_seconds = timeout_seconds
        self.started = time.monotonic()

    def get_remaining_time_in_millis(self) -> int:  # type: ignore[override]  # Powertools declares it static
        return max(0, int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000))
