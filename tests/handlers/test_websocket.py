"""WebSocket push (notify=websocket) against moto: subscribe on $connect (owners only),
each job change sent to the job's subscribers, closed when the job ends, gone ones forgotten."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeSerializer

from jobs.handlers import websocket
from local.provisioning import create_table
from tests.conftest import TEST_ENVIRONMENT
from tests.events import ALICE, BOB, LambdaContext
from tests.handlers.test_worker import run_worker, submit_job
from tests.infra.conftest import synth

pytestmark = pytest.mark.usefixtures("aws")


@pytest.fixture(scope="module")
def connections_table_definition() -> dict[str, Any]:
    """The connections table exactly as the notify=websocket stack declares it."""
    _, template = synth({"notify": "websocket"})
    [table] = [
        t["Properties"]
        for logical_id, t in template.find_resources("AWS::DynamoDB::Table").items()
        if "Connections" in logical_id
    ]
    return dict(table)


@pytest.fixture(autouse=True)
def connections_table(aws: None, connections_table_definition: dict[str, Any]) -> Iterator[None]:
    create_table(boto3.client("dynamodb"), TEST_ENVIRONMENT["CONNECTIONS_TABLE_NAME"], connections_table_definition)
    yield


def connect_event(connection_id: str, job_id: str | None, caller: str | None = ALICE) -> dict[str, Any]:
    return {
        "requestContext": {
            "routeKey": "$connect",
            "eventType": "CONNECT",
            "connectionId": connection_id,
            "identity": {"userArn": caller} if caller else {},
        },
        "queryStringParameters": {"job_id": job_id} if job_id else None,
    }


def connect(connection_id: str, job_id: str | None, caller: str | None = ALICE) -> dict[str, Any]:
    return dict(websocket.connect(connect_event(connection_id, job_id, caller), LambdaContext()))


def stream_event(job_id: str) -> dict[str, Any]:
    """One MODIFY record carrying the job item as it is now (what the stream would send)."""
    item = (
        boto3.resource("dynamodb").Table(TEST_ENVIRONMENT["JOBS_TABLE_NAME"]).get_item(Key={"job_id": job_id})["Item"]
    )
    image = {key: TypeSerializer().serialize(value) for key, value in item.items()}
    return {
        "Records": [{"eventID": "1", "eventName": "MODIFY", "dynamodb": {"NewImage": image, "SequenceNumber": "1"}}]
    }


def sent_to(connection_id: str) -> bytes | None:
    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends

    backend = apigatewaymanagementapi_backends["123456789012"][TEST_ENVIRONMENT["AWS_REGION"]]
    connection = backend.connections.get(connection_id)
    return connection.data if connection is not None else None


def subscribers(job_id: str) -> list[str]:
    return websocket.connections.subscribers(job_id)


def test_the_owner_subscribes_anyone_else_is_refused():
    job_id = submit_job("sleep", {"seconds": 0})
    assert connect("conn-alice", job_id)["statusCode"] == 200
    assert connect("conn-bob", job_id, caller=BOB)["statusCode"] == 404
    assert connect("conn-anon", job_id, caller=None)["statusCode"] == 403
    assert connect("conn-none", None)["statusCode"] == 400
    assert connect("conn-bad", "not-a-uuid")["statusCode"] == 400
    assert subscribers(job_id) == ["conn-alice"]
    item = boto3.resource("dynamodb").Table("connections").get_item(Key={"connection_id": "conn-alice"})["Item"]
    assert item["owner"] == ALICE and int(str(item["expires_at"])) > 0  # TTL: gone even without $disconnect


def test_disconnect_forgets_the_connection():
    job_id = submit_job("sleep", {"seconds": 0})
    connect("conn-1", job_id)
    websocket.disconnect({"requestContext": {"connectionId": "conn-1", "routeKey": "$disconnect"}}, LambdaContext())
    assert subscribers(job_id) == []


def test_a_change_is_pushed_as_the_status_document_and_a_finished_job_closes_the_connection():
    job_id = submit_job("sleep", {"seconds": 0})
    connect("conn-push", job_id)
    assert websocket.push(stream_event(job_id), LambdaContext()) == {"sent": 1, "gone": 0}
    assert json.loads(sent_to("conn-push") or b"")["status"] == "PENDING"
    assert subscribers(job_id) == ["conn-push"]  # still open: the job goes on

    run_worker(job_id)
    assert websocket.push(stream_event(job_id), LambdaContext()) == {"sent": 1, "gone": 0}
    assert subscribers(job_id) == []  # closed and forgotten once the job ended
    assert sent_to("conn-push") is None  # moto drops a deleted connection: it was closed


def test_connections_api_gateway_reports_gone_are_forgotten(monkeypatch: pytest.MonkeyPatch):
    job_id = submit_job("sleep", {"seconds": 0})
    connect("conn-gone", job_id)

    def gone(**_: Any) -> None:
        management = websocket.management_client()
        raise management.exceptions.GoneException({"Error": {"Code": "GoneException"}}, "PostToConnection")

    monkeypatch.setattr(websocket.management_client(), "post_to_connection", gone)
    assert websocket.push(stream_event(job_id), LambdaContext()) == {"sent": 0, "gone": 1}
    assert subscribers(job_id) == []


def test_jobs_nobody_watches_cost_one_query():
    job_id = submit_job("sleep", {"seconds": 0})
    assert websocket.push(stream_event(job_id), LambdaContext()) == {"sent": 0, "gone": 0}
