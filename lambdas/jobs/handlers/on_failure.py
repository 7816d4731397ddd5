"""On-failure destination of the worker: records the job FAILED, then keeps the event.

Lambda calls this (asynchronously) with its invocation record once the worker's event
has used up its retries or grown older than the maximum event age. The job is marked
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
from jobs.model import JobError
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


@logger.inject_lambda_context(clear_state=True)  # no job keys leak into the next invocation
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    work = read_worker_event(event.get("requestPayload"))
    job_id = work.job_id if work else None
    logger.set_correlation_id(work.correlation_id if work else None)
    marked = cancelled = False
    if job_id is not None:
        marked = repository.fail(job_id, failure_reason(event))
        if marked:
            metrics.add_metric(name="JobsFailed", unit=MetricUnit.Count, value=1)
        else:  # its owner asked to cancel it before the worker died: honour that instead
            cancelled = repository.cancel(job_id)
    logger.warning(
        "worker event failed for good", extra={"job_id": job_id, "marked_failed": marked, "cancelled": cancelled}
    )
    clients.sqs().send_message(QueueUrl=dead_letter_queue_url, MessageBody=json.dumps(event))
    metrics.add_metric(name="EventsDeadLettered", unit=MetricUnit.Count, value=1)
    return {"job_id": job_id, "marked_failed": marked}
