"""``jobs watch``: pushed over the WebSocket the status answer links, polling otherwise."""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.credentials import Credentials
from websockets.sync.server import Server, ServerConnection, serve

from jobs_cli.client import JobsClient, Response
from jobs_cli.main import Watcher


class ScriptedClient(JobsClient):
    """A real client (it signs) whose status answers come from a script."""

    def __init__(self, answers: list[Response]) -> None:
        super().__init__("https://abc123.execute-api.eu-west-1.amazonaws.com/v1/", credentials=Credentials("AK", "SK"))
        self.answers = answers
        self.asked = 0

    def status(self, job_id: str) -> Response:
        self.asked += 1
        return self.answers.pop(0)


def status(state: str, link: str | None = None, percent: int = 0) -> Response:
    headers = {"Retry-After": "1"}
    if link:
        headers["Link"] = f'<{link}?job_id=j-1>; rel="monitor"'
    return Response(200, headers, {"job_id": "j-1", "status": state, "progress": {"percent": percent}})


@pytest.fixture
def push_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A WebSocket endpoint that records each handshake and pushes a job to the end."""
    handshakes: list[dict[str, Any]] = []

    def handler(connection: ServerConnection) -> None:
        request = connection.request
        assert request is not None
        handshakes.append({"path": request.path, "authorization": request.headers.get("Authorization", "")})
        for state, percent in (("RUNNING", 50), ("COMPLETED", 100)):
            connection.send(json.dumps({"job_id": "j-1", "status": state, "progress": {"percent": percent}}))

    server: Server = serve(handler, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}/v1", handshakes
    server.shutdown()


def test_watch_follows_the_pushed_changes_over_a_signed_websocket(push_server):
    url, handshakes = push_server
    client = ScriptedClient([status("PENDING", link=url)])
    out = io.StringIO()
    watcher = Watcher(client, out=out, sleep=lambda _: None)
    job = watcher.watch("j-1", timeout=10)
    assert job is not None and job["status"] == "COMPLETED"
    assert watcher.transport == "websocket"
    assert client.asked == 1  # one GET, then only pushes
    [handshake] = handshakes
    assert handshake["path"] == "/v1?job_id=j-1"
    assert handshake["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AK/")
    assert "/execute-api/aws4_request" in handshake["authorization"]
    assert [line.split("%")[0][-3:].strip() for line in out.getvalue().splitlines()] == ["0", "50", "100"]


def test_watch_polls_when_the_websocket_cannot_be_reached():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens here once the block ends
    client = ScriptedClient([status("RUNNING", link=f"ws://127.0.0.1:{port}/v1"), status("COMPLETED", percent=100)])
    watcher = Watcher(client, out=io.StringIO(), sleep=lambda _: None)
    job = watcher.watch("j-1", timeout=10)
    assert job is not None and job["status"] == "COMPLETED"
    assert watcher.transport == "polling"
    assert client.asked == 2


def test_watch_polls_when_the_stack_has_no_websocket():
    client = ScriptedClient([status("PENDING"), status("RUNNING", percent=40), status("FAILED")])
    watcher = Watcher(client, out=io.StringIO(), sleep=lambda _: None)
    job = watcher.watch("j-1", timeout=10)
    assert job is not None and job["status"] == "FAILED"
    assert watcher.transport == "polling"
