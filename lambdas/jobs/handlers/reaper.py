"""Scheduled (EventBridge) backstop: ends jobs left PENDING or RUNNING past their deadline.

See ``jobs/reaper.py`` for why such jobs exist and why ending them is safe.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from jobs.observability import logger, metrics
from jobs.reaper import Reaper
from jobs.repository import JobRepository
from jobs.settings import Settings

settings = Settings.from_env()
reaper = Reaper(JobRepository.from_settings(settings), settings.stuck_after_seconds)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = reaper.run(int(time.time()))
    metrics.add_metric(name="JobsReaped", unit=MetricUnit.Count, value=len(report.failed))
    if report.cancelled:
        metrics.add_metric(name="JobsCancelled", unit=MetricUnit.Count, value=len(report.cancelled))
    logger.info(
        "reaper run",
        extra={"failed": len(report.failed), "cancelled": len(report.cancelled), "raced": report.finished_meanwhile},
    )
    return {"failed": report.failed, "cancelled": report.cancelled}
