"""HTTP plumbing shared by the API functions: the router, error mapping and caller identity.

Every error leaves as JSON ``{"message": ...}`` with its status; an unexpected exception
is logged with its trace and answered with a plain 500, never with the trace itself.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from botocore.exceptions import ClientError

from jobs import strict_json
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
    ListingUnavailable,
    UnknownTask,
)
from jobs.strict_json import MAX_JSON_DEPTH, NotStrictJson, nesting

# The longest message an error answer carries: a validation error quoting the request
# (up to 64 KiB of input) is cut to an excerpt.
MAX_MESSAGE_CHARS = 500


def excerpt(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``message``, cut to ``limit`` characters (an ellipsis marks the cut)."""
    return message if len(message) <= limit else message[: limit - 1] + "…"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    """A JSON number as a float, refusing one too large for it (``1e999`` would be ``inf``,
    which the job could not be stored or answered with as JSON)."""
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{excerpt(text, 40)} is too large a number")
    return value


def read_json(body: str | bytes) -> Any:
    """A request body as JSON, or :class:`ApiError` 400 for anything that is not strict JSON
    in UTF-8 (``NaN`` and ``Infinity`` included, which API Gateway's parser refuses), nests
    deeper than :data:`MAX_JSON_DEPTH` or holds a lone surrogate (``jobs/strict_json.py``)."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        if nesting(text) > MAX_JSON_DEPTH:
            raise ApiError(400, f"request body nests deeper than {MAX_JSON_DEPTH} levels")
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite)
        # An escaped lone surrogate ("\ud800") parses, but no UTF-8 can store it.
        strict_json.dumps(value)
    except UnicodeError as error:
        raise ApiError(400, "request body is not valid UTF-8") from error
    except NotStrictJson as error:
        raise ApiError(400, excerpt(f"request body is not accepted: {error}")) from error
    except (ValueError, RecursionError) as error:
        raise ApiError(400, excerpt(f"request body is not valid JSON: {error}")) from error
    return value


def request_bytes(event: APIGatewayProxyEvent) -> bytes:
    """The request body as sent: base64-decoded when API Gateway encoded it, and never
    decoded as text here (a body that is not UTF-8 is :func:`read_json`'s 400)."""
    body = event.body or ""
    if event.is_base64_encoded:
        try:
            return base64.b64decode(body, validate=True)
        except ValueError as error:
            raise ApiError(400, "request body is not valid base64") from error
    return body.encode("utf-8", "surrogatepass")


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
    ListingUnavailable: 503,
}


# An AWS service still throttling after botocore's retries: capacity, not a bug, and over
# soon; the caller should retry (DynamoDB: ProvisionedThroughputExceededException, also for
# an on-demand table's hot partition; ThrottlingException, RequestLimitExceeded).
THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "Throttling",
    }
)


def build_resolver(retry_after_seconds: int) -> APIGatewayRestResolver:
    """An API Gateway REST (proxy v1) router whose errors are all JSON ``{"message": ...}``."""
    app = APIGatewayRestResolver()

    @app.exception_handler(ApiError)
    def on_api_error(error: ApiError) -> Response[str]:
        return json_response(error.status, {"message": excerpt(error.message)}, error.headers)

    @app.exception_handler(JobsError)
    def on_jobs_error(error: JobsError) -> Response[str]:
        status = STATUS_OF.get(type(error), 400)
        headers = {"Retry-After": str(retry_after_seconds)} if status == 503 else None
        return json_response(status, {"message": excerpt(str(error))}, headers)

    @app.exception_handler(Exception)
    def on_unexpected(error: Exception) -> Response[str]:
        if isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") in THROTTLING_CODES:
            logger.warning("throttled by AWS after retries", extra={"error": str(error)})
            retry = {"Retry-After": str(retry_after_seconds)}
            return json_response(503, {"message": "the service is busy; retry after the Retry-After header"}, retry)
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
    """A job's status resource as a path reference (``/v1/jobs/<id>``), which a client
    resolves against the URL it called (RFC 9110, "Location": a URI-reference).

    ``requestContext.path``, which API Gateway sets, holds the stage or the custom
    domain's base path, so the reference works behind either. Nothing comes from the
    request's own headers (``Host``, ``X-Forwarded-Proto``): a client sets those.
    """
    base = "/" + (event.request_context.path or event.path).strip("/")  # never "//host/...": a network path
    return f"{base.rstrip('/')}/{job_id}"
