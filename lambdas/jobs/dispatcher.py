"""Hands a stored job to the worker: one asynchronous Lambda invocation (``dispatch=lambda``),
one message on the jobs queue (``dispatch=sqs``), one workflow execution
(``dispatch=stepfunctions``) or one durable execution (``dispatch=durable``). Either way the job is already stored;
only the transport differs."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from jobs import clients
from jobs.model import is_job_id

logger = Logger(child=True)

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient

    from jobs.settings import Settings


class DispatchError(Exception):
    """The worker could not be invoked; the job will not run."""


@dataclass(frozen=True)
class WorkerEvent:
    """What every transport hands the worker: the job's id and the submit request's id."""

    job_id: str
    correlation_id: str | None


def worker_event(job_id: str, correlation_id: str | None) -> str:
    """The worker event as sent: an invoke payload, a queue message body or an execution's input."""
    return json.dumps({"job_id": job_id, "correlation_id": correlation_id})


def read_worker_event(payload: object) -> WorkerEvent | None:
    """The :class:`WorkerEvent` in ``payload`` (the decoded invoke payload or message body),
    or None when it is not one: retrying a malformed event cannot help, so callers log it
    and let it go."""
    if not isinstance(payload, dict):
        return None
    job_id, correlation_id = payload.get("job_id"), payload.get("correlation_id")
    if not isinstance(job_id, str) or not is_job_id(job_id):
        return None
    return WorkerEvent(job_id, correlation_id if isinstance(correlation_id, str) else None)


# With worker_cold_start=snapstart, a version Lambda is (re)initialising (one not invoked for
# 14 days goes inactive) answers SnapStartNotReadyException for a while (Lambda Developer
# Guide, "Troubleshooting SnapStart errors"). The pauses before each retry, in seconds:
# a few seconds of the submit request's 29, then the caller gets 503 and retries.
NOT_READY_PAUSES = (0.5, 1.0, 2.0)


class LambdaDispatcher:
    """Invokes the worker with ``InvocationType="Event"``: Lambda queues the event and
    answers 202 at once, then retries and routes failures per the event-invoke config.

    ``durable`` (``dispatch=durable``): the invoke (of the worker's alias: durable functions
    take only qualified names) starts a durable execution named after the job. Lambda
    starts one execution per name: the same name and payload again returns the existing
    execution, another payload is refused (Lambda Developer Guide, "Idempotency in durable
    functions"). Either way the job starts at most once."""

    def __init__(self, function_name: str, client: LambdaClient | None = None, durable: bool = False) -> None:
        self._function_name = function_name
        self._client = client  # else boto3's, created on the first dispatch
        self._durable = durable

    def dispatch(self, job_id: str, correlation_id: str | None) -> None:
        client = self._client or clients.lambda_()
        named: dict[str, Any] = {"DurableExecutionName": job_id} if self._durable else {}
        for pause in (*NOT_READY_PAUSES, None):
            try:
                response = client.invoke(
                    FunctionName=self._function_name,
                    InvocationType="Event",
                    Payload=worker_event(job_id, correlation_id).encode(),
                    **named,
                )
                break
            except client.exceptions.DurableExecutionAlreadyStartedException:
                return  # already started: that is the one execution this job gets
            except client.exceptions.SnapStartNotReadyException as error:
                if pause is None:
                    raise DispatchError(str(error)) from error
                time.sleep(pause)
            except (ClientError, BotoCoreError) as error:
                raise DispatchError(str(error)) from error
        if response.get("StatusCode") != 202:
            raise DispatchError(f"unexpected status {response.get('StatusCode')} from Invoke")


class QueueDispatcher:
    """Sends the job to the jobs queue; the worker consumes it through an event source
    mapping, and the queue's redrive policy dead-letters it after the last attempt."""

    def __init__(self, queue_url: str, client: SQSClient | None = None) -> None:
        self._queue_url = queue_url
        self._client = client  # else boto3's, created on the first dispatch

    def dispatch(self, job_id: str, correlation_id: str | None) -> None:
        try:
            (self._client or clients.sqs()).send_message(
                QueueUrl=self._queue_url, MessageBody=worker_event(job_id, correlation_id)
            )
        except (ClientError, BotoCoreError) as error:
            raise DispatchError(str(error)) from error


class StateMachineDispatcher:
    """Starts the job workflow (``dispatch=stepfunctions``). The execution is named after the
    job: Step Functions refuses a second execution of a name, so a job starts at most once."""

    def __init__(self, state_machine_arn: str, client: SFNClient | None = None) -> None:
        self._state_machine_arn = state_machine_arn
        self._client = client  # else boto3's, created on the first dispatch

    def dispatch(self, job_id: str, correlation_id: str | None) -> None:
        client = self._client or clients.stepfunctions()
        try:
            client.start_execution(
                stateMachineArn=self._state_machine_arn, name=job_id, input=worker_event(job_id, correlation_id)
            )
        except client.exceptions.ExecutionAlreadyExists:
            return  # already started: that is the one execution this job gets
        except (ClientError, BotoCoreError) as error:
            raise DispatchError(str(error)) from error


class DurableExecutions:
    """Stops a cancelled job's durable execution. The invocation running at that moment goes
    on until its next checkpoint, which the SDK then refuses (Lambda API Reference,
    StopDurableExecution); every write it tries meanwhile is refused too, since its owner
    asked to cancel the job."""

    def __init__(self, client: LambdaClient | None = None) -> None:
        self._client = client  # else boto3's, created on the first stop

    def stop(self, execution_arn: str) -> bool:
        """True once stopped; False when it cannot be (it already ended, say): the job
        then ends as its worker records it."""
        try:
            (self._client or clients.lambda_()).stop_durable_execution(
                DurableExecutionArn=execution_arn,
                Error={"ErrorType": "JobCancelled", "ErrorMessage": "the job's owner cancelled it"},
            )
        except (ClientError, BotoCoreError) as error:
            logger.warning("could not stop the job's durable execution", extra={"error": str(error)})
            return False
        return True


def dispatcher_for(settings: Settings) -> LambdaDispatcher | QueueDispatcher | StateMachineDispatcher:
    """The dispatcher the deployment chose (``DISPATCH``: ``lambda``, ``sqs``, ``stepfunctions``
    or ``durable``)."""
    if settings.dispatch == "durable":
        return LambdaDispatcher(settings.require("worker_function_name"), durable=True)
    if settings.dispatch == "sqs":
        return QueueDispatcher(settings.require("jobs_queue_url"))
    if settings.dispatch == "stepfunctions":
        return StateMachineDispatcher(settings.require("state_machine_arn"))
    return LambdaDispatcher(settings.require("worker_function_name"))
