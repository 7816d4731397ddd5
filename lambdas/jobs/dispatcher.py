"""Hands a stored job to the worker function: one asynchronous Lambda invocation."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import boto3
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient


class DispatchError(Exception):
    """The worker could not be invoked; the job will not run."""


class LambdaDispatcher:
    """Invokes the worker with ``InvocationType="Event"``: Lambda queues the event and
    answers 202 at once, then retries and routes failures per the event-invoke config."""

    def __init__(self, function_name: str, client: LambdaClient | None = None) -> None:
        self._function_name = function_name
        self._client = client or boto3.client("lambda")

    def dispatch(self, job_id: str, correlation_id: str | None) -> None:
        payload = {"job_id": job_id, "correlation_id": correlation_id}
        try:
            response = self._client.invoke(
                FunctionName=self._function_name,
                InvocationType="Event",
                Payload=json.dumps(payload).encode(),
            )
        except (ClientError, BotoCoreError) as error:
            raise DispatchError(str(error)) from error
        if response.get("StatusCode") != 202:
            raise DispatchError(f"unexpected status {response.get('StatusCode')} from Invoke")
