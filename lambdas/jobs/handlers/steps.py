"""The steps of the job workflow (``dispatch=stepfunctions``), one Lambda handler each.

The state machine (``stacks/workflow.py``) passes ``{"job_id", "execution"}`` (the
execution's name, which is the job id) to every step, plus what the step needs; the
logic is ``jobs.steps.StepRunner``; the task is yours, in ``jobs.tasks``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from jobs.delivery import build_runner, count_outcome
from jobs.observability import logger, metrics
from jobs.registry import load_tasks
from jobs.repository import JobRepository
from jobs.settings import Settings
from jobs.steps import StepRunner

settings = Settings.from_env()
tasks = load_tasks()
steps = StepRunner(
    build_runner(settings, tasks),
    JobRepository.from_settings(settings),
    tasks,
    lease_seconds=settings.stuck_after_seconds,
    timeout_margin_seconds=settings.timeout_margin_seconds,
)


def _count(answer: dict[str, Any]) -> dict[str, Any]:
    count_outcome(str(answer.get("outcome")))
    return answer


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def prepare(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event["job_id"])
    logger.set_correlation_id(event.get("correlation_id"))
    return _count(steps.prepare(event["job_id"], event["execution"]))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def process(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event["job_id"])
    remaining = lambda: context.get_remaining_time_in_millis() / 1000  # noqa: E731
    return _count(steps.process(event["job_id"], event["execution"], remaining))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def finalise(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event["job_id"])
    return _count(steps.finalise(event["job_id"], event["execution"], event["result"]))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def record_failure(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event["job_id"])
    failure = event.get("failure") or {}
    answer = steps.record_failure(
        event["job_id"], event["execution"], event["step"], str(failure.get("Error", "")), failure.get("Cause")
    )
    return _count(answer)
