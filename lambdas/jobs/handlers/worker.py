"""The worker: runs one job per asynchronous invocation, for up to 15 minutes.

Invoked by the submit function with the worker event (``jobs.dispatcher.worker_event``).
Lambda retries a failed attempt (per the event-invoke config) and, after the last one,
sends the event to the on-failure destination. The job logic lives in ``jobs.runner``;
your own tasks go in ``jobs.tasks``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from jobs.delivery import build_runner, run_job
from jobs.dispatcher import read_worker_event
from jobs.observability import logger, metrics
from jobs.registry import load_tasks
from jobs.runner import Outcome
from jobs.settings import Settings

settings = Settings.from_env()
runner = build_runner(settings, load_tasks())


@logger.inject_lambda_context(clear_state=True)  # no job keys leak into the next invocation
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    work = read_worker_event(event)
    if work is None:
        # Retrying a malformed event cannot help; log it and finish.
        logger.error("worker event without a valid job_id", extra={"event": event})
        return {"outcome": Outcome.SKIPPED.value}
    logger.set_correlation_id(work.correlation_id)
    # Lambda keeps the request id across its retries of one event: that is the attempt id.
    remaining = lambda: context.get_remaining_time_in_millis() / 1000  # noqa: E731
    report = run_job(runner, work.job_id, context.aws_request_id, remaining)
    return {"job_id": work.job_id, "outcome": report.outcome.value}
