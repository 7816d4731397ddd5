"""End-to-end tests: the synthesized app served by the local runtime, over HTTP on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.credentials import Credentials

from jobs_cli.client import JobsClient
from local.server import LocalRuntime
from local.synth import synthesize

ROOT = Path(__file__).resolve().parents[2]

# Settings for a quick run: short worker timeout, fast progress, room for 100 jobs at once.
E2E_CONTEXT = {
    "worker_timeout_seconds": 4,
    "progress_min_interval_ms": 100,
    "api_throttle_rate_limit": 1000,
    "api_throttle_burst_limit": 1000,
    "retry_after_seconds": 1,
}


@pytest.fixture(scope="session")
def cdk_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(ROOT / "app.py", tmp_path_factory.mktemp("cdk.out"), E2E_CONTEXT)


@pytest.fixture(scope="session")
def runtime(cdk_out: Path) -> Iterator[LocalRuntime]:
    local = LocalRuntime(cdk_out, port=0, retry_base_delay=0.2).start()
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
