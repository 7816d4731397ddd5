"""WebSocket push end to end (notify=websocket): the runtime serves the WebSocket API and its
management API; the push function, fed by the jobs table's stream, reaches ``jobs watch``."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from jobs_cli.main import Watcher
from jobs_cli.watch import monitor_url
from local.server import LocalRuntime
from tests.conftest import synthesize_app
from tests.e2e.conftest import client_for
from tests.support import TEST_TASKS

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pushing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    out = synthesize_app(tmp_path_factory.mktemp("cdk.out.ws"), notify="websocket")
    runtime = LocalRuntime(out, port=0, retry_base_delay=0.2, preload=TEST_TASKS).start()
    yield runtime
    runtime.stop()


def test_answers_link_the_websocket_and_watch_follows_the_pushes(pushing: LocalRuntime):
    alice = client_for(pushing)
    accepted = alice.submit("sleep", {"seconds": 2})
    assert accepted.status == 202
    url = monitor_url(accepted)
    assert url is not None and url.startswith(str(pushing.websocket_url))
    out = io.StringIO()
    watcher = Watcher(alice, out=out)
    job = watcher.watch(accepted.body["job_id"], timeout=30)
    assert job is not None and job["status"] == "COMPLETED"
    assert watcher.transport == "websocket"
    percents = [int(line.split("%")[0].split("]")[1]) for line in out.getvalue().splitlines()]
    assert percents[-1] == 100 and any(0 < p < 100 for p in percents), out.getvalue()
    assert pushing.websockets[0].wait_closed(10)  # the server closed it once the job ended
    assert "Link" not in alice.status(accepted.body["job_id"]).headers  # finished: nothing to follow


def test_only_the_owner_may_subscribe_and_only_signed(pushing: LocalRuntime):
    alice, bob = client_for(pushing), client_for(pushing, "BOB")
    job_id = alice.submit("sleep", {"seconds": 1}).body["job_id"]
    url = f"{pushing.websocket_url}?job_id={job_id}"
    for headers, status in ((bob.handshake_headers(url), 404), ({}, 403)):
        with pytest.raises(InvalidStatus) as refused:
            connect(url, additional_headers=headers, open_timeout=10).close()
        assert refused.value.response.status_code == status


def test_a_subscriber_receives_each_change_as_the_status_document(pushing: LocalRuntime):
    alice = client_for(pushing)
    job_id = alice.submit("sleep", {"seconds": 1}).body["job_id"]
    url = f"{pushing.websocket_url}?job_id={job_id}"
    documents = []
    with connect(url, additional_headers=alice.handshake_headers(url)) as socket:
        for message in socket:  # ends when the server closes the connection
            documents.append(json.loads(message))
    assert documents[-1]["status"] == "COMPLETED"
    assert {d["job_id"] for d in documents} == {job_id}
    assert documents[-1] == alice.status(job_id).body
