"""``vpc=new`` runs locally as it deploys, minus the network (not emulated): the same
template, with the job runner's VpcConfig, serves a job to the end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.credentials import Credentials

from jobs_cli.client import JobsClient
from local.server import LocalRuntime
from local.template import find_stack
from tests.conftest import synthesize_app
from tests.e2e.test_jobs_e2e import submit, wait
from tests.support import EXISTING_VPC, TEST_TASKS

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def vpc_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize_app(tmp_path_factory.mktemp("cdk.out.vpc"), vpc="new")


@pytest.fixture(scope="module")
def vpc_runtime(vpc_out: Path) -> Iterator[LocalRuntime]:
    runtime = LocalRuntime(vpc_out, port=0, retry_base_delay=0.2, preload=TEST_TASKS).start()
    yield runtime
    runtime.stop()


def test_the_served_template_puts_the_worker_in_the_vpc(vpc_out: Path):
    resources = json.loads((vpc_out / f"{find_stack(vpc_out)}.template.json").read_text())["Resources"]
    in_vpc = [r["Properties"]["Handler"] for r in resources.values() if "VpcConfig" in r.get("Properties", {})]
    assert in_vpc == ["jobs.handlers.worker.handler"]


def test_a_job_runs_with_the_worker_in_a_vpc(vpc_runtime: LocalRuntime):
    client = JobsClient(vpc_runtime.api_url, credentials=Credentials("VPC", "secret"))
    job = wait(client, submit(client, "primes", {"limit": 1000}))
    assert (job["status"], job["result"]) == ("COMPLETED", {"limit": 1000, "prime_count": 168})


def test_a_durable_job_runs_in_an_existing_vpc_whose_worker_names_its_lambda_endpoint(
    tmp_path_factory: pytest.TempPathFactory,
):
    # Deployed, the worker reaches Lambda through AWS_ENDPOINT_URL_LAMBDA (the stack's
    # endpoint, by its own name); here the runtime's endpoints take the place of every such
    # variable, so the same template runs.
    out = synthesize_app(tmp_path_factory.mktemp("cdk.out.vpc.durable"), dispatch="durable", **EXISTING_VPC)
    runtime = LocalRuntime(out, port=0, retry_base_delay=0.2, preload=TEST_TASKS).start()
    try:
        assert runtime.lambdas is not None
        [worker] = [
            function
            for function in runtime.lambdas.functions.values()
            if function.spec.handler == "jobs.handlers.durable_worker.handler"
        ]
        assert "AWS_ENDPOINT_URL_LAMBDA" in worker.spec.environment  # the deployed value
        assert worker.environment["AWS_ENDPOINT_URL_LAMBDA"] == runtime.lambda_endpoint  # the runtime's
        client = JobsClient(runtime.api_url, credentials=Credentials("VPC", "secret"))
        job = wait(client, submit(client, "stages", {"stages": 2, "wait_seconds": 1}))
        assert (job["status"], job["result"]) == ("COMPLETED", {"stages": [1, 2]})
    finally:
        runtime.stop()
