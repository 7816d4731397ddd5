"""On-failure destination of the worker: records the job FAILED, then keeps the event.

Lambda calls this (asynchronously) with its invocation record once the worker's event
has used up its retries or grown older than the maximum event age; with
``dispatch=durable``, an EventBridge rule calls it with Lambda's "Durable Execution Status
Change" event when a job's execution failed, timed out or was stopped (a durable function
has no on-failure destination: Lambda Developer Guide, "Invoking durable Lambda
functions"). The job is marked
FAILED with the reason (CANCELLED if its owner had asked to cancel it), unless the
worker already finished it, and the record goes to
the encrypted dead-letter queue for inspection and replay. If this function itself
keeps failing, its own on-failure destination is the same queue, so the event is kept
either way.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from jobs import clients
from jobs.dispatcher import read_worker_event
from jobs.model import JobError, is_job_id
from jobs.observability import logger, metrics
from jobs.repository import JobRepository
from jobs.settings import Settings

settings = Settings.from_env()
repository = JobRepository.from_settings(settings)
dead_letter_queue_url = settings.require("dead_letter_queue_url")


def failure_reason(record: dict[str, Any]) -> JobError:
    """Explain, from Lambda's invocation record, why the worker never finished the job."""
    context = record.get("requestContext") or {}
    condition = str(context.get("condition") or "Failed")
    attempts = context.get("approximateInvokeCount")
    response = record.get("responsePayload")
    last_error = ""
    if isinstance(response, dict) and response.get("errorMessage"):
        last_error = f"{response.get('errorType', 'Error')}: {response['errorMessage']}"
    if condition == "EventAgeExceeded":
        message = "the job waited longer than the maximum event age before a worker could run it"
    else:
        message = f"the worker failed {attempts or 'every'} attempt(s)"
    if last_error:
        message += f"; last error: {last_error}"
    return JobError(condition, message[:1000])


# The EventBridge event Lambda sends when a durable execution changes status (Lambda
# Developer Guide, "Monitoring durable functions"): source aws.lambda, this detail-type.
DURABLE_STATUS_CHANGE = "Durable Execution Status Change"
DURABLE_FAILURES = {
    "FAILED": "the job's durable execution failed",
    "TIMED_OUT": "the job's durable execution ran past durable_execution_timeout_seconds",
    "STOPPED": "the job's durable execution was stopped",
}


def durable_failure(event: dict[str, Any]) -> tuple[str | None, JobError]:
    """The job (the execution's name) and why it ended, from a status-change event."""
    detail = event.get("detail") or {}
    name = detail.get("durableExecutionName")
    job_id = name if isinstance(name, str) and is_job_id(name) else None
    status = str(detail.get("status") or "FAILED")
    reason = DURABLE_FAILURES.get(status, f"the job's durable execution ended {status}")
    return job_id, JobError(f"DurableExecution{status.title().replace('_', '')}", reason)


@logger.inject_lambda_context(clear_state=True)  # no job keys leak into the next invocation
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    durable = event.get("detail-type") == DURABLE_STATUS_CHANGE
    if durable:
        job_id, reason = durable_failure(event)
    else:
        work = read_worker_event(event.get("requestPayload"))
        job_id, reason = (work.job_id if work else None), failure_reason(event)
        logger.set_correlation_id(work.correlation_id if work else None)
    marked = cancelled = False
    if job_id is not None:
        marked = repository.fail(job_id, reason)
        if marked:
            metrics.add_metric(name="JobsFailed", unit=MetricUnit.Count, value=1)
        else:  # its owner asked to cancel it before the worker died: honour that instead
            cancelled = repository.cancel(job_id)
    logger.warning(
        "worker event failed for good", extra={"job_id": job_id, "marked_failed": marked, "cancelled": cancelled}
    )
    # Nothing to inspect or replay: what its owner asked for, or (durable) a job its worker
    # or its cancel already ended; a stopped execution always reports its end here.
    if cancelled or (durable and job_id is not None and not marked):
        return {"job_id": job_id, "marked_failed": marked}
    clients.sqs().send_message(QueueUrl=dead_letter_queue_url, MessageBody=json.dumps(event))
    metrics.add_metric(name="EventsDeadLettered", unit=MetricUnit.Count, value=1)
    return {"job_id": job_id, "marked_failed": marked}
