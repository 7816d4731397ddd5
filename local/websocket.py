"""API Gateway WebSocket APIs for the local runtime (``notify=websocket``).

Two front doors, as in AWS: the WebSocket endpoint clients connect to
(``ws://127.0.0.1:<port>/<stage>?...``), whose ``$connect`` and ``$disconnect`` routes invoke
their functions with API Gateway's event (and a non-2xx answer to ``$connect`` refuses the
handshake with that status), and the management API the functions call back
(``POST``/``DELETE``/``GET /<stage>/@connections/<id>``, answering ``GoneException`` for a
connection that is no longer there). Routes other than the two are not emulated.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from local.apigateway import HttpRequest, HttpResponse, caller_identity
from local.template import ACCOUNT_ID, REGION, WebSocketApiSpec

log = logging.getLogger("local.websocket")
HOST = "127.0.0.1"


Invoker = Callable[[str, dict[str, Any]], Any]  # (function, event) -> InvocationResult | None


class LocalWebSocketApi:
    def __init__(self, spec: WebSocketApiSpec, invoke: Invoker, default_identity: str | None = None) -> None:
        self.spec = spec
        self._invoke = invoke
        self._default_identity = default_identity
        self._connections: dict[str, ServerConnection] = {}
        self._ids: dict[int, str] = {}  # id(ServerConnection) -> connection id
        self._lock = threading.Lock()
        self._server: Server | None = None

    # -- the client side -------------------------------------------------------------------

    def start(self, port: int = 0) -> int:
        self._server = serve(self._serve, HOST, port, process_request=self._connect)
        threading.Thread(target=self._server.serve_forever, name="websocket-api", daemon=True).start()
        return int(self._server.socket.getsockname()[1])

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()

    def _event(self, route: str, connection_id: str, request: Request | None, identity: Any) -> dict[str, Any]:
        now = datetime.now(UTC)
        event: dict[str, Any] = {
            "requestContext": {
                "routeKey": route,
                "eventType": "CONNECT" if route == "$connect" else "DISCONNECT",
                "connectionId": connection_id,
                "stage": self.spec.stage_name,
                "apiId": self.spec.logical_id,
                "domainName": HOST,
                "requestId": str(uuid.uuid4()),
                "requestTimeEpoch": int(now.timestamp() * 1000),
                "identity": identity or {"sourceIp": HOST},
                "accountId": ACCOUNT_ID,
            },
            "isBase64Encoded": False,
        }
        if request is not None:
            query = dict(parse_qsl(urlsplit(request.path).query))
            event["queryStringParameters"] = query or None
            event["headers"] = {name: value for name, value in request.headers.raw_items()}
        return event

    def _connect(self, connection: ServerConnection, request: Request) -> Response | None:
        """The handshake: route ``$connect`` (IAM-authorised when the route says so)."""
        stage = urlsplit(request.path).path.strip("/").split("/")[0]
        if stage != self.spec.stage_name:
            return _refuse(connection, HTTPStatus.FORBIDDEN, "Forbidden")
        identity = caller_identity(request.headers.get("Authorization"), self._default_identity)
        if self.spec.authorization.get("$connect") == "AWS_IAM" and identity is None:
            return _refuse(connection, HTTPStatus.FORBIDDEN, "Missing Authentication Token")
        connection_id = uuid.uuid4().hex[:16] + "="  # API Gateway's ids look like this: opaque, short
        function = self.spec.routes.get("$connect")
        if function is not None:
            result = self._invoke(function, self._event("$connect", connection_id, request, identity))
            status = _status_of(result)
            if not 200 <= status < 300:
                return _refuse(connection, HTTPStatus(status), "Forbidden" if status == 403 else "Connection refused")
        with self._lock:
            self._connections[connection_id] = connection
            self._ids[id(connection)] = connection_id
        return None

    def _serve(self, connection: ServerConnection) -> None:
        """Hold the connection open until either side closes it, then route ``$disconnect``."""
        try:
            for _message in connection:  # no $default route: client messages are ignored
                pass
        except ConnectionClosed:
            pass
        with self._lock:
            connection_id = self._ids.pop(id(connection), None)
            if connection_id is not None:
                self._connections.pop(connection_id, None)
        function = self.spec.routes.get("$disconnect")
        if connection_id is not None and function is not None:
            self._invoke(function, self._event("$disconnect", connection_id, None, None))

    # -- the management API ----------------------------------------------------------------

    def manage(self, request: HttpRequest) -> HttpResponse:
        """``/<stage>/@connections/<id>``: POST sends, DELETE closes, GET describes."""
        parts = [unquote(part) for part in request.target.split("?")[0].strip("/").split("/")]
        if len(parts) != 3 or parts[0] != self.spec.stage_name or parts[1] != "@connections":
            return _management_error(404, "NotFoundException", "no such resource")
        with self._lock:
            connection = self._connections.get(parts[2])
        if connection is None:
            return _management_error(410, "GoneException", f"connection {parts[2]} is gone")
        if request.method == "POST":
            try:
                connection.send(request.body.decode())
            except ConnectionClosed:
                return _management_error(410, "GoneException", f"connection {parts[2]} is gone")
            return HttpResponse(200, [], b"")
        if request.method == "DELETE":
            connection.close()
            return HttpResponse(204, [], b"")
        if request.method == "GET":
            info = {"connectedAt": datetime.now(UTC).isoformat(), "identity": {"sourceIp": HOST}}
            return HttpResponse(200, [("Content-Type", "application/json")], json.dumps(info).encode())
        return _management_error(405, "BadRequestException", "method not allowed")

    @property
    def connection_count(self) -> int:
        with self._lock:
            return len(self._connections)

    def wait_closed(self, timeout: float) -> bool:
        """Wait until no connection is open (tests)."""
        deadline = time.monotonic() + timeout
        while self.connection_count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.connection_count == 0


def _status_of(result: Any) -> int:
    if result is None or not getattr(result, "ok", False):
        return 500
    payload = getattr(result, "payload", None)
    if isinstance(payload, dict) and isinstance(payload.get("statusCode"), int):
        return int(payload["statusCode"])
    return 200


def _refuse(connection: ServerConnection, status: HTTPStatus, message: str) -> Response:
    response = connection.respond(status, json.dumps({"message": message}))
    response.headers["Content-Type"] = "application/json"
    return response


def _management_error(status: int, code: str, message: str) -> HttpResponse:
    headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)]
    return HttpResponse(status, headers, json.dumps({"message": message}).encode())


def local_api_id(logical_id: str) -> str:
    """The id the local runtime gives a WebSocket API (its URLs resolve through it)."""
    return f"ws{zlib.crc32(logical_id.encode()):08x}"


def aws_host(api_id: str) -> str:
    return f"{api_id}.execute-api.{REGION}.amazonaws.com"
