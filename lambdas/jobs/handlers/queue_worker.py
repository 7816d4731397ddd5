"""The worker for ``dispatch=sqs``: runs the jobs of a batch of queue messages.

An event source mapping delivers messages from the jobs queue. Each message is one
delivery of one job; its message id stays the same across redeliveries, so it is the
attempt id, exactly as Lambda's request id is for ``dispatch=lambda``. A message whose
attempt should be retried is reported as a batch item failure (Powertools batch
utility): it becomes visible again after the queue's visibility timeout, and the redrive
policy moves it to the dead-letter queue after the last attempt. The rest of the batch
is deleted. The job logic is the same as the Lambda-dispatched worker's (``jobs.delivery``).
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from jobs.delivery import build_runner, run_job
from jobs.dispatcher import read_worker_event
from jobs.observability import logger, metrics
from jobs.registry import load_tasks
from jobs.settings import Settings

settings = Settings.from_env()
runner = build_runner(settings, load_tasks())

# A batch whose every message must be retried is still a normal answer (all of them as
# batch item failures), not a function error that would set off the Errors alarm.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _record_handler(record: SQSRecord, context: LambdaContext) -> None:
    try:
        message = json.loads(record.body)
    except ValueError:
        message = None
    work = read_worker_event(message)
    if work is None:
        # Redelivering a malformed message cannot help: acknowledge it (it is logged).
        logger.error("queue message without a valid job_id", extra={"message_id": record.message_id})
        return
    logger.set_correlation_id(work.correlation_id)
    run_job(runner, work.job_id, record.message_id, lambda: context.get_remaining_time_in_millis() / 1000)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = process_partial_response(
        event=event,
        record_handler=lambda record: _record_handler(record, context),
        processor=processor,
        context=context,
    )
    return dict(response)  # {"batchItemFailures": [{"itemIdentifier": <message id>}, ...]}
