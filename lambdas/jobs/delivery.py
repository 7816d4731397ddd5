"""One delivery of a job, whichever transport brought it: the job runner built from the
settings, the attempt run, its outcome counted in the metrics the dashboard and the
FailedJobsRate alarm read. Shared by ``handlers/worker.py`` (``dispatch=lambda``),
``handlers/queue_worker.py`` (``sqs``) and ``handlers/steps.py`` (``stepfunctions``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import MetricUnit

from jobs.observability import logger, metrics
from jobs.repository import JobRepository
from jobs.results import S3ResultStore
from jobs.runner import AttemptFailed, JobRunner, Outcome, RunReport
from jobs.settings import Settings

if TYPE_CHECKING:
    from jobs.registry import TaskDefinition


def build_runner(settings: Settings, tasks: Mapping[str, TaskDefinition]) -> JobRunner:
    """The job runner for ``tasks``, with this deployment's store, results and limits."""
    return JobRunner(
        JobRepository.from_settings(settings),
        tasks,
        max_attempts=settings.max_attempts,
        max_result_bytes=settings.max_result_bytes,
        progress_min_interval=settings.progress_min_interval_seconds,
        timeout_margin_seconds=settings.timeout_margin_seconds,
        max_inline_result_bytes=settings.max_inline_result_bytes,
        results=S3ResultStore.from_settings(settings),
    )


# One metric per way a job ends.
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


def run_job(runner: JobRunner, job_id: str, attempt_id: str, remaining_seconds: Callable[[], float]) -> RunReport:
    """Run one delivery of a job and count its outcome.

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
