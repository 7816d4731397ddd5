"""HTTP plumbing shared by the API functions: the router, error mapping and caller identity.

Every error leaves as JSON ``{"message": ...}`` with its status; an unexpected exception
is logged with its trace and answered with a plain 500, never with the trace itself.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from jobs.observability import logger
from jobs.service import (
    DispatchFailed,
    InvalidCallbackUrl,
    InvalidJobId,
    InvalidListQuery,
    InvalidTaskInput,
    JobAlreadyFinished,
    JobNotFound,
    JobsError,
    UnknownTask,
)


class ApiError(Exception):
    """An error answered as ``status`` with ``{"message": message}``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, separators=(",", ":")),
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


# Domain errors -> HTTP statuses. DispatchFailed is the server's fault but retryable.
STATUS_OF: dict[type[JobsError], int] = {
    InvalidJobId: 400,
    InvalidListQuery: 400,
    JobNotFound: 404,
    JobAlreadyFinished: 409,
    UnknownTask: 422,
    InvalidTaskInput: 422,
    InvalidCallbackUrl: 422,
    DispatchFailed: 503,
}


def build_resolver(retry_after_seconds: int) -> APIGatewayRestResolver:
    """An API Gateway REST (proxy v1) router whose errors are all JSON ``{"message": ...}``."""
    app = APIGatewayRestResolver()

    @app.exception_handler(ApiError)
    def on_api_error(error: ApiError) -> Response[str]:
        return json_response(error.status, {"message": error.message}, error.headers)

    @app.exception_handler(JobsError)
    def on_jobs_error(error: JobsError) -> Response[str]:
        status = STATUS_OF.get(type(error), 400)
        headers = {"Retry-After": str(retry_after_seconds)} if status == 503 else None
        return json_response(status, {"message": str(error)}, headers)

    @app.exception_handler(Exception)
    def on_unexpected(_error: Exception) -> Response[str]:
        logger.exception("unhandled error")
        return json_response(500, {"message": "Internal server error"})

    @app.not_found
    def on_not_found(_error: Exception) -> Response[str]:
        return json_response(404, {"message": "Not found"})

    return app


def caller_identity(event: APIGatewayProxyEvent) -> str:
    """Who is calling: the IAM principal that API Gateway authenticated (AWS_IAM auth).

    Jobs belong to this identity; a request without one never reaches the functions when
    IAM authorization is on, so its absence here is refused rather than guessed.
    """
    identity = event.request_context.identity
    owner = identity.user_arn or identity.caller
    if not owner:
        raise ApiError(403, "the request carries no caller identity")
    return owner


def follow_headers(retry_after_seconds: int, websocket_url: str | None, job_id: str) -> dict[str, str]:
    """How to follow an unfinished job: poll again after ``Retry-After`` seconds or, when
    the stack has WebSocket push (``notify=websocket``), subscribe at the ``Link`` with
    ``rel="monitor"`` (RFC 5988 link; the value is the signed-connect URL's base)."""
    headers = {"Retry-After": str(retry_after_seconds)}
    if websocket_url:
        headers["Link"] = f'<{websocket_url}?job_id={job_id}>; rel="monitor"'
    return headers


def job_url(event: APIGatewayProxyEvent, job_id: str) -> str:
    """Absolute URL of a job's status resource, as the client reached the API.

    ``requestContext.path`` holds the stage (or custom-domain base path), so the URL
    works behind either; the scheme comes from the X-Forwarded-Proto header that API
    Gateway sets.
    """
    proto = event.headers.get("X-Forwarded-Proto") or "https"
    host = event.headers.get("Host") or event.request_context.domain_name or ""
    base = (event.request_context.path or event.path).rstrip("/")
    return f"{proto}://{host}{base}/{job_id}"
