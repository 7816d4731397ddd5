"""Test-wide environment: fake AWS credentials and the functions' settings.

Set before any handler or boto3 client is imported, so nothing can reach real AWS: the
handler tests run against moto, the infrastructure tests only synthesize.
"""

from __future__ import annotations

import fcntl
import hashlib
import ipaddress
import json
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TEST_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_REGION": "eu-west-1",
    "JOBS_TABLE_NAME": "jobs",
    "IDEMPOTENCY_TABLE_NAME": "idempotency",
    "WORKER_FUNCTION_NAME": "worker",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/dead-letters",
    "MAX_ATTEMPTS": "3",
    "RETRY_AFTER_SECONDS": "2",
    "MAX_REQUEST_BYTES": "4096",
    "MAX_RESULT_BYTES": "8192",
    "MAX_INLINE_RESULT_BYTES": "1024",
    "RESULTS_BUCKET_NAME": "results",
    "CONNECTIONS_TABLE_NAME": "connections",
    "WEBSOCKET_CALLBACK_URL": "https://ws123defgh.execute-api.eu-west-1.amazonaws.com/v1",
    "RESULT_URL_EXPIRY_SECONDS": "60",
    "PROGRESS_MIN_INTERVAL_MS": "0",
    "TIMEOUT_MARGIN_SECONDS": "1",
    "APP_NAME": "async-jobs",
    "POWERTOOLS_SERVICE_NAME": "async-jobs",
    "POWERTOOLS_METRICS_NAMESPACE": "AsyncJobs",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "18,19,20,21",
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
}
for name in [n for n in os.environ if n.startswith("AWS_") and n not in TEST_ENVIRONMENT]:
    del os.environ[name]  # no profile, endpoint or credential of the developer's leaks in
os.environ.update(TEST_ENVIRONMENT)

import moto  # noqa: E402,F401  (imported before any boto3 client so moto can intercept them)

from local.moto_server import reject_empty_expression_maps_as_dynamodb_does  # noqa: E402

reject_empty_expression_maps_as_dynamodb_does()  # in-process moto as strict as DynamoDB, like the server's

import tests.support.tasks  # noqa: E402,F401  the tests' own tasks replace the app's (its examples may be deleted)

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}


def _is_loopback(host: Any) -> bool:
    if not isinstance(host, str):
        return False
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def no_network_but_loopback(request: pytest.FixtureRequest) -> Iterator[None]:
    """Any attempt to reach a non-loopback address fails the test at once.

    Only tests marked ``deployed`` (run against a real stack, and skipped unless
    ASYNC_JOBS_API_URL is set) may leave the machine.
    """
    if request.node.get_closest_marker("deployed"):
        yield
        return
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            raise RuntimeError(f"test tried to reach {address!r}: only loopback is allowed")
        return real_connect(self, address)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _is_loopback(host):
            raise RuntimeError(f"test tried to resolve {host!r}: only loopback is allowed")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = guarded_connect  # type: ignore[method-assign,assignment]
    socket.getaddrinfo = guarded_getaddrinfo
    try:
        yield
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]
        socket.getaddrinfo = real_getaddrinfo


# Settings for quick local runs (handler and e2e tests): short worker timeout, fast
# progress, room for 100 jobs at once.
LOCAL_TEST_CONTEXT = {
    "worker_timeout_seconds": 4,
    "progress_min_interval_ms": 100,
    "api_throttle_rate_limit": 1000,
    "api_throttle_burst_limit": 1000,
    "retry_after_seconds": 1,
}

