"""POST /jobs: store the job, hand it to the worker, answer 202 Accepted at once."""

from __future__ import annotations

import re
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from aws_lambda_powertools.utilities.validation import SchemaValidationError, validate

from jobs import clients
from jobs.api import (
    ApiError,
    build_resolver,
    caller_identity,
    follow_headers,
    job_url,
    json_response,
    read_json,
    request_bytes,
)
from jobs.dispatcher import dispatcher_for
from jobs.observability import logger, metrics
from jobs.registry import load_tasks
from jobs.repository import JobRepository
from jobs.schemas import submit_request_schema
from jobs.service import JobService
from jobs.settings import Settings

settings = Settings.from_env()
service = JobService(
    JobRepository.from_settings(settings),
    dispatcher_for(settings),
    callback_policy=settings.callback_policy,
    tasks=load_tasks(),
)
app = build_resolver(settings.retry_after_seconds)

# The same Idempotency-Key from the same caller returns the first job; with a different
# body it is refused (payload validation). An in-flight record expires with the Lambda
# context, so a crashed request does not block its key for the whole window.
idempotency_config = IdempotencyConfig(
    event_key_jmespath="[owner, key]",
    payload_validation_jmespath="[task, task_input, callback_url]",
    expires_after_seconds=settings.idempotency_window_seconds,
)
# The same DynamoDB client as the job repository's: one client per service and process.
persistence = DynamoDBPersistenceLayer(
    table_name=settings.require("idempotency_table_name"), boto3_client=clients.dynamodb()
)


@app.exception_handler(IdempotencyValidationError)
def on_key_reuse(_error: IdempotencyValidationError) -> Response[str]:
    message = "this Idempotency-Key was already used with a different request body"
    return json_response(422, {"message": message})


@app.exception_handler(IdempotencyAlreadyInProgressError)
def on_key_in_flight(_error: IdempotencyAlreadyInProgressError) -> Response[str]:
    message = "a request with this Idempotency-Key is still being processed; retry shortly"
    return json_response(409, {"message": message}, {"Retry-After": "1"})


IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")  # visible ASCII, as in the IETF draft


@idempotent_function(data_keyword_argument="request", config=idempotency_config, persistence_store=persistence)
def submit_once(request: dict[str, Any]) -> dict[str, Any]:
    job = service.submit(
        request["owner"],
        request["task"],
        request["task_input"],
        request["correlation_id"],
        request.get("callback_url"),
    )
    return job.to_public_dict()


def parse_body() -> dict[str, Any]:
    """The request body as a dict, or the 415/413/400 a client should see."""
    event = app.current_event
    content_type = event.headers.get("Content-Type") or ""  # Powertools headers ignore case
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise ApiError(415, "Content-Type must be application/json")
    body = request_bytes(event)
    if len(body) > settings.max_request_bytes:
        raise ApiError(
            413,
            f"request body is {len(body)} bytes; the limit is {settings.max_request_bytes} bytes: pass large "
            "inputs by reference (upload them to S3 and put the object's URI in the input)",
        )
    request = read_json(body)
    if not isinstance(request, dict):
        raise ApiError(400, "request body must be a JSON object")
    try:
        validate(event=request, schema=submit_request_schema())
    except SchemaValidationError as error:
        raise ApiError(400, f"invalid request body: {error}") from error
    return dict(request)


@app.post("/jobs")
def submit() -> Any:
    request = parse_body()
    event = app.current_event
    submission = {
        "owner": caller_identity(event),
        "task": request["task"],
        "task_input": request.get("input", {}),
        "correlation_id": event.request_context.request_id,
        "callback_url": request.get("callback_url"),
    }
    key = event.headers.get("Idempotency-Key")
    if key is None:
        view = service.submit(**submission).to_public_dict()
    elif IDEMPOTENCY_KEY.match(key):
        view = submit_once(request={**submission, "key": key})
    else:
        raise ApiError(400, "Idempotency-Key must be 1 to 128 visible ASCII characters")
    metrics.add_metric(name="JobsSubmitted", unit=MetricUnit.Count, value=1)
    location = job_url(event, view["job_id"])
    follow = follow_headers(settings.retry_after_seconds, settings.websocket_url, view["job_id"])
    return json_response(202, view, {"Location": location, **follow})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency_config.register_lambda_context(context)
    return app.resolve(event, context)
