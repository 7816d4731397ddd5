"""``api_cold_start``: API Gateway invokes each API function's ``live`` alias, and the local
runtime follows the alias to the version's function, as Lambda does."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobs_cli.main import Waiter
from local.server import LocalRuntime
from local.template import invoked_function, load
from tests.conftest import synthesize_app
from tests.e2e.conftest import client_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def snapstart_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize_app(tmp_path_factory.mktemp("cdk.out.snapstart"), api_cold_start="snapstart")


@pytest.fixture(scope="module")
def snapstart_runtime(snapstart_out: Path) -> Iterator[LocalRuntime]:
    local = LocalRuntime(snapstart_out, port=0, retry_base_delay=0.2).start()
    yield local
    local.stop()


def test_every_route_reaches_its_function_through_the_alias(snapstart_out: Path):
    [stack] = [p for p in snapstart_out.glob("*.template.json")]
    resources = json.loads(stack.read_text())["Resources"]
    aliases = {i for i, r in resources.items() if r["Type"] == "AWS::Lambda::Alias"}
    app = load(snapstart_out)
    [api] = app.apis
    assert len(aliases) == 3
    handlers = {
        m.http_method + " " + m.resource_path: app.functions[m.function].handler for m in api.methods if m.function
    }
    assert handlers == {
        "POST /jobs": "jobs.handlers.submit.handler",
        "GET /jobs": "jobs.handlers.status.handler",
        "GET /jobs/{job_id}": "jobs.handlers.status.handler",
        "DELETE /jobs/{job_id}": "jobs.handlers.cancel.handler",
    }
    for alias in aliases:  # alias → version → function, never the alias's own name guessed
        version = resources[alias]["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
        assert invoked_function(alias, resources) == resources[version]["Properties"]["FunctionName"]["Ref"]
    assert invoked_function("NoSuchResource", resources) is None


def test_a_job_runs_end_to_end_through_the_aliases(snapstart_runtime: LocalRuntime):
    alice = client_for(snapstart_runtime)
    submitted = alice.submit("sleep", {"seconds": 0.2}, None)
    assert submitted.status == 202, submitted.body
    job_id = submitted.body["job_id"]
    job = Waiter(alice, out=io.StringIO(), sleep=time.sleep).wait(job_id, 60)
    assert job is not None and job["status"] == "COMPLETED"
    assert alice.cancel(job_id).status == 409  # already finished: the cancel function answered
    assert [j["job_id"] for j in alice.list_jobs().body["jobs"]] == [job_id]
