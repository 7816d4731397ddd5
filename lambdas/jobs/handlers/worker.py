"""The worker: runs one job per asynchronous invocation, for up to 15 minutes.

Invoked by the submit function with ``{"job_id": ..., "correlation_id": ...}``. Lambda
retries a failed attempt (per the event-invoke config) and, after the last one, sends
the event to the on-failure destination. The job logic lives in ``jobs.runner``; your
own tasks go in ``jobs.tasks``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from jobs.model import is_job_id
from jobs.observability import logger, metrics
from jobs.repository import JobRepository
from jobs.results import S3ResultStore
from jobs.runner import AttemptFailed, JobRunner, Outcome, RunReport
from jobs.settings import Settings
from jobs.tasks import REGISTRY

settings = Settings.from_env()
runner = JobRunner(
    JobRepository.from_settings(settings),
    REGISTRY,
    max_attempts=settings.max_attempts,
    max_result_bytes=settings.max_result_bytes,
    progress_min_interval=settings.progress_min_interval_seconds,
    timeout_margin_seconds=settings.timeout_margin_seconds,
    max_inline_result_bytes=settings.max_inline_result_bytes,
    results=S3ResultStore.from_settings(settings),
)


@logger.inject_lambda_context(clear_state=True)  # no job keys leak into the next invocation
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    job_id = event.get("job_id") if isinstance(event, dict) else None
    if not isinstance(job_id, str) or not is_job_id(job_id):
        # Retrying a malformed event cannot help; log it and finish.
        logger.error("worker event without a valid job_id", extra={"event": event})
        return {"outcome": Outcome.SKIPPED.value}
    logger.set_correlation_id(event.get("correlation_id"))
    # Lambda keeps the request id across its retries of one event: that is the attempt id.
    report = run_job(job_id, context.aws_request_id, lambda: context.get_remaining_time_in_millis() / 1000)
    return {"job_id": job_id, "outcome": report.outcome.value}


# The metrics the dashboard and the FailedJobsRate alarm read, one per way a job ends.
OUTCOME_METRICS: dict[str, str] = {
    Outcome.COMPLETED: "JobsCompleted",
    Outcome.FAILED: "JobsFailed",
    Outcome.CANCELLED: "JobsCancelled",
}


def count_outcome(outcome: str) -> None:
    """Count a job that ended (``outcome`` COMPLETED, FAILED or CANCELLED; others count nothing)."""
    name = OUTCOME_METRICS.get(outcome)  # Outcome is a StrEnum: "COMPLETED" finds Outcome.COMPLETED
    if name:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


def run_job(job_id: str, attempt_id: str, remaining_seconds: Callable[[], float]) -> RunReport:
    """Run one delivery of a job and count its outcome; shared by every dispatch variant.

    Raises :class:`AttemptFailed` when the attempt should be retried by the transport
    (Lambda's async retries, or the queue's redelivery)."""
    logger.append_keys(job_id=job_id)  # on every log line of this job, beside the trace id
    try:
        report = runner.run(job_id, attempt_id, remaining_seconds)
    except AttemptFailed as failure:
        metrics.add_metric(name="AttemptsFailed", unit=MetricUnit.Count, value=1)
        if failure.final:
            metrics.add_metric(name="JobsFailed", unit=MetricUnit.Count, value=1)
        raise
    count_outcome(report.outcome)
    if report.outcome is not Outcome.SKIPPED:
        metrics.add_metric(name="JobDuration", unit=MetricUnit.Milliseconds, value=report.duration_seconds * 1000)
    return report
