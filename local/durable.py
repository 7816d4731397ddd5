"""Lambda's durable execution service, locally (``dispatch=durable``): AWS's own local
runner from the durable execution SDK's testing package, wired into the local Lambda.

* AWS's ``WebRunner`` keeps each execution's checkpoints, schedules its waits and step
  retries, times it out, and invokes the function for every replay: a crash, a timeout or
  a failed checkpoint call is invoked again with backoff, as the service does. It invokes
  the function through this runtime's Lambda front door with its marker header
  (``X-Dex-Handler-Invoke``), which runs the handler once.
* The front door sends the SDK's durable execution API calls (``/2025-12-01/durable-
  executions/...``: checkpoint, state, stop) here, and an ``Invoke`` of a durable function
  without the marker starts an execution (:meth:`LocalDurableService.start`), named as
  the caller asked: the same name and payload again return the existing execution, another
  payload is refused (``DurableExecutionAlreadyStartedException``), as in AWS.
* When an execution ends, :meth:`start`'s ``on_status_change`` gets Lambda's EventBridge
  event for it ("Durable Execution Status Change"), for the template's rules.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aws_durable_execution_sdk_python_testing.invoker import INVOCATION_MARKER_HEADER
from aws_durable_execution_sdk_python_testing.runner import WebRunner, WebRunnerConfig
from aws_durable_execution_sdk_python_testing.web.server import WebServiceConfig

from local.apigateway import HttpRequest, HttpResponse
from local.template import ACCOUNT_ID, REGION, FunctionSpec

log = logging.getLogger("local.durable")

API_PREFIX = "/2025-12-01/"
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"})
# How often running executions are looked at for their end (the event's delay here).
WATCH_INTERVAL_SECONDS = 0.25
# A local stand-in for the version an execution is pinned to (the alias's, in AWS).
LOCAL_VERSION = "1"


def is_handler_invoke(request: HttpRequest) -> bool:
    """True for the runner's own invocations of a handler (run it once, start nothing)."""
    return (request.header(INVOCATION_MARKER_HEADER) or "").lower() == "true"


def is_durable_api(request: HttpRequest) -> bool:
    return request.target.startswith(API_PREFIX) and "/durable-executions" in request.target


class AlreadyStarted(Exception):
    """An execution of that name exists with another payload."""


@dataclass
class _Execution:
    arn: str
    name: str
    payload: bytes
    function_arn: str
    started: str


