"""Tracing without an SDK: the trace follows the job through AWS, and the logs name both.

Inside Lambda (``AWS_LAMBDA_FUNCTION_NAME`` set), the runtime puts the invocation's trace
header in ``_X_AMZN_TRACE_ID``; botocore copies it onto every AWS request as
``X-Amzn-Trace-Id`` (botocore ``handlers.add_recursion_detection_header``), which is how
Lambda's active tracing links the submit request to the worker it invokes (AWS X-Ray
Developer Guide, "Tracing header"). Powertools' Logger writes the trace id as
``xray_trace_id`` on every line.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest

from jobs import clients, runner
from tests.handlers.test_worker import run_worker, submit_job

pytestmark = pytest.mark.usefixtures("aws")

ROOT = "1-67891233-abcdef012345678912345678"
TRACE_HEADER = f"Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=1"


@pytest.fixture
def in_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "AsyncJobs-dev-ApiSubmitFunction")
    monkeypatch.setenv("_X_AMZN_TRACE_ID", TRACE_HEADER)


@pytest.mark.usefixtures("in_lambda")
def test_the_worker_invocation_carries_the_submit_requests_trace_header():
    sent: list[dict[str, str | bytes]] = []

    def record(request: object, **_: object) -> None:
        sent.append(dict(request.headers))  # type: ignore[attr-defined]

    events = clients.lambda_().meta.events
    events.register_last("before-send.lambda.Invoke", record)
    try:
        submit_job("sleep", {"seconds": 0})
    finally:
        events.unregister("before-send.lambda.Invoke", record)
    assert len(sent) == 1
    header = sent[0]["X-Amzn-Trace-Id"]
    assert (header.decode() if isinstance(header, bytes) else header) == TRACE_HEADER


@pytest.fixture
def runner_at_info() -> Iterator[None]:
    """The runner's child logger at INFO too (it keeps the level the tests started with)."""
    level = runner.logger.log_level
    runner.logger.setLevel("INFO")
    yield
    runner.logger.setLevel(level)


@pytest.mark.usefixtures("in_lambda", "runner_at_info")
def test_every_worker_log_line_names_the_job_and_the_trace(info_logs: io.StringIO):
    job_id = submit_job("sleep", {"seconds": 0})
    assert run_worker(job_id)["outcome"] == "COMPLETED"
    lines = [json.loads(line) for line in info_logs.getvalue().splitlines() if line.strip()]
    worker_lines = [line for line in lines if line.get("message") == "job completed"]
    assert worker_lines, lines
    for line in worker_lines:
        assert line["job_id"] == job_id
        assert line["xray_trace_id"] == ROOT
        assert line["correlation_id"] == "req-1"  # the submit request's id, from the event
