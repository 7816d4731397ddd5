"""WebSocket push (``notify=websocket``): subscribe to a job, get every change as it happens.

* ``connect`` ($connect, IAM-authorised): ``wss://.../<stage>?job_id=<id>`` subscribes the
  connection to that job, if the caller owns it (anyone else is refused, as with GET).
* ``disconnect`` ($disconnect): forgets the connection.
* ``push``: fed by the jobs table's stream; sends each changed job (the document
  ``GET /jobs/{job_id}`` answers) to its subscribers, closes their connections once the job
  has finished, and forgets connections that are gone.

Clients still poll when they cannot hold a connection: push only saves them the waiting.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from jobs import clients
from jobs.connections import ConnectionRepository
from jobs.items import job_in_stream_record
from jobs.model import is_job_id
from jobs.observability import logger, metrics
from jobs.repository import JobRepository
from jobs.results import S3ResultStore
from jobs.service import job_view
from jobs.settings import Settings

settings = Settings.from_env()
jobs = JobRepository.from_settings(settings)
connections = ConnectionRepository.from_name(settings.require("connections_table_name"))


def _answer(status: int, message: str) -> dict[str, Any]:
    # A non-2xx answer to $connect refuses the connection with that HTTP status.
    return {"statusCode": status, "body": json.dumps({"message": message})}


@logger.inject_lambda_context(clear_state=True)
def connect(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = event.get("requestContext") or {}
    identity = request.get("identity") or {}
    owner = identity.get("userArn") or identity.get("caller")
    job_id = (event.get("queryStringParameters") or {}).get("job_id", "")
    if not owner:
        return _answer(403, "the request carries no caller identity")
    if not is_job_id(job_id):
        return _answer(400, "connect with ?job_id=<the job's id>")
    job = jobs.get(job_id)
    if job is None or job.owner != owner:
        return _answer(404, f"job {job_id} not found")
    connections.subscribe(str(request["connectionId"]), job_id, owner)
    return {"statusCode": 200}


@logger.inject_lambda_context(clear_state=True)
def disconnect(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    connections.unsubscribe(str(event["requestContext"]["connectionId"]))
    return {"statusCode": 200}


def management_client() -> Any:
    """The management API client, at the WebSocket stage's own callback URL (push only:
    the connect and disconnect functions are not given that URL)."""
    return clients.apigateway_management(settings.require("websocket_callback_url"))


@cache
def result_links() -> S3ResultStore:
    return S3ResultStore.from_settings(settings)


def _send(connection_id: str, data: bytes, close: bool) -> bool:
    """Post to one connection (and close it when the job is over); False when it is gone."""
    management = management_client()
    try:
        management.post_to_connection(ConnectionId=connection_id, Data=data)
        if close:
            management.delete_connection(ConnectionId=connection_id)
    except management.exceptions.GoneException:
        connections.unsubscribe(connection_id)
        return False
    if close:
        connections.unsubscribe(connection_id)
    return True


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def push(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    sent = gone = 0
    for record in DynamoDBStreamEvent(event).records:
        job = job_in_stream_record(record)
        if job is None:
            continue
        subscribers = connections.subscribers(job.job_id)
        if not subscribers:
            continue
        data = json.dumps(job_view(job, result_links()), separators=(",", ":")).encode()
        for connection_id in subscribers:
            if _send(connection_id, data, close=job.status.is_terminal):
                sent += 1
            else:
                gone += 1
    if sent:
        metrics.add_metric(name="PushesSent", unit=MetricUnit.Count, value=sent)
    logger.debug("pushed", extra={"sent": sent, "gone": gone})
    return {"sent": sent, "gone": gone}
