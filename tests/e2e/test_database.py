"""``database=postgres`` end to end: a task querying through ``jobs/database.py`` (the tests'
``whoami``), served by the local runtime, against a real PostgreSQL where the RDS Proxy
would be (``local/postgres.py``). The app's ``sales_report`` example is tested in-process
(``tests/local/test_database.py``), so a fork may delete it.

One connection per warm execution environment, counted on the server; a connection the
server killed is replaced by the next job; a database that stops answering fails the job
with its own error before the attempt's deadline (20 s here, no retries)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from botocore.credentials import Credentials

from jobs_cli.client import JobsClient
from local.postgres import LocalPostgres
from local.server import LocalRuntime
from tests.conftest import synthesize_app
from tests.e2e.test_jobs_e2e import submit, wait
from tests.support import TEST_TASKS

pytestmark = pytest.mark.e2e

WORKER_TIMEOUT_SECONDS = 20


@pytest.fixture(scope="module")
def database_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    out = synthesize_app(
        tmp_path_factory.mktemp("cdk.out.database"),
        database="postgres",
        worker_timeout_seconds=str(WORKER_TIMEOUT_SECONDS),
        worker_retry_attempts="0",
    )
    runtime = LocalRuntime(out, port=0, retry_base_delay=0.2, preload=TEST_TASKS).start()
    yield runtime
    runtime.stop()


@pytest.fixture(scope="module")
def client(database_runtime: LocalRuntime) -> JobsClient:
    return JobsClient(database_runtime.api_url, credentials=Credentials("DB", "secret"))


def server(runtime: LocalRuntime) -> LocalPostgres:
    assert runtime.postgres is not None
    return runtime.postgres


def test_a_task_queries_the_database_as_the_apps_user_over_tls(
    client: JobsClient, database_runtime: LocalRuntime
) -> None:
    job = wait(client, submit(client, "whoami", {}))
    assert job["status"] == "COMPLETED", job
    assert job["result"]["user"] == "jobs_admin"
    assert server(database_runtime).tls_backends()[job["result"]["backend_pid"]] in {"TLSv1.2", "TLSv1.3"}


def test_jobs_in_one_warm_environment_share_one_connection(client: JobsClient, database_runtime: LocalRuntime) -> None:
    postgres = server(database_runtime)
    wait(client, submit(client, "whoami", {}))
    before = postgres.app_connections()
    sessions_before = postgres.superuser_run("SELECT sessions FROM pg_stat_database WHERE datname = 'jobs'")
    for _ in range(5):  # one after another: the same warm environment runs each
        assert wait(client, submit(client, "whoami", {}))["status"] == "COMPLETED"
    after = postgres.app_connections()
    assert len(after) == 1 and after == before  # the same backend, so the same connection
    [(pid, application)] = after
    assert database_runtime.lambdas is not None
    [runner] = [
        f for f in database_runtime.lambdas.functions.values() if f.spec.handler == "jobs.handlers.worker.handler"
    ]
    assert application == runner.spec.name  # the connection names the function that holds it
    sessions_after = postgres.superuser_run("SELECT sessions FROM pg_stat_database WHERE datname = 'jobs'")
    assert sessions_after == sessions_before  # not one session opened by the five jobs
    assert pid > 0


def test_a_connection_the_database_killed_is_reopened_by_the_next_job(
    client: JobsClient, database_runtime: LocalRuntime
) -> None:
    postgres = server(database_runtime)
    wait(client, submit(client, "whoami", {}))
    [(pid, _)] = postgres.app_connections()
    postgres.superuser_run(f"SELECT pg_terminate_backend({pid})")
    job = wait(client, submit(client, "whoami", {}))
    assert job["status"] == "COMPLETED", job
    [(new_pid, _)] = postgres.app_connections()
    assert new_pid != pid


def test_a_database_that_does_not_answer_fails_the_job_before_the_deadline(
    client: JobsClient, database_runtime: LocalRuntime
) -> None:
    postgres = server(database_runtime)
    wait(client, submit(client, "whoami", {}))  # a warm environment with an open connection
    postgres.freeze()
    try:
        started = time.monotonic()
        job = wait(client, submit(client, "whoami", {}), timeout=WORKER_TIMEOUT_SECONDS * 3)
        elapsed = time.monotonic() - started
    finally:
        postgres.thaw()
    assert job["status"] == "FAILED", job
    assert job["error"]["type"] == "TransientTaskError"
    assert "database" in job["error"]["message"]
    assert elapsed < WORKER_TIMEOUT_SECONDS  # its own error, not the attempt's timeout
    # And once it answers again, so does the app.
    assert wait(client, submit(client, "whoami", {}))["status"] == "COMPLETED"
