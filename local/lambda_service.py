"""Lambda, locally: synchronous and asynchronous invocation with Lambda's semantics.

* Concurrency per function is bounded (reserved concurrency from the template, or a
  local default), each invocation runs in a sandbox process (``sandbox.py``).
* Asynchronous (``Event``) invocations are queued and answered 202 at once; a failed
  attempt (error, crash or timeout) is retried with backoff up to the event-invoke
  config's retries, the same request id on every attempt; an event older than the
  maximum event age is dropped; either way the invocation record goes to the on-failure
  destination (a function, invoked asynchronously, or a queue) in AWS's shape.
* The Lambda ``Invoke`` HTTP API is served too, so ``boto3.client("lambda").invoke`` in
  a handler reaches this service through ``AWS_ENDPOINT_URL_LAMBDA``.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local.faults import FaultPlan
from local.sandbox import Invocation, InvocationResult, Sandbox, error_document
from local.template import FunctionSpec

log = logging.getLogger("local.lambda")

DEFAULT_CONCURRENCY = 10


class FunctionNotFound(KeyError):
    pass


class FunctionRuntime:
    """The warm sandboxes of one function and the limit on how many run at once."""

    def __init__(
        self,
        spec: FunctionSpec,
        environment: dict[str, str],
        faults: FaultPlan | None = None,
        preload: tuple[str, ...] = (),
    ) -> None:
        self.spec = spec
        self.environment = environment
        self._preload = preload
        self._faults = faults if faults is not None and faults.applies_to(spec.handler) else None
        self.concurrency = spec.reserved_concurrency or DEFAULT_CONCURRENCY
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._idle: list[Sandbox] = []
        self._all: list[Sandbox] = []
        self._busy: set[Sandbox] = set()
        self._lock = threading.Lock()

    def invoke(self, payload: Any, request_id: str, slot_timeout: float | None = None) -> InvocationResult | None:
        """Run one invocation; None when no concurrency slot came free within ``slot_timeout``."""
        if not self._slots.acquire(timeout=slot_timeout):
            return None
        try:
            sandbox = self._take_sandbox()
            with self._lock:
                self._busy.add(sandbox)
            injected = self._inject_fault(sandbox)
            try:
                result = sandbox.invoke(Invocation(request_id, payload, self.spec.timeout_seconds))
            finally:
                if injected is not None:
                    injected.cancel()  # a fault meant for this invocation never hits a later one
            with self._lock:
                self._busy.discard(sandbox)
                if sandbox.alive:
                    self._idle.append(sandbox)
                else:
                    self._all.remove(sandbox)
        finally:
            self._slots.release()
        status = "OK" if result.ok else ("TIMEOUT" if result.timed_out else "ERROR")
        init = f" (init {result.init_ms:.0f} ms)" if result.init_ms is not None else ""
        log.info("%-36s %s %8.1f ms%s %s", self.spec.name, request_id, result.duration_ms, init, status)
        return result

    def _inject_fault(self, sandbox: Sandbox) -> threading.Timer | None:
        """Crash or freeze the sandbox a moment into the invocation, if the fault plan says so."""
        if self._faults is None:
            return None
        fault, delay = self._faults.pick_invocation_fault()
        if fault is None:
            return None
        timer = threading.Timer(delay, sandbox.signal_kill if fault == "crash" else sandbox.signal_stop)
        timer.daemon = True
        timer.start()
        return timer

    def _take_sandbox(self) -> Sandbox:
        with self._lock:
            while self._idle:
                sandbox = self._idle.pop()
                if sandbox.alive:
                    return sandbox
                self._all.remove(sandbox)  # died while idle: never hand out a dead environment
        function = {
            "name": self.spec.name,
            "arn": self.spec.arn,
            "memory_mb": self.spec.memory_mb,
            "preload": self._preload,
        }
        sandbox = Sandbox(self.spec.code_dir, self.spec.handler, self.environment, function)
        with self._lock:
            self._all.append(sandbox)
        return sandbox

    def kill_busy_sandboxes(self) -> int:
        """Kill every sandbox that is running an invocation, as a crash would (for tests)."""
        with self._lock:  # under the lock, so none of them can finish and be reused meanwhile
            busy = list(self._busy)
            for sandbox in busy:
                sandbox.signal_kill()
        return len(busy)

    def stop(self) -> None:
        with self._lock:
            sandboxes, self._all, self._idle = list(self._all), [], []
        for sandbox in sandboxes:
            sandbox.stop()


@dataclass(order=True)
class _Scheduled:
    due: float
    sequence: int
    event: AsyncEvent = field(compare=False)


@dataclass
class AsyncEvent:
    function: str
    payload: Any
    qualifier: str = "$LATEST"  # which event-invoke config applies (an alias's, when invoked through one)
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    received: float = field(default_factory=time.time)
    attempts: int = 0


class LambdaService:
    """All functions of the app, invoked synchronously or through the async queue."""

    def __init__(
        self,
        functions: dict[str, FunctionRuntime],
        send_to_queue: Callable[[str, str], None],
        retry_base_delay: float = 1.0,
    ) -> None:
        self.functions = functions  # by logical id
        self._logical_ids = {runtime.spec.name: logical_id for logical_id, runtime in functions.items()}
        self._send_to_queue = send_to_queue  # (queue logical id, message body)
        self._retry_base_delay = retry_base_delay
        self._schedule: list[_Scheduled] = []
        self._sequence = itertools.count()
        self._wakeup = threading.Condition()
        self._stopping = False
        self._in_flight = 0
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name="lambda-async", daemon=True)
        self._dispatcher.start()
        self.dead_lettered: list[dict[str, Any]] = []
        # Events Lambda gave up on (retries used up, or too old), by function: for tests and benchmarks.
        self.given_up: list[tuple[str, AsyncEvent, str]] = []

    def runtime(self, name_or_arn: str) -> FunctionRuntime:
        """The function a logical id, a function name or an ARN (qualified or not) names."""
        return self._target(name_or_arn)[0]

    def _target(self, name_or_arn: str) -> tuple[FunctionRuntime, str]:
        """(function, qualifier): ``name:alias`` and qualified ARNs name one of the function's
        aliases; an alias it does not have is not found, as in Lambda."""
        name, _, qualifier = name_or_arn.rsplit(":function:", maxsplit=1)[-1].partition(":")
        logical_id = self._logical_ids.get(name, name)
        if logical_id not in self.functions:
            raise FunctionNotFound(name_or_arn)
        runtime = self.functions[logical_id]
        qualifier = qualifier or "$LATEST"
        if qualifier != "$LATEST" and qualifier not in runtime.spec.aliases:
            raise FunctionNotFound(name_or_arn)
        return runtime, qualifier

    def invoke(self, name: str, payload: Any, slot_timeout: float | None = None) -> InvocationResult | None:
        return self.runtime(name).invoke(payload, str(uuid.uuid4()), slot_timeout)

    def invoke_async(self, name: str, payload: Any) -> str:
        runtime, qualifier = self._target(name)
        event = AsyncEvent(runtime.spec.logical_id, payload, qualifier)
        self._enqueue(event, time.time())
        return event.request_id

    @property
    def idle(self) -> bool:
        """True when no asynchronous event is queued or running."""
        with self._wakeup:
            return not self._schedule and self._in_flight == 0

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.idle:
                return True
            time.sleep(0.05)
        return self.idle

    def stop(self) -> None:
        with self._wakeup:
            self._stopping = True
            self._wakeup.notify_all()
        for runtime in self.functions.values():
            runtime.stop()

    # -- the asynchronous queue ------------------------------------------------------------

    def _enqueue(self, event: AsyncEvent, due: float) -> None:
        with self._wakeup:
            heapq.heappush(self._schedule, _Scheduled(due, next(self._sequence), event))
            self._wakeup.notify()

    def _dispatch_loop(self) -> None:
        while True:
            with self._wakeup:
                while not self._stopping and (not self._schedule or self._schedule[0].due > time.time()):
                    timeout = self._schedule[0].due - time.time() if self._schedule else None
                    self._wakeup.wait(timeout)
                if self._stopping:
                    return
                event = heapq.heappop(self._schedule).event
                self._in_flight += 1
            threading.Thread(target=self._run, args=(event,), name=f"async-{event.function}", daemon=True).start()

    def _run(self, event: AsyncEvent) -> None:
        try:
            runtime = self.functions[event.function]
            config = runtime.spec.async_config(event.qualifier)
            if time.time() - event.received > config.max_event_age_seconds:
                self._fail(event, "EventAgeExceeded", None)
                return
            try:
                result = runtime.invoke(event.payload, event.request_id)  # waits for a free slot
            except Exception as error:  # a fault of this runtime must not lose the event: count it as a failed attempt
                log.exception("%s %s: invocation failed in the runtime", event.function, event.request_id)
                result = InvocationResult(False, error_document(error), 0.0)
            assert result is not None
            event.attempts += 1
            if result.ok:
                return
            if event.attempts > config.max_retry_attempts:
                self._fail(event, "RetriesExhausted", result)
                return
            delay = self._retry_base_delay * 2 ** (event.attempts - 1)
            self._enqueue(event, time.time() + delay)
        finally:
            with self._wakeup:
                self._in_flight -= 1

    def _fail(self, event: AsyncEvent, condition: str, result: InvocationResult | None) -> None:
        runtime = self.functions[event.function]
        record = invocation_record(runtime.spec, event, condition, result)
        self.given_up.append((event.function, event, condition))
        destination = runtime.spec.async_config(event.qualifier).on_failure
        log.warning("%s %s failed for good (%s)", event.function, event.request_id, condition)
        if destination is None:
            return
        if destination in self.functions:
            self.invoke_async(destination, record)
        else:
            self._send_to_queue(destination, json.dumps(record))
            self.dead_lettered.append(record)


def invocation_record(
    spec: FunctionSpec, event: AsyncEvent, condition: str, result: InvocationResult | None
) -> dict[str, Any]:
    """The record Lambda sends to an on-failure destination."""
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": event.request_id,
            "functionArn": f"{spec.arn}:{event.qualifier}",
            "condition": condition,
            "approximateInvokeCount": event.attempts,
        },
        "requestPayload": event.payload,
    }
    if result is not None:
        record["responseContext"] = {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
        record["responsePayload"] = result.payload
    return record
