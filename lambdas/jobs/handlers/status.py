"""GET /jobs/{job_id}: the job's status, progress and, once finished, result or error.
GET /jobs?status=&limit=&next_token=: the caller's jobs, newest first, a page at a time."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from jobs.api import build_resolver, caller_identity, follow_headers, json_response
from jobs.observability import logger
from jobs.repository import JobRepository
from jobs.results import S3ResultStore
from jobs.service import JobService
from jobs.settings import Settings

settings = Settings.from_env()
service = JobService(
    JobRepository.from_settings(settings),
    results=S3ResultStore.from_settings(settings),
)
app = build_resolver(settings.retry_after_seconds)


@app.get("/jobs/<job_id>")
def status(job_id: str) -> Any:
    job = service.get_for_owner(caller_identity(app.current_event), job_id)
    # Retry-After tells pollers when to look again; a finished job will not change.
    headers = (
        {} if job.status.is_terminal else follow_headers(settings.retry_after_seconds, settings.websocket_url, job_id)
    )
    return json_response(200, service.view(job), headers)


@app.get("/jobs")
def list_jobs() -> Any:
    job_id = (app.current_event.path_parameters or {}).get("job_id")
    if job_id is not None:
        # API Gateway matched /jobs/{job_id}, but Powertools' route pattern ends in "$", which
        # also matches before a final newline: GET /jobs/%0A would list the caller's jobs.
        return status(job_id)
    query = app.current_event.query_string_parameters or {}
    jobs, next_token = service.list_for_owner(
        caller_identity(app.current_event), query.get("status"), query.get("limit"), query.get("next_token")
    )
    body: dict[str, Any] = {"jobs": [job.to_summary_dict() for job in jobs]}
    if next_token:
        body["next_token"] = next_token
    return json_response(200, body)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
