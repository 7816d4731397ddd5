"""DELETE /jobs/{job_id}: cancel a job (202), at once if PENDING, cooperatively if RUNNING."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from jobs.api import build_resolver, caller_identity, json_response
from jobs.dispatcher import DurableExecutions
from jobs.observability import logger
from jobs.repository import JobRepository
from jobs.service import JobService
from jobs.settings import Settings

settings = Settings.from_env()
# dispatch=durable: a cancelled job's execution is stopped (it may be in a long wait).
service = JobService(
    JobRepository.from_settings(settings),
    executions=DurableExecutions() if settings.dispatch == "durable" else None,
)
app = build_resolver(settings.retry_after_seconds)


@app.delete("/jobs/<job_id>")
def cancel(job_id: str) -> Any:
    job = service.cancel_for_owner(caller_identity(app.current_event), job_id)
    logger.info("cancel requested", extra={"job_id": job_id, "status": job.status.value})
    # A RUNNING job stops at its next progress report: poll until it shows CANCELLED.
    headers = {} if job.status.is_terminal else {"Retry-After": str(settings.retry_after_seconds)}
    return json_response(202, job.to_public_dict(), headers)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
