"""The worker for ``dispatch=durable``: one job per durable execution, for as long as
``durable_execution_timeout_seconds`` allows, in as many invocations as its steps and waits
need.

Lambda invokes it with its own envelope (the execution's ARN, a checkpoint token and the
operations so far); the SDK's ``durable_execution`` unwraps the worker event the submit
function sent and hands it over with a durable context. The job logic is
``jobs.durable.DurableJobRunner``; your own tasks go in ``jobs.tasks``.
"""

from __future__ import annotations

from typing import Any

from aws_durable_execution_sdk_python.context import DurableContext
from aws_durable_execution_sdk_python.execution import durable_execution
from aws_lambda_powertools.utilities.typing import LambdaContext

from jobs.delivery import build_runner, count_outcome
from jobs.dispatcher import read_worker_event
from jobs.durable import DurableJobRunner
from jobs.observability import logger, metrics
from jobs.registry import load_tasks
from jobs.repository import JobRepository
from jobs.runner import Outcome
from jobs.settings import Settings
from jobs.steps import StepRunner

settings = Settings.from_env()
tasks = load_tasks()
store = JobRepository.from_settings(settings)
runner = build_runner(settings, tasks)
durable_runner = DurableJobRunner(
    runner,
    # The execution owns the job for its whole run, not one invocation.
    StepRunner(runner, store, tasks, settings.stuck_after_seconds, settings.timeout_margin_seconds),
    store,
    tasks,
    max_attempts=settings.max_attempts,
    progress_min_interval=settings.progress_min_interval_seconds,
    timeout_margin_seconds=settings.timeout_margin_seconds,
)


@durable_execution
def run(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    work = read_worker_event(event)
    if work is None:  # retrying a malformed event cannot help; log it and finish
        logger.error("worker event without a valid job_id", extra={"event": event})
        return {"outcome": Outcome.SKIPPED.value}
    logger.set_correlation_id(work.correlation_id)
    logger.append_keys(job_id=work.job_id)
    answer = durable_runner.run(work.job_id, context)
    count_outcome(answer["outcome"])  # once: only the invocation that finishes gets here
    return answer


@logger.inject_lambda_context(clear_state=True)  # no job keys leak into the next invocation
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The SDK declares its own LambdaContext protocol; Lambda's object is both.
    answer: dict[str, Any] = run(event, context)  # type: ignore[arg-type]
    return answer
