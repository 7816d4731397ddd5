"""Security over HTTP, in the local runtime: jobs are private to their caller, ids are not
guessable, and no answer leaks internals."""

from __future__ import annotations

import itertools
import uuid

import pytest

from jobs_cli.client import JobsClient
from tests.e2e.conftest import ANY_TRANSPORT
from tests.e2e.test_jobs_e2e import submit, wait

pytestmark = [pytest.mark.e2e, ANY_TRANSPORT]


def test_another_caller_cannot_read_list_or_cancel_your_jobs(alice: JobsClient, bob: JobsClient):
    job_id = submit(alice, "sleep", {"seconds": 30})
    for answer in (bob.status(job_id), bob.cancel(job_id)):
        # Exactly what a job that does not exist gets: nothing confirms that the id is real.
        assert (answer.status, answer.body) == (404, {"message": f"job {job_id} not found"})
    ghost = str(uuid.uuid4())
    assert bob.status(ghost).body == {"message": f"job {ghost} not found"}
    assert job_id not in {job["job_id"] for job in bob.list_jobs(limit=100).body["jobs"]}
    own_page = alice.list_jobs(limit=1).body
    replayed = bob.list_jobs(next_token=own_page["next_token"]) if "next_token" in own_page else None
    if replayed is not None:  # a stolen token continues in the thief's own list
        assert job_id not in {job["job_id"] for job in replayed.body["jobs"]}
    assert alice.status(job_id).body["status"] in ("PENDING", "RUNNING")  # Bob's DELETE changed nothing
    assert alice.cancel(job_id).status == 202
    assert wait(alice, job_id, timeout=20)["status"] == "CANCELLED"


def test_job_ids_are_random_uuid4(alice: JobsClient):
    ids = [submit(alice, "sleep", {"seconds": 0}) for _ in range(20)]
    parsed = [uuid.UUID(job_id) for job_id in ids]
    assert all(u.version == 4 and str(u) == job_id for u, job_id in zip(parsed, ids, strict=True))
    assert len(set(ids)) == 20
    # No shared prefix or counter: consecutive ids differ in far more than their last digits.
    assert all(a.int >> 64 != b.int >> 64 for a, b in itertools.pairwise(parsed))


@pytest.mark.parametrize(
    ("method", "path", "body", "headers"),
    [
        ("POST", "jobs", {"task": "sleep", "input": {"seconds": "x" * 50}}, None),
        ("POST", "jobs", {"task": "primes", "input": {"limit": -1}}, None),
        ("GET", "jobs/%2e%2e%2fetc%2fpasswd", None, None),
        ("GET", "jobs?limit=1e9", None, None),
        ("GET", "jobs?next_token=%00%ff", None, None),
        ("DELETE", "jobs/not-a-uuid", None, None),
        ("POST", "jobs", None, {"Content-Type": "application/json"}),
    ],
)
def test_errors_carry_a_message_and_nothing_else(alice: JobsClient, method, path, body, headers):
    answer = alice.request(method, path, body, headers)
    assert 400 <= answer.status < 500, answer.body
    assert set(answer.body) == {"message"}
    for leak in ("Traceback", 'File "', "botocore", "dynamodb", "arn:aws", "/var/task", "lambdas/"):
        assert leak not in answer.body["message"], answer.body
