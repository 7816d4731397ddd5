"""jobs/database.py against a real PostgreSQL (local/postgres.py): one connection reused,
replaced when the server drops it, and every wait bounded, so a database that is down,
silent or full fails the attempt with a clear, retryable error before its deadline."""

from __future__ import annotations

import os
import pwd
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from jobs import database as database_module
from jobs.database import Database, DatabaseSettings, DatabaseUnavailable, iam_token
from jobs.deadline import AttemptTimedOut, deadline
from jobs.registry import TaskFailed, TransientTaskError
from jobs.settings import Settings
from local import postgres as postgres_module
from local.postgres import LocalPostgres


@pytest.fixture(scope="module")
def server() -> Iterator[LocalPostgres]:
    postgres = LocalPostgres("jobs", "jobs_admin").start()
    yield postgres
    postgres.stop()


def settings_for(server: LocalPostgres, **changes: object) -> DatabaseSettings:
    values: dict[str, object] = {
        "host": "localhost",
        "port": server.port,
        "name": server.database,
        "user": server.user,
        "ca_file": server.ca_file,
        "connect_timeout_seconds": 5.0,
        "statement_timeout_seconds": 60.0,
    }
    values.update(changes)
    return DatabaseSettings(**values)  # type: ignore[arg-type]


def no_password(_settings: DatabaseSettings) -> str:
    return "not-checked-locally"


@pytest.fixture
def db(server: LocalPostgres) -> Iterator[Database]:
    database = Database(settings_for(server), password=no_password)
    yield database
    database.close()


def test_jobs_in_a_row_share_one_connection(db: Database, server: LocalPostgres) -> None:
    pids = {db.run("SELECT pg_backend_pid()")[0][0] for _ in range(5)}
    assert len(pids) == 1
    assert db.connections_opened == 1
    assert [pid for pid, _ in server.app_connections()] == list(pids)


def test_the_connection_is_tls_verified_against_the_configured_ca(db: Database, server: LocalPostgres) -> None:
    [[backend]] = db.run("SELECT pg_backend_pid()")
    assert server.tls_backends()[backend] in {"TLSv1.2", "TLSv1.3"}  # the proxy's front saw TLS


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another user")
def test_under_root_binaries_out_of_the_server_users_reach_are_copied_where_it_can_run_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A virtualenv under root's private home: ``nobody`` cannot run PostgreSQL from there."""
    monkeypatch.setattr(postgres_module, "_others_can_reach", lambda _path: False)
    binaries = postgres_module.server_binaries(pwd.getpwnam(postgres_module.ROOT_RUNS_SERVER_AS))
    assert binaries != postgres_module.server_package() / "pginstall" / "bin"
    assert binaries.is_relative_to(tempfile.gettempdir()) and (binaries / "postgres").exists()
    copied = LocalPostgres("jobs", "jobs_admin").start()  # from the copy, as nobody
    try:
        assert copied._process is not None
        command = subprocess.run(  # noqa: S603  our own pid
            ["ps", "-ww", "-o", "user=,command=", "-p", str(copied._process.pid)],  # noqa: S607
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert command[:2] == [postgres_module.ROOT_RUNS_SERVER_AS, str(binaries / "postgres")]
        assert copied.superuser_run("SELECT 1") == [[1]]
    finally:
        copied.stop()


def test_a_client_without_tls_is_refused_as_with_require_tls(server: LocalPostgres) -> None:
    import pg8000.native

    before = server.app_connections()
    with pytest.raises(pg8000.native.DatabaseError, match="requires TLS") as refused:
        pg8000.native.Connection(
            server.user, host="127.0.0.1", port=server.port, database=server.database, ssl_context=False, timeout=5
        )
    assert refused.value.args[0]["C"] == "28000"  # invalid_authorization_specification
    assert server.app_connections() == before  # it never reached the server


def test_a_certificate_that_does_not_verify_fails_the_job(server: LocalPostgres) -> None:
    # The system store does not trust the local CA: as with a proxy impostor.
    untrusting = Database(settings_for(server, ca_file=None), password=no_password)
    with pytest.raises(TaskFailed, match="TLS to the database"):
        untrusting.run("SELECT 1")


def test_a_connection_the_server_killed_is_replaced_on_next_use(db: Database, server: LocalPostgres) -> None:
    first = db.run("SELECT pg_backend_pid()")[0][0]
    server.superuser_run(f"SELECT pg_terminate_backend({first})")
    time.sleep(0.2)
    second = db.run("SELECT pg_backend_pid()")[0][0]
    assert second != first
    assert db.connections_opened == 2


def test_a_silent_server_fails_the_statement_before_the_attempts_deadline(db: Database, server: LocalPostgres) -> None:
    db.run("SELECT 1")
    started = time.monotonic()
    server.freeze()
    try:
        with pytest.raises(DatabaseUnavailable, match="no answer in time"), deadline(4):
            db.run("SELECT 1")
    finally:
        server.thaw()
    elapsed = time.monotonic() - started
    assert 2 < elapsed < 4  # bounded by the attempt (4 s, less the guard), not the 60 s statement timeout
    assert db.run("SELECT 1") == [[1]]  # and a fresh connection works once the server answers again


def test_a_server_that_accepts_but_never_answers_fails_the_connect_in_time(server: LocalPostgres) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        settings = settings_for(server, port=silent.getsockname()[1], connect_timeout_seconds=1.0)
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable, match=r"cannot connect .* no answer in time"):
            Database(settings, password=no_password).run("SELECT 1")
    assert time.monotonic() - started < 3


