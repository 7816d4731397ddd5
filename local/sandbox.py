"""Lambda execution environments: one process each, reused while warm, killed on timeout.

Like Lambda, a sandbox imports the handler once (the cold start) and then serves one
invocation at a time. The handler gets a real context object whose remaining time runs
down from the function's timeout; when the timeout passes, the runtime kills the process,
as Lambda does, and the next invocation gets a fresh one.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

SPAWN = multiprocessing.get_context("spawn")
INIT_TIMEOUT_SECONDS = 30  # Lambda gives 10 s; a busy laptop importing boto3 cold needs more
TIMEOUT_GRACE_SECONDS = 0.25  # the pipe's latency, so the handler gets its full timeout


@dataclass
class Invocation:
    request_id: str
    payload: Any
    timeout_seconds: float


@dataclass
class InvocationResult:
    ok: bool
    payload: Any  # the handler's return value, or Lambda's error document
    duration_ms: float
    timed_out: bool = False
    init_ms: float | None = None


class LambdaContext:
    """What Lambda passes as ``context`` (the attributes handlers and Powertools read)."""

    def __init__(self, request_id: str, function_name: str, arn: str, memory_mb: int, deadline: float) -> None:
        self.aws_request_id = request_id
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = arn
        self.memory_limit_in_mb = memory_mb
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def error_document(error: BaseException) -> dict[str, Any]:
    """The body Lambda returns for an unhandled error."""
    return {
        "errorMessage": str(error),
        "errorType": type(error).__name__,
        "stackTrace": traceback.format_tb(error.__traceback__),
    }


def _serve(
    connection: Connection, code_dir: str, handler: str, environment: dict[str, str], function: dict[str, Any]
) -> None:
    """The sandbox process: import the handler, then run invocations until told to stop."""
    os.environ.clear()
    os.environ.update(environment)
    sys.path.insert(0, code_dir)
    # Ctrl-C in `make run` reaches the whole process group; the runtime stops its sandboxes
    # itself, so a sandbox must not die of it with a traceback (Lambda never sends SIGINT).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.chdir(code_dir)
    started = time.monotonic()
    module_name, function_name = handler.rsplit(".", 1)
    try:
        for module in function.get("preload", ()):  # before the handler, as if part of the code
            importlib.import_module(module)
        entry = getattr(importlib.import_module(module_name.replace("/", ".")), function_name)
        init_error = None
    except Exception as error:  # an init error fails every invocation, as in Lambda
        entry, init_error = None, error_document(error)
    init_ms: float | None = (time.monotonic() - started) * 1000
    connection.send(("ready", init_ms))
    while True:
        message = connection.recv()
        if message is None:
            return
        invocation: Invocation = message
        started = time.monotonic()
        if init_error is not None:
            connection.send(InvocationResult(False, init_error, 0.0, init_ms=init_ms))
            continue
        context = LambdaContext(
            invocation.request_id,
            function["name"],
            function["arn"],
            function["memory_mb"],
            time.time() + invocation.timeout_seconds,
        )
        try:
            result = entry(invocation.payload, context)
            outcome = InvocationResult(True, result, (time.monotonic() - started) * 1000, init_ms=init_ms)
        except Exception as error:
            outcome = InvocationResult(
                False, error_document(error), (time.monotonic() - started) * 1000, init_ms=init_ms
            )
        init_ms = None
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            connection.send(outcome)
        except (TypeError, ValueError) as error:  # a return value that cannot be serialized
            connection.send(InvocationResult(False, error_document(error), outcome.duration_ms))


class Sandbox:
    """One warm execution environment of a function."""

    def __init__(self, code_dir: Path, handler: str, environment: dict[str, str], function: dict[str, Any]) -> None:
        self._parent, child = SPAWN.Pipe()
        self.process = SPAWN.Process(
            target=_serve,
            args=(child, str(code_dir), handler, environment, function),
            daemon=True,
            name=f"sandbox-{function['name']}",
        )
        self.process.start()
        child.close()
        self._ready = False
        self.init_ms: float | None = None  # the init phase (handler import), as the sandbox measured it

    def wait_until_ready(self) -> bool:
        """Wait for the init phase (imports) to end; Lambda allows it 10 s of its own."""
        if not self._ready and self._parent.poll(INIT_TIMEOUT_SECONDS):
            try:
                _, self.init_ms = self._parent.recv()
                self._ready = True
            except EOFError:
                return False
        return self._ready

    def invoke(self, invocation: Invocation) -> InvocationResult:
        """Run one invocation; past its timeout the sandbox is killed and reported timed out."""
        if not self.wait_until_ready():
            # As Lambda reports them: a process that died while initialising exited; one still
            # initialising past the init limit has the invocation time out.
            died = not self.alive
            self.kill()
            if died:
                document = {"errorMessage": "Runtime exited during init", "errorType": "Runtime.ExitError"}
            else:
                document = {"errorMessage": "Init phase did not complete in time", "errorType": "Sandbox.Timedout"}
            return InvocationResult(False, document, 0.0, timed_out=not died)
        started = time.monotonic()
        try:
            self._parent.send(invocation)
            if self._parent.poll(invocation.timeout_seconds + TIMEOUT_GRACE_SECONDS):
                result: InvocationResult = self._parent.recv()
                return result
        except (EOFError, OSError):  # the process died before or during the invocation (crash, kill, OOM)
            self.kill()
            document = {"errorMessage": "Runtime exited without providing a reason", "errorType": "Runtime.ExitError"}
            return InvocationResult(False, document, (time.monotonic() - started) * 1000)
        self.kill()
        message = f"Task timed out after {invocation.timeout_seconds:.2f} seconds"
        document = {"errorMessage": message, "errorType": "Sandbox.Timedout"}
        return InvocationResult(False, document, (time.monotonic() - started) * 1000, timed_out=True)

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def signal_kill(self) -> None:
        """SIGKILL without waiting or reaping: safe from any thread. (is_alive() and join() reap
        the child, and when two threads reap at once one of them may see a dead process as alive.)"""
        self.process.kill()  # a no-op once the process has been reaped

    def signal_stop(self) -> None:
        """SIGSTOP: the process freezes mid-invocation, as a hung one would (for fault injection)."""
        if self.process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGSTOP)

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)

    def stop(self) -> None:
        with contextlib.suppress(OSError):  # BrokenPipeError included: the sandbox may be gone
            self._parent.send(None)
        self.process.join(timeout=2)
        self.kill()
