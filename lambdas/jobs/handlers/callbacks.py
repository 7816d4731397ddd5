"""Webhook callbacks: POSTs each finished job that has a ``callback_url`` to that URL.

Fed by the jobs table's DynamoDB stream (the event source mapping's filter passes only
moves into COMPLETED, FAILED or CANCELLED of jobs with a callback), so every way a job
can end calls back, whoever ended it: the worker, a cancellation or the reaper. The
delivery itself (signing, address checks, retries with backoff) is ``jobs.callbacks``.

The records of a batch are delivered concurrently. A record whose outcome could not be
written is reported as a batch item failure so the stream retries it; a job whose
callback is already recorded is never sent again (receivers still get the same
``X-Async-Jobs-Delivery`` id on a retry of one delivery, to drop duplicates).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from jobs.callbacks import CallbackSender
from jobs.items import job_in_stream_record
from jobs.model import CallbackRecord, iso, utc_now
from jobs.observability import logger, metrics
from jobs.repository import JobRepository
from jobs.results import S3ResultStore
from jobs.service import job_view
from jobs.settings import Settings

settings = Settings.from_env()
repository = JobRepository.from_settings(settings)
results = S3ResultStore.from_settings(settings)
# Records delivered at once per invocation (the event source mapping's batch size is at most this).
MAX_PARALLEL_DELIVERIES = 10


def signing_secret() -> bytes:
    """The HMAC key, from Secrets Manager, cached for 5 minutes (so a rotation is picked up)."""
    value = parameters.get_secret(settings.require("callback_secret_arn"), max_age=300)
    return value.encode() if isinstance(value, str) else bytes(value)


sender = CallbackSender(
    app=settings.app,
    secret=signing_secret,
    policy=settings.callback_policy,
    max_attempts=settings.callback_max_attempts,
    timeout_seconds=settings.callback_timeout_seconds,
)


def deliver(record: DynamoDBRecord) -> None:
    """Call back for one stream record, if it is a job that just finished with a callback
    not yet delivered; record the outcome on the job."""
    job = job_in_stream_record(record)
    if job is None or not job.status.is_terminal or job.callback_url is None:
        return
    current = repository.get(job.job_id)
    if current is None or current.callback is not None:
        return  # expired meanwhile, or called back already (a retried batch)
    outcome = sender.deliver(job.callback_url, job_view(job, results), delivery_id=str(record.event_id))
    callback = CallbackRecord(outcome.status, outcome.attempts, iso(utc_now()), outcome.response_status, outcome.error)
    repository.record_callback(job.job_id, callback)
    name = "CallbacksDelivered" if outcome.delivered else "CallbacksFailed"
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    log = logger.info if outcome.delivered else logger.warning
    log("callback " + outcome.status.lower(), extra={"job_id": job.job_id, "attempts": outcome.attempts})


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = list(DynamoDBStreamEvent(event).records)
    failures: list[dict[str, str]] = []
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_DELIVERIES, max(len(records), 1))) as pool:
        futures = [(record, pool.submit(deliver, record)) for record in records]
        for record, future in futures:
            error = future.exception()
            if error is not None:
                logger.error("callback record failed; the stream will retry it", exc_info=error)
                sequence = record.dynamodb.sequence_number if record.dynamodb else None
                failures.append({"itemIdentifier": str(sequence)})
    return {"batchItemFailures": failures}