# Where the emulator's own latency, not the behaviour under test, ate a 4 s worker timeout
# on two busy cores, the tests give it 8 s. Step Functions locally is the emulator's heaviest
# part: every execution starts at once (no queue in front of them) and moto runs each one's
# interpreter in the process that also serves DynamoDB; at 4 s, 100 concurrent jobs failed
# their process steps' budget (a clean run of `make test`, and every run beside two busy
# loops). With sqs one of 100 concurrent jobs timed out once and was redelivered (attempts 2,
# in a clean run). At 8 s neither happened. The lambda and durable runtimes kept 4 s in every
# run, beside two busy loops too (the fault runs take it on every transport:
# tests/e2e/test_faults.py).
HEADROOM_WORKER_TIMEOUT_SECONDS = "8"
EMULATOR_HEADROOM = {"stepfunctions", "sqs"}  # the transports that take it in every test


_SYNTHESIZED: dict[tuple[tuple[str, str], ...], Path] = {}


def _shared_folder(out: Path) -> Path:
    """Where every process of this test run keeps the variants it synthesized: beside the
    run's worker folders (pytest-xdist names each worker's temporary folder after it:
    ``popen-gw0``)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    for folder in out.resolve().parents:
        if worker and folder.name.rpartition("-")[2] == worker:
            return folder.parent / "synthesized"
    return out.parent / "synthesized"


def synthesize_app(out: Path, **settings: str) -> Path:
    """The app synthesized with the local test settings and ``settings`` (a variant).

    Once per variant and test run: every call with the same settings, from any pytest-xdist
    worker, returns the folder the first call synthesized (beside ``out``, read-only for the
    local runtime). A synthesis costs a Python and a Node.js process several seconds of CPU."""
    from local.synth import ROOT, synthesize

    headroom = (
        {"worker_timeout_seconds": HEADROOM_WORKER_TIMEOUT_SECONDS}
        if settings.get("dispatch") in EMULATOR_HEADROOM
        else {}
    )
    context = {**LOCAL_TEST_CONTEXT, **headroom, **settings}
    key = tuple(sorted((name, str(value)) for name, value in context.items()))
    if key in _SYNTHESIZED and _SYNTHESIZED[key].is_dir():
        return _SYNTHESIZED[key]
    shared = _shared_folder(out)
    shared.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]
    folder, done = shared / name, shared / f"{name}.done"
    with (shared / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worker synthesizing it: wait for its folder
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            synthesize(ROOT / "app.py", folder, context)
            done.touch()
    _SYNTHESIZED[key] = folder
    return folder


# make test runs the end-to-end tests on two pytest-xdist workers (--dist loadgroup) in
# groups, each whole on one worker so its local runtimes start once: a file, or every test on
# the shared per-transport ``runtime`` (tests/e2e/conftest.py). The longest groups go first,
# the fault runs to one worker and the fork's suite to the other (each keeps its cores busy
# for minutes; the headroom of the fault runs' timeouts was measured beside two busy loops),
# and the other groups fill in behind them on whichever worker is free
# (--no-loadscope-reorder keeps this order).
PER_TRANSPORT_RUNTIME = "per-transport-runtime"
LONGEST_GROUPS_FIRST = ("test_faults.py", "test_fork.py", PER_TRANSPORT_RUNTIME)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups (it names each test after its group)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    first = {name: position for position, name in enumerate(LONGEST_GROUPS_FIRST)}
    rank: dict[str, int] = {}
    for item in items:
        if item.get_closest_marker("e2e") is None:
            continue
        on_runtime = "runtime" in getattr(item, "fixturenames", ())
        item.add_marker(pytest.mark.xdist_group(PER_TRANSPORT_RUNTIME if on_runtime else str(item.path)))
        name = PER_TRANSPORT_RUNTIME if on_runtime else item.path.name
        rank[item.nodeid] = first.get(name, len(first))
    # A stable sort: the tests keep their order within a group (by transport, as pytest put them).
    items.sort(key=lambda item: rank.get(item.nodeid, len(first)))


@pytest.fixture(scope="session")
def cdk_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The app synthesized once per test session: the one description of tables, functions, routes."""
    return synthesize_app(tmp_path_factory.mktemp("cdk.out"))