def test_a_server_that_cuts_the_tls_handshake_is_a_retryable_failure(server: LocalPostgres) -> None:
    """An overloaded proxy dropping the connection mid-handshake: worth another attempt."""
    with socket.socket() as cutting:
        cutting.bind(("127.0.0.1", 0))
        cutting.listen()

        def accept_then_cut() -> None:
            connection, _ = cutting.accept()
            connection.recv(8)  # the SSLRequest
            connection.sendall(b"S")  # "go ahead with TLS"...
            connection.close()  # ...and gone

        threading.Thread(target=accept_then_cut, daemon=True).start()
        settings = settings_for(server, port=cutting.getsockname()[1])
        with pytest.raises(DatabaseUnavailable, match="cannot connect"):
            Database(settings, password=no_password).run("SELECT 1")


def test_nothing_listening_is_a_retryable_failure(server: LocalPostgres) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with pytest.raises(
        DatabaseUnavailable, match=f"cannot connect to the database at localhost:{closed_port}"
    ) as error:
        Database(settings_for(server, port=closed_port), password=no_password).run("SELECT 1")
    assert isinstance(error.value, TransientTaskError)


def test_no_time_left_fails_without_waiting(db: Database) -> None:
    with pytest.raises(DatabaseUnavailable, match="no time left"), deadline(0.5):
        db.run("SELECT 1")


def test_a_statement_slower_than_the_attempt_fails_before_the_deadline_and_drops_the_connection(
    db: Database,
) -> None:
    db.run("SELECT 1")
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable, match="no answer in time"), deadline(2.5):
        db.run("SELECT pg_sleep(10)")
    assert time.monotonic() - started < 2.5  # its own error, not the attempt's generic timeout
    assert db._connection is None
    assert db.run("SELECT 1") == [[1]]


def test_the_deadline_interrupts_a_task_between_statements_and_the_connection_survives(db: Database) -> None:
    db.run("SELECT 1")
    with pytest.raises(AttemptTimedOut), deadline(0.3):
        time.sleep(1)
    assert db.run("SELECT 1") == [[1]]
    assert db.connections_opened == 1


def test_a_full_server_is_a_retryable_failure_naming_the_cause() -> None:
    # 3 slots kept for superusers, 2 for the app: the third app connection is refused.
    small = LocalPostgres("jobs", "jobs_admin", max_connections=5).start()
    holders = [Database(settings_for(small), password=no_password) for _ in range(3)]
    try:
        holders[0].run("SELECT 1")
        holders[1].run("SELECT 1")
        with pytest.raises(DatabaseUnavailable, match="SQLSTATE 53300"):
            holders[2].run("SELECT 1")
    finally:
        for holder in holders:
            holder.close()
        small.stop()


