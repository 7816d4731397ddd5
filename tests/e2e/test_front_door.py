"""The local runtime's front door under hostile HTTP (issue #16): every request gets an
answer as API Gateway would give it (400, 411, 413, a 4XX from the function), or, for a
client that stops sending, a closed connection after a bounded wait; never a dropped
connection without an answer, never a 5XX, never a smuggled request. (A client trickling
a byte per read timeout still holds its own thread: loopback only, not guarded.)"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import local.server
from jobs_cli.client import JobsClient
from local.server import MAX_PAYLOAD_BYTES, LocalRuntime
from tests.support import TEST_TASKS

pytestmark = pytest.mark.e2e

TIMEOUT = 2  # the front door's read timeout in these tests (30 s by default)
SIGNED = "AWS4-HMAC-SHA256 Credential=FRONTDOOR/20260101/us-east-1/execute-api/aws4_request, Signature=0"


@pytest.fixture(scope="module")
def door(cdk_out: Path) -> Iterator[LocalRuntime]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(local.server, "SOCKET_TIMEOUT_SECONDS", TIMEOUT)
        runtime = LocalRuntime(cdk_out, port=0, preload=TEST_TASKS).start()
    yield runtime
    runtime.stop()


def exchange(runtime: LocalRuntime, raw: bytes, wait: float = 10) -> tuple[int | None, bytes]:
    """Send ``raw`` as is; the status and body of the answer (None: closed without one)."""
    with socket.create_connection(("127.0.0.1", runtime.port), timeout=wait) as connection:
        connection.sendall(raw)
        received = b""
        try:
            while chunk := connection.recv(65536):
                received += chunk
                head, _, body = received.partition(b"\r\n\r\n")
                lengths = [line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
                if lengths and len(body) >= int(lengths[0].split(b":")[1]):
                    break
        except TimeoutError:
            pass
    if not received:
        return None, b""
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def request(path: str, body: bytes = b"", headers: dict[str, str] | None = None, method: str = "POST") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", f"Authorization: {SIGNED}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if headers is None or "Content-Length" not in headers:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body  # the server reads them as Latin-1


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize("length", ["abc", "-5", "1e3", "0x10", "\u0661\u0660", "9" * 40])
def test_a_content_length_that_is_not_a_number_is_a_400(door: LocalRuntime, length: str) -> None:
    status, body = exchange(door, request("/v1/jobs", b"{}", {**JSON, "Content-Length": length}))
    assert status == 400 and json.loads(body) == {"message": "Bad Request"}


def test_a_body_larger_than_api_gateways_limit_is_refused_unread(door: LocalRuntime) -> None:
    started = time.monotonic()
    status, body = exchange(door, request("/v1/jobs", b"", {**JSON, "Content-Length": str(MAX_PAYLOAD_BYTES + 1)}))
    assert status == 413 and json.loads(body) == {"message": "Request Too Long"}
    assert time.monotonic() - started < TIMEOUT  # answered at once, nothing waited for


def test_a_client_that_sends_less_than_it_announced_is_dropped_after_the_timeout(door: LocalRuntime) -> None:
    started = time.monotonic()
    status, _ = exchange(door, request("/v1/jobs", b"{", {**JSON, "Content-Length": "100"}), wait=TIMEOUT * 5)
    assert status is None  # the body never came: nothing to answer
    assert TIMEOUT <= time.monotonic() - started < TIMEOUT * 4


def test_two_different_content_lengths_are_a_400_and_nothing_is_smuggled(door: LocalRuntime) -> None:
    smuggled = b"GET /v1/jobs HTTP/1.1\r\nHost: x\r\n\r\n"
    raw = request("/v1/jobs", smuggled, {**JSON, "Content-Length": "0"}).replace(
        b"Content-Length: 0\r\n", f"Content-Length: 0\r\nContent-Length: {len(smuggled)}\r\n".encode()
    )
    status, body = exchange(door, raw)
    assert status == 400 and json.loads(body) == {"message": "Bad Request"}


def test_a_chunked_body_is_refused_with_411_and_the_connection_closed(door: LocalRuntime) -> None:
    raw = b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    status, body = exchange(door, raw)
    assert status == 411 and json.loads(body) == {"message": "Length Required"}


def test_a_head_answer_carries_no_body(door: LocalRuntime) -> None:
    raw = b"HEAD /v1/jobs HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", door.port), timeout=10) as connection:
        connection.sendall(raw)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    first, _, rest = received.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 ")
    assert rest.startswith(b"HTTP/1.1 ")  # the next answer follows at once: no body in between


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "get", "BREW"])
def test_any_method_is_answered_by_the_api_in_json(door: LocalRuntime, method: str) -> None:
    # API Gateway answers a method no route has with its 403 JSON, never an HTML 501 page.
    status, body = exchange(door, request("/v1/jobs", b"", method=method, headers={"Connection": "close"}))
    assert status == 403 and json.loads(body) == {"message": "Missing Authentication Token"}, body


def test_a_protocol_version_it_does_not_speak_gets_a_json_answer_with_a_status_line(door: LocalRuntime) -> None:
    status, body = exchange(door, b"GET /v1/jobs HTTP/2.0\r\nHost: x\r\n\r\n")
    assert status == 505 and "message" in json.loads(body)


def test_a_stray_blank_line_before_a_request_costs_nothing(door: LocalRuntime) -> None:
    # RFC 9112, 2.2: empty lines before a request line are ignored, as after a body's CRLF.
    raw = b"\r\n" + request("/v1/nothing", b"", method="GET", headers={"Connection": "close"})
    status, body = exchange(door, raw)
    assert status == 403 and json.loads(body) == {"message": "Missing Authentication Token"}


def test_no_answer_names_the_python_version(door: LocalRuntime) -> None:
    with socket.create_connection(("127.0.0.1", door.port), timeout=10) as connection:
        connection.sendall(request("/v1/nothing", b"", method="GET", headers={"Connection": "close"}))
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head = received.partition(b"\r\n\r\n")[0].lower()
    assert b"\r\nserver:" not in head and b"python" not in head


def test_a_burst_of_connections_gets_an_answer_each_never_a_reset(door: LocalRuntime) -> None:
    # 200 clients connect at once before any is served: the listen backlog holds them all
    # (Python's default of 5 reset most of them). Each gets an HTTP answer.
    clients = [socket.create_connection(("127.0.0.1", door.port), timeout=30) for _ in range(200)]
    try:
        for client in clients:
            client.sendall(request("/v1/nothing", b"", method="GET", headers={"Connection": "close"}))
        statuses = []
        for client in clients:
            received = b""
            while chunk := client.recv(65536):
                received += chunk
            statuses.append(int(received.split(b" ")[1]))
    finally:
        for client in clients:
            client.close()
    assert statuses == [403] * 200


@pytest.mark.parametrize("clients", [40, 200])
def test_concurrent_submits_each_get_a_202_or_a_429(door: LocalRuntime, clients: int) -> None:
    """Signed ``POST /jobs`` from ``clients`` threads released at once: an HTTP answer each
    (a reset POST retried without an Idempotency-Key could create its job twice)."""
    client = JobsClient(door.api_url, credentials=Credentials("BURST", "secret"))
    start = threading.Barrier(clients)

    def submit(_: int) -> int:
        start.wait()
        return client.submit("sleep", {"seconds": 0}).status

    with ThreadPoolExecutor(max_workers=clients) as pool:
        statuses = list(pool.map(submit, range(clients)))
    assert set(statuses) <= {202, 429} and statuses.count(202) >= 1, statuses


def test_a_broken_absolute_form_target_is_a_400(door: LocalRuntime) -> None:
    status, body = exchange(door, request("http://[/v1/jobs", b"", method="GET"))
    assert status == 400, body


@pytest.mark.parametrize(
    "body",
    [b"[" * 5000 + b"]" * 5000, b'{"task": "sleep", "input": {"seconds": NaN}}', b'{"task": "\xff"}'],
)
def test_bodies_the_validator_cannot_take_are_a_400(door: LocalRuntime, body: bytes) -> None:
    status, answer = exchange(door, request("/v1/jobs", body, JSON))
    assert status == 400, answer
    assert "message" in json.loads(answer)


PATHS = st.sampled_from(["/v1/jobs", "/v1/jobs/", "/v1/jobs/x", "/v1/jobs/%ff", "/v1/", "/v2/jobs", "/v1/jobs?limit=²"])
HEADER_VALUES = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=80)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(["GET", "POST", "DELETE", "PUT", "PATCH"]),
    path=PATHS,
    body=st.binary(max_size=3000) | st.text(max_size=300).map(str.encode),
    extra=st.dictionaries(
        st.sampled_from(["Content-Type", "Idempotency-Key", "X-Anything"]), HEADER_VALUES, max_size=3
    ),
)
def test_any_request_gets_an_answer_and_never_a_5xx(
    door: LocalRuntime, method: str, path: str, body: bytes, extra: dict[str, str]
) -> None:
    status, answer = exchange(door, request(path, body, extra, method=method))
    assert status is not None, "dropped without an answer"
    assert status < 500 or status == 503, (status, answer)
    json.loads(answer)  # every answer is JSON
