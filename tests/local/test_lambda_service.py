"""The local Lambda service: real sandboxes running a tiny handler module written by the test."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from local.lambda_service import FunctionNotFound, FunctionRuntime, LambdaService
from local.template import AsyncConfig, FunctionSpec

HANDLERS = """
import time


def fail(event, context):
    with open(event["log"], "a") as log:
        log.write(context.aws_request_id + "\\n")
    raise ValueError("nope")


def exit_base_exception(event, context):
    raise KeyboardInterrupt("not an Exception")


def sleep(event, context):
    time.sleep(event["seconds"])
    return {"slept": event["seconds"], "remaining_ms": context.get_remaining_time_in_millis()}
"""


@pytest.fixture
def code_dir(tmp_path: Path) -> Path:
    (tmp_path / "handlers.py").write_text(HANDLERS)
    return tmp_path


def service(code_dir: Path, handler: str, dead_letters: list[dict[str, Any]], **spec: Any) -> LambdaService:
    """One function; ``spec`` sets its timeout, reserved concurrency and $LATEST event-invoke config."""
    function = FunctionSpec(
        logical_id="Fn",
        name="App-Fn",
        handler=handler,
        code_dir=code_dir,
        timeout_seconds=spec.pop("timeout_seconds", 5),
        memory_mb=128,
        environment={},
        reserved_concurrency=spec.pop("reserved_concurrency", None),
        async_configs={"$LATEST": AsyncConfig(**spec)} if spec else {},
    )
    runtime = FunctionRuntime(function, {"PATH": os.environ.get("PATH", "")})
    return LambdaService({"Fn": runtime}, lambda _queue, body: dead_letters.append(json.loads(body)), 0.1)


def wait_for(condition: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_async_event_is_retried_with_one_request_id_then_dead_lettered(code_dir, tmp_path):
    dead_letters: list[dict[str, Any]] = []
    lambdas = service(code_dir, "handlers.fail", dead_letters, max_retry_attempts=1, on_failure="Dlq")
    try:
        request_id = lambdas.invoke_async(
            "arn:aws:lambda:us-east-1:123456789012:function:App-Fn", {"log": str(tmp_path / "calls")}
        )
        wait_for(lambda: dead_letters)
        [record] = dead_letters
        assert (tmp_path / "calls").read_text().split() == [request_id, request_id]  # Lambda keeps the id
        assert record["requestContext"]["condition"] == "RetriesExhausted"
        assert record["requestContext"]["approximateInvokeCount"] == 2
        assert record["requestContext"]["functionArn"].endswith(":function:App-Fn:$LATEST")
        assert record["responsePayload"]["errorType"] == "ValueError"
        assert record["requestPayload"] == {"log": str(tmp_path / "calls")}
    finally:
        lambdas.stop()


def test_event_older_than_the_maximum_age_is_dropped_to_the_destination(code_dir, tmp_path):
    dead_letters: list[dict[str, Any]] = []
    lambdas = service(
        code_dir, "handlers.fail", dead_letters, max_retry_attempts=2, max_event_age_seconds=0, on_failure="Dlq"
    )
    try:
        lambdas.invoke_async("App-Fn", {"log": str(tmp_path / "calls")})
        wait_for(lambda: dead_letters)
        assert dead_letters[0]["requestContext"]["condition"] == "EventAgeExceeded"
        assert not (tmp_path / "calls").exists()  # never ran: too old by the time it was due
    finally:
        lambdas.stop()


def test_timeout_kills_the_sandbox_and_reports_lambdas_error(code_dir):
    lambdas = service(code_dir, "handlers.sleep", [], timeout_seconds=1)
    try:
        result = lambdas.invoke("App-Fn", {"seconds": 5})
        assert result is not None and not result.ok and result.timed_out
        assert result.payload == {"errorMessage": "Task timed out after 1.00 seconds", "errorType": "Sandbox.Timedout"}
        assert result.duration_ms < 2500
        again = lambdas.invoke("App-Fn", {"seconds": 0})  # a fresh sandbox replaces the killed one
        assert again is not None and again.ok and 0 < again.payload["remaining_ms"] <= 1000
    finally:
        lambdas.stop()


def test_a_base_exception_kills_the_runtime_as_in_lambda(code_dir):
    # Lambda's Python runtime (awslambdaric bootstrap.handle_event_request) reports only
    # what derives from Exception; anything else ends the process: Runtime.ExitError.
    lambdas = service(code_dir, "handlers.exit_base_exception", [])
    try:
        result = lambdas.invoke("App-Fn", {})
        assert result is not None and not result.ok and not result.timed_out
        assert result.payload["errorType"] == "Runtime.ExitError"
    finally:
        lambdas.stop()


def test_reserved_concurrency_bounds_parallel_invocations(code_dir):
    lambdas = service(code_dir, "handlers.sleep", [], reserved_concurrency=1)
    try:
        running = threading.Thread(target=lambdas.invoke, args=("App-Fn", {"seconds": 2}))
        running.start()
        wait_for(lambda: lambdas.functions["Fn"]._busy)
        assert lambdas.invoke("App-Fn", {"seconds": 0}, slot_timeout=0) is None  # throttled: 429 to the caller
        running.join()
        assert lambdas.invoke("App-Fn", {"seconds": 0}, slot_timeout=0) is not None
    finally:
        lambdas.stop()


def test_an_environment_that_died_while_idle_is_never_reused(code_dir):
    lambdas = service(code_dir, "handlers.sleep", [])
    try:
        first = lambdas.invoke("App-Fn", {"seconds": 0})
        assert first is not None and first.ok
        [idle] = lambdas.functions["Fn"]._idle
        idle.process.kill()
        idle.process.join()
        again = lambdas.invoke("App-Fn", {"seconds": 0})
        assert again is not None and again.ok  # a fresh environment, not a broken pipe
        assert idle not in lambdas.functions["Fn"]._all
    finally:
        lambdas.stop()


def test_an_alias_has_its_own_event_invoke_config_and_latests_does_not_apply_to_it(code_dir, tmp_path):
    # Lambda applies the config of the qualifier invoked (Lambda API Reference,
    # PutFunctionEventInvokeConfig: Qualifier); without one, its defaults: 2 retries, no destination.
    dead_letters: list[dict[str, Any]] = []
    lambdas = service(code_dir, "handlers.fail", dead_letters)
    spec = lambdas.functions["Fn"].spec
    spec.aliases.add("live")
    spec.async_configs["live"] = AsyncConfig(max_retry_attempts=0, on_failure="Dlq")
    try:
        lambdas.invoke_async("App-Fn:live", {"log": str(tmp_path / "live")})
        wait_for(lambda: dead_letters)
        [record] = dead_letters
        assert record["requestContext"]["functionArn"].endswith(":function:App-Fn:live")
        assert (tmp_path / "live").read_text().split() == [record["requestContext"]["requestId"]]  # no retry
        lambdas.invoke_async("arn:aws:lambda:us-east-1:123456789012:function:App-Fn", {"log": str(tmp_path / "latest")})
        wait_for(
            lambda: len((tmp_path / "latest").read_text().split()) == 3 if (tmp_path / "latest").exists() else False
        )
        assert lambdas.wait_idle(10) and len(dead_letters) == 1  # $LATEST: Lambda's defaults, nowhere to send it
        with pytest.raises(FunctionNotFound):
            lambdas.invoke_async("App-Fn:prod", {})  # no such alias
    finally:
        lambdas.stop()