def test_the_cluster_parameters_apply_locally_except_auroras_own() -> None:
    local = LocalPostgres("jobs", "jobs_admin", parameters={"rds.force_ssl": "1", "statement_timeout": "1500"})
    assert local.parameters == {"statement_timeout": "1500"}
    local.start()
    db = Database(settings_for(local), password=no_password)
    try:
        with pytest.raises(Exception, match="statement timeout"):
            db.run("SELECT pg_sleep(5)")
    finally:
        db.close()
        local.stop()


def test_a_failed_statement_rolls_the_transaction_back_and_keeps_the_connection(db: Database) -> None:
    db.run("CREATE TABLE IF NOT EXISTS rollback_probe (n integer)")
    with pytest.raises(Exception, match="division by zero"), db.transaction():
        db.run("INSERT INTO rollback_probe VALUES (1)")
        db.run("SELECT 1 / 0")
    assert db.run("SELECT count(*) FROM rollback_probe") == [[0]]
    assert db.connections_opened == 1


def test_the_password_is_an_iam_token_signed_for_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """RDS's documented token: a SigV4-presigned ``connect`` request for the host, port and
    user (Amazon RDS User Guide, "Connecting to your DB instance using IAM authentication")."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setattr("jobs.clients._clients", {})
    settings = DatabaseSettings("proxy.example", 5432, "jobs", "jobs_admin", None, 5, 60)
    token = iam_token(settings)
    parts = urlsplit("//" + token)
    query = parse_qs(parts.query)
    assert (parts.hostname, parts.port) == ("proxy.example", 5432)
    assert query["Action"] == ["connect"] and query["DBUser"] == ["jobs_admin"]
    assert query["X-Amz-Credential"][0].split("/")[2:4] == ["eu-west-1", "rds-db"]
    assert int(query["X-Amz-Expires"][0]) == 900


def test_a_deployment_without_a_database_fails_the_task_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database_module, "_database", None)
    settings = Settings.from_env({"APP_NAME": "async-jobs", "JOBS_TABLE_NAME": "jobs"})
    with pytest.raises(TaskFailed, match="no database"):
        DatabaseSettings.from_settings(settings)


def test_concurrent_first_jobs_fill_the_sample_table_once(
    server: LocalPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app's ``sales_report`` example (skipped once a fork deletes it)."""
    import jobs.tasks

    if not hasattr(jobs.tasks, "sales_report"):
        pytest.skip("the sales_report example has been deleted")
    sales_report, rows = jobs.tasks.sales_report, jobs.tasks.SAMPLE_SALES_ROWS

    class Progress:
        def report(self, percent: float, message: str | None = None) -> None:
            pass

        def step(self, name: str, function: Callable[[], Any]) -> Any:
            return function()

        def wait(self, seconds: float) -> None:
            pass

    results: list[object] = []
    databases = [Database(settings_for(server), password=no_password) for _ in range(3)]
    # Each thread its own connection, as each execution environment has: patched once, read
    # per thread (patching the module from each thread let two threads share one connection).
    per_thread = threading.local()
    monkeypatch.setattr(database_module, "database", lambda: per_thread.db)

    def run(db: Database) -> None:
        per_thread.db = db
        results.append(sales_report({}, Progress()))

    threads = [threading.Thread(target=run, args=(db,)) for db in databases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for db in databases:
        db.close()
    assert len(results) == 3
    for result in results:
        assert isinstance(result, dict)
        assert [region["region"] for region in result["regions"]] == ["east", "north", "south", "west"]
        assert sum(region["sales"] for region in result["regions"]) == rows


def test_bytes_sent_with_the_tls_request_are_refused_not_passed_on(server: LocalPostgres) -> None:
    """What PostgreSQL refuses since CVE-2021-23214: plaintext behind the SSLRequest would
    reach the server as if it had come over TLS."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
        client.sendall(struct.pack("!II", 8, 80877103) + b"plaintext smuggled past TLS")
        answer = b""
        while chunk := client.recv(4096):
            answer += chunk
    assert answer[:1] == b"E" and b"C08P01" in answer and b"unencrypted data after SSL request" in answer
