"""End-to-end tests: the synthesized app served by the local runtime, over HTTP on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.credentials import Credentials

from jobs_cli.client import JobsClient
from local.server import LocalRuntime
from tests.conftest import synthesize_app


@pytest.fixture(scope="session", params=["lambda", "sqs"])
def dispatch(request: pytest.FixtureRequest) -> str:
    """Every test on ``runtime`` runs against both transports to the worker."""
    return str(request.param)


@pytest.fixture(scope="session")
def runtime(dispatch: str, cdk_out: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    if dispatch != "lambda":
        cdk_out = synthesize_app(tmp_path_factory.mktemp(f"cdk.out.{dispatch}"), dispatch=dispatch)
    # Scheduled rules (the reaper) every 2 s instead of every few minutes.
    local = LocalRuntime(cdk_out, port=0, retry_base_delay=0.2, schedule_interval=2).start()
    yield local
    local.stop()


def client_for(runtime: LocalRuntime, access_key: str = "ALICE") -> JobsClient:
    return JobsClient(runtime.api_url, credentials=Credentials(access_key, "secret"))


@pytest.fixture
def alice(runtime: LocalRuntime) -> JobsClient:
    return client_for(runtime, "ALICE")


@pytest.fixture
def bob(runtime: LocalRuntime) -> JobsClient:
    return client_for(runtime, "BOB")
