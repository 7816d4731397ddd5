"""Cold-start options: API Gateway invokes each API function's ``live`` alias
(``api_cold_start``), the submit function or the queue invokes the worker's
(``worker_cold_start``), and the local runtime follows each alias to its version's function
and applies the alias's own event-invoke config, as Lambda does."""

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
from tests.support import TEST_TASKS

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=["lambda", "sqs"])
def snapstart_out(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize_app(
        tmp_path_factory.mktemp(f"cdk.out.snapstart.{request.param}"),
        api_cold_start="snapstart",
        worker_cold_start="snapstart",
        dispatch=request.param,
    )


@pytest.fixture(scope="module")
def snapstart_runtime(snapstart_out: Path) -> Iterator[LocalRuntime]:
    local = LocalRuntime(snapstart_out, port=0, retry_base_delay=0.2, preload=TEST_TASKS).start()
    yield local
    local.stop()


def test_every_route_reaches_its_function_through_the_alias(snapstart_out: Path):
    [stack] = [p for p in snapstart_out.glob("*.template.json")]
    resources = json.loads(stack.read_text())["Resources"]
    aliases = {i for i, r in resources.items() if r["Type"] == "AWS::Lambda::Alias"}
    app = load(snapstart_out)
    [api] = app.apis
    assert len(aliases) == 4  # submit, status, cancel and the worker
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


def test_the_worker_alias_carries_the_retries_and_the_destination(snapstart_out: Path):
    app = load(snapstart_out)
    [worker] = [f for f in app.functions.values() if f.handler.endswith("worker.handler")]
    assert worker.aliases == {"live"}
    if "queue_worker" in worker.handler:
        assert worker.async_configs == {}  # the queue's redrive policy retries instead
        assert [m.function for m in app.queue_mappings if "JobsQueue" in m.queue] == [worker.logical_id]
    else:
        assert set(worker.async_configs) == {"live"}  # none on $LATEST: nothing invokes it
        assert worker.async_config("live").on_failure is not None


def test_a_job_runs_end_to_end_through_the_aliases(snapstart_runtime: LocalRuntime):
    alice = client_for(snapstart_runtime)
    submitted = alice.submit("sleep", {"seconds": 0.2}, None)
    assert submitted.status == 202, submitted.body
    job_id = submitted.body["job_id"]
    job = Waiter(alice, out=io.StringIO(), sleep=time.sleep).wait(job_id, 60)
    assert job is not None and job["status"] == "COMPLETED"
    assert alice.cancel(job_id).status == 409  # already finished: the cancel function answered
    assert [j["job_id"] for j in alice.list_jobs().body["jobs"]] == [job_id]
