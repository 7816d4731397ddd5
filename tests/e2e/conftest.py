"""End-to-end tests: the synthesized app served by the local runtime, over HTTP on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.credentials import Credentials

from jobs_cli.client import JobsClient
from local.lambda_service import FunctionRuntime
from local.server import LocalRuntime
from tests.conftest import synthesize_app
from tests.support import TEST_TASKS

JOB_RUNNERS = {
    "jobs.handlers.worker.handler",
    "jobs.handlers.queue_worker.handler",
    "jobs.handlers.steps.process",
    "jobs.handlers.durable_worker.handler",
}


@pytest.fixture(scope="session", params=["lambda", "sqs", "stepfunctions", "durable"])
def dispatch(request: pytest.FixtureRequest) -> str:
    """Every test on ``runtime`` runs against each transport to the worker, unless it is
    marked :data:`ANY_TRANSPORT`."""
    return str(request.param)


# What the API does on its own (validation, identity, idempotency, listing, the CLI, a
# callback's retries) is the same whatever carries jobs to the worker: such a test runs on
# the default transport alone. What a transport changes (running, failing, timing out,
# crashing, cancelling, progress, results, the terminal write a callback follows) runs on each.
ANY_TRANSPORT = pytest.mark.parametrize("dispatch", ["lambda"], indirect=True, scope="session")


@pytest.fixture(scope="session")
def runtime(dispatch: str, cdk_out: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    if dispatch != "lambda":
        cdk_out = synthesize_app(tmp_path_factory.mktemp(f"cdk.out.{dispatch}"), dispatch=dispatch)
    # Scheduled rules (the reaper) every 2 s instead of every few minutes.
    local = LocalRuntime(cdk_out, port=0, retry_base_delay=0.2, schedule_interval=2, preload=TEST_TASKS).start()
    yield local
    local.stop()


def job_runner(runtime: LocalRuntime) -> FunctionRuntime:
    """The function that runs jobs: the worker, the queue worker, the workflow's process step
    or the durable worker."""
    assert runtime.lambdas is not None
    [runner] = [function for function in runtime.lambdas.functions.values() if function.spec.handler in JOB_RUNNERS]
    return runner


def execution_events(runtime: LocalRuntime, job_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``dispatch=stepfunctions``: the job's execution (named after the job) and its history."""
    stepfunctions = runtime.aws_client("stepfunctions")
    [machine] = runtime.state_machine_arns.values()
    execution_arn = machine.replace(":stateMachine:", ":execution:") + f":{job_id}"
    execution = stepfunctions.describe_execution(executionArn=execution_arn)
    return execution, stepfunctions.get_execution_history(executionArn=execution_arn)["events"]


def client_for(runtime: LocalRuntime, access_key: str = "ALICE") -> JobsClient:
    return JobsClient(runtime.api_url, credentials=Credentials(access_key, "secret"))


@pytest.fixture
def alice(runtime: LocalRuntime) -> JobsClient:
    return client_for(runtime, "ALICE")


@pytest.fixture
def bob(runtime: LocalRuntime) -> JobsClient:
    return client_for(runtime, "BOB")