class LocalDurableService:
    def __init__(
        self,
        lambda_endpoint: str,
        on_status_change: Callable[[dict[str, Any]], None],
        credentials: dict[str, str],
    ) -> None:
        """``credentials``: the ``AWS_*`` keys the runner signs its invocations with (the
        runtime's throwaway ones: the front door checks no signature)."""
        self._lambda_endpoint = lambda_endpoint
        self._credentials = credentials
        self._on_status_change = on_status_change
        self._runner: WebRunner | None = None
        self._port = 0
        self._executions: dict[str, _Execution] = {}  # by name
        self._running: dict[str, _Execution] = {}  # by ARN
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.ended: list[tuple[str, str]] = []  # (execution name, final status), for tests and benchmarks

    def start_service(self) -> None:
        with socket.socket() as probe:  # the runner binds the port itself
            probe.bind(("127.0.0.1", 0))
            self._port = probe.getsockname()[1]
        logging.getLogger("aws_durable_execution_sdk_python_testing").setLevel(logging.WARNING)  # one line per call
        config = WebRunnerConfig(
            web_service=WebServiceConfig(host="127.0.0.1", port=self._port, log_level=logging.WARNING),
            lambda_endpoint=self._lambda_endpoint,
            local_runner_endpoint=f"http://127.0.0.1:{self._port}",
            local_runner_region=REGION,
        )
        self._runner = WebRunner(config)
        # The runner's Lambda client takes its credentials from the environment when it is
        # created; `make run` has none of its own (and needs none).
        saved = {name: os.environ.get(name) for name in self._credentials}
        os.environ.update(self._credentials)
        try:
            self._runner.start()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        threading.Thread(target=self._runner.serve_forever, name="durable-service", daemon=True).start()
        threading.Thread(target=self._watch, name="durable-watch", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            self._runner.stop()

    def start(self, spec: FunctionSpec, qualifier: str, name: str | None, payload: bytes) -> str:
        """Start (or find) the execution ``name`` of ``spec`` at ``qualifier``; its ARN."""
        assert spec.durable is not None
        name = name or str(uuid.uuid4())
        with self._lock:
            existing = self._executions.get(name)
            if existing is not None:
                if existing.payload != payload:
                    raise AlreadyStarted(f"Durable execution with name {name} already exists")
                return existing.arn
            timeout, retention = spec.durable
            body = {
                "AccountId": ACCOUNT_ID,
                "FunctionName": spec.name,
                "FunctionQualifier": qualifier,
                "ExecutionName": name,
                "ExecutionTimeoutSeconds": timeout,
                "ExecutionRetentionPeriodDays": retention,
                "Input": payload.decode(),
            }
            status, _, answer = self._call("POST", "/start-durable-execution", json.dumps(body).encode(), {})
            if status not in (200, 201):
                raise RuntimeError(f"the local durable runner refused the execution: {status} {answer[:300]!r}")
            arn = str(json.loads(answer)["ExecutionArn"])
            started = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            execution = _Execution(arn, name, payload, f"{spec.arn}:{LOCAL_VERSION}", started)
            self._executions[name] = execution
            self._running[arn] = execution
        log.info("%s: durable execution %s started", spec.name, name)
        return arn

    def handle(self, request: HttpRequest) -> HttpResponse:
        """One call of the durable execution API, answered by the runner."""
        headers = {key: value for key, value in request.headers if key.lower() in ("content-type", "x-amz-date")}
        status, response_headers, body = self._call(request.method, request.target, request.body or b"", headers)
        kept = [(k, v) for k, v in response_headers if k.lower() in ("content-type", "x-amzn-errortype")]
        return HttpResponse(status, kept, body)

    def _call(
        self, method: str, target: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self._port, timeout=60)
        try:
            connection.request(method, target, body=body, headers={**headers, "Content-Length": str(len(body))})
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    def _watch(self) -> None:
        """Send each execution's end as Lambda's EventBridge event."""
        while not self._stopping.wait(WATCH_INTERVAL_SECONDS):
            with self._lock:
                running = list(self._running.values())
            for execution in running:
                try:
                    status, _, body = self._call(
                        "GET", f"{API_PREFIX}durable-executions/{quote(execution.arn, safe='')}", b"", {}
                    )
                except OSError:
                    continue
                state = json.loads(body).get("Status") if status == 200 else None
                if state not in TERMINAL:
                    continue
                with self._lock:
                    self._running.pop(execution.arn, None)
                log.info("durable execution %s ended %s", execution.name, state)
                self.ended.append((execution.name, str(state)))
                self._on_status_change(status_change_event(execution, str(state)))


def status_change_event(execution: _Execution, status: str) -> dict[str, Any]:
    """Lambda's EventBridge event for an execution's new status (Lambda Developer Guide,
    "Monitoring durable functions")."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    execution_id = execution.arn.rsplit("/", 1)[-1]
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Durable Execution Status Change",
        "source": "aws.lambda",
        "account": ACCOUNT_ID,
        "time": now[:19] + "Z",
        "region": REGION,
        "resources": [],
        "detail": {
            # AWS's shape (<function>:<version>/durable-execution/<name>/<id>), for the rules;
            # the local runner's own ARNs are bare ids.
            "durableExecutionArn": f"{execution.function_arn}/durable-execution/{execution.name}/{execution_id}",
            "durableExecutionName": execution.name,
            "functionArn": execution.function_arn,
            "status": status,
            "startTimestamp": execution.started,
            "endTimestamp": now,
        },
    }
