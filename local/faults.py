"""Fault injection for the local runtime: what production does to a worker, on purpose.

A :class:`FaultPlan` picks, for a configurable share of invocations of chosen functions:

* **crash**: the execution environment's process is killed (SIGKILL) during the
  invocation, as an out-of-memory kill or a segfault would; Lambda reports
  ``Runtime.ExitError`` and retries the event;
* **hang**: the process is frozen (SIGSTOP) during the invocation, so it runs past its
  timeout and is killed as Lambda kills a timed-out function (``Sandbox.Timedout``);
* **throttle**: a share of the function's DynamoDB requests is refused with
  ``ThrottlingException`` by a proxy in front of the emulated DynamoDB, so botocore's
  retry path runs exactly as it does against a throttled table.

Nothing changes in the functions' code: faults happen to their processes and their
network, as in production.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from local.partitions import WriteBudget, throttling_answer

log = logging.getLogger("local.faults")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}
THROTTLED = json.dumps(
    {
        "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
        "message": "Rate of requests exceeds the allowed throughput.",
    }
).encode()


@dataclass
class FaultPlan:
    """Shares (0-1) of faults, for functions whose handler is in ``handlers``."""

    handlers: tuple[str, ...]
    crash: float = 0.0
    hang: float = 0.0
    throttle: float = 0.0
    seed: int | None = None
    counts: dict[str, int] = field(default_factory=lambda: {"crash": 0, "hang": 0, "throttle": 0, "invocations": 0})

    def __post_init__(self) -> None:
        if self.crash + self.hang > 1 or min(self.crash, self.hang, self.throttle) < 0 or self.throttle > 1:
            raise ValueError("fault shares must be between 0 and 1 (crash + hang at most 1)")
        # Two streams, so the faults of the first N invocations depend on the seed alone, not on
        # how the DynamoDB requests of concurrent jobs interleave with them.
        self._invocations = random.Random(self.seed)  # noqa: S311  fault injection, not security
        self._requests = random.Random(None if self.seed is None else self.seed + 1)  # noqa: S311
        self._lock = threading.Lock()

    def applies_to(self, handler: str) -> bool:
        return handler in self.handlers

    def pick_invocation_fault(self) -> tuple[str | None, float]:
        """``("crash" | "hang" | None, seconds into the invocation)`` for the next invocation."""
        with self._lock:
            self.counts["invocations"] += 1
            draw = self._invocations.random()
            delay = self._invocations.uniform(0.0, 0.1)
            fault = "crash" if draw < self.crash else "hang" if draw < self.crash + self.hang else None
            if fault:
                self.counts[fault] += 1
            return fault, delay

    def throttles_next_request(self) -> bool:
        with self._lock:
            throttled = self._requests.random() < self.throttle
            if throttled:
                self.counts["throttle"] += 1
            return throttled


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A crashed sandbox drops its connection mid-request: expected here, not worth a trace.
        log.debug("connection from %s ended abruptly", client_address)


class ThrottlingProxy:
    """An HTTP proxy to the emulated DynamoDB that refuses a share of requests as throttled
    (``plan``), and writes over a partition key's budget as DynamoDB does (``budget``,
    ``local/partitions.py``)."""

    def __init__(
        self, upstream: str, plan: FaultPlan | None, budget: WriteBudget | None = None, host: str = "127.0.0.1"
    ) -> None:
        target = urlsplit(upstream)
        upstream_host, upstream_port = target.hostname or host, target.port or 80
        local = threading.local()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if plan is not None and plan.throttles_next_request():
                    self._answer(400, [("Content-Type", "application/x-amz-json-1.0")], THROTTLED)
                    return
                admission = None
                if budget is not None:
                    operation = (self.headers.get("X-Amz-Target") or "").rpartition(".")[2]
                    admission = budget.admit(operation, json.loads(body or b"{}"))
                    if admission.over is not None:
                        answer = json.dumps(throttling_answer(admission.over[0])).encode()
                        self._answer(400, [("Content-Type", "application/x-amz-json-1.0")], answer)
                        return
                if getattr(local, "connection", None) is None:
                    local.connection = http.client.HTTPConnection(upstream_host, upstream_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                try:
                    local.connection.request("POST", self.path, body, headers)
                    reply = local.connection.getresponse()
                    data = reply.read()
                except (OSError, http.client.HTTPException):
                    local.connection.close()
                    local.connection = None
                    raise
                if budget and admission and reply.status == 400 and b"ConditionalCheckFailedException" in data:
                    budget.refund_indexes(admission)
                passed = [(k, v) for k, v in reply.getheaders() if k.lower() not in HOP_BY_HOP | {"content-length"}]
                self._answer(reply.status, passed, data)

            def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug(format, *args)

        self._server = _QuietServer((host, 0), Handler)
        self.url = f"http://{host}:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, name="dynamodb-throttling-proxy", daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
