"""Webhook callbacks end to end: a receiver on loopback gets each finished job, signed.

The path is the deployed one: the job ends, the jobs table's stream carries the change,
the runtime plays the event source mapping (with its filter), the callbacks function
signs with the secret from (emulated) Secrets Manager and POSTs to the receiver.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from jobs.callbacks import delivery_header, signature_header, verify_signature
from jobs.naming import AppName
from local.server import LocalRuntime
from stacks.config import default_context
from tests.e2e.conftest import ANY_TRANSPORT
from tests.e2e.test_jobs_e2e import submit, wait

pytestmark = pytest.mark.e2e
# The local runtime serves cdk.json's app: its name is in the callback headers (lower-case, as received).
APP = AppName(default_context()["app_name"])
SIGNATURE_HEADER = signature_header(APP).lower()
DELIVERY_HEADER = delivery_header(APP).lower()


@dataclass
class Receiver:
    """An HTTP server on loopback that records what it is sent; answers with ``statuses``
    in turn (then 200)."""

    url: str
    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 30) -> list[tuple[dict[str, str], bytes]]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= count, timeout)
            return list(self.received)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            target = state["receiver"]
            with target.arrived:
                target.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = target.statuses.pop(0) if target.statuses else 200
                target.arrived.notify_all()
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["receiver"] = Receiver(f"http://127.0.0.1:{server.server_address[1]}/hooks/jobs?source=test")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state["receiver"]
    server.shutdown()
    server.server_close()


def signing_secret(runtime: LocalRuntime) -> bytes:
    [arn] = runtime.secret_arns.values()
    return str(runtime.aws_client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]).encode()


def wait_for_callback_outcome(alice: Any, job_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = alice.status(job_id).body
        if job["callback"]["status"] != "PENDING":
            return dict(job)
        time.sleep(0.2)
    raise AssertionError(f"the callback of {job_id} was not recorded in {timeout} s")


def test_a_finished_job_is_posted_to_its_callback_url_signed(runtime, alice, receiver):
    response = alice.submit("sleep", {"seconds": 0}, callback_url=receiver.url)
    assert response.status == 202, response.body
    assert response.body["callback"] == {"url": receiver.url, "status": "PENDING"}
    job_id = response.body["job_id"]

    [(headers, body)] = receiver.wait_for(1)
    assert verify_signature(signing_secret(runtime), headers[SIGNATURE_HEADER], body)
    assert not verify_signature(b"another secret", headers[SIGNATURE_HEADER], body)
    assert not verify_signature(signing_secret(runtime), headers[SIGNATURE_HEADER], body + b" ")
    assert headers["content-type"] == "application/json"
    assert headers[DELIVERY_HEADER]
    document = json.loads(body)
    assert document["job_id"] == job_id
    assert document["status"] == "COMPLETED"
    assert document["result"] == wait(alice, job_id)["result"]

    job = wait_for_callback_outcome(alice, job_id)
    assert job["callback"]["status"] == "DELIVERED"
    assert job["callback"]["attempts"] == 1
    assert job["callback"]["response_status"] == 200
    time.sleep(1)
    assert len(receiver.received) == 1, "recording the outcome must not trigger a second delivery"


@ANY_TRANSPORT
def test_failed_and_cancelled_jobs_call_back_too(alice, receiver):
    failing = alice.submit("fail", {"message": "boom"}, callback_url=receiver.url).body["job_id"]
    cancelled = alice.submit("sleep", {"seconds": 30}, callback_url=receiver.url).body["job_id"]
    assert alice.cancel(cancelled).status == 202
    documents = {json.loads(body)["job_id"]: json.loads(body) for _, body in receiver.wait_for(2)}
    assert documents[failing]["status"] == "FAILED"
    assert documents[failing]["error"]["message"] == "boom"
    assert documents[cancelled]["status"] == "CANCELLED"


@ANY_TRANSPORT
def test_a_receiver_error_is_retried_with_backoff_and_the_delivery_id_kept(alice, receiver):
    receiver.statuses = [503, 500]
    job_id = alice.submit("sleep", {"seconds": 0}, callback_url=receiver.url).body["job_id"]
    received = receiver.wait_for(3)
    assert len(received) == 3
    assert len({headers[DELIVERY_HEADER] for headers, _ in received}) == 1
    job = wait_for_callback_outcome(alice, job_id)
    assert job["callback"]["status"] == "DELIVERED"
    assert job["callback"]["attempts"] == 3


@ANY_TRANSPORT
def test_a_receiver_that_refuses_is_not_retried_and_the_failure_recorded(alice, receiver):
    receiver.statuses = [410]
    job_id = alice.submit("sleep", {"seconds": 0}, callback_url=receiver.url).body["job_id"]
    job = wait_for_callback_outcome(alice, job_id)
    assert job["callback"]["status"] == "FAILED"
    assert job["callback"]["attempts"] == 1
    assert job["callback"]["response_status"] == 410
    assert len(receiver.received) == 1


@ANY_TRANSPORT
def test_jobs_without_callback_url_are_not_called_back(alice, receiver):
    job_id = submit(alice, "sleep", {"seconds": 0})
    assert "callback" not in wait(alice, job_id)
    time.sleep(1)
    assert receiver.received == []
