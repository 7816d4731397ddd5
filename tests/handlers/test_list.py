"""GET /jobs: the caller's own jobs, newest first, filtered and paginated through the owner index."""

import base64
import time
import uuid

import boto3
import pytest
from botocore.stub import Stubber

from jobs import clients, repository
from jobs.handlers import status
from jobs.model import Job, Progress, new_job_id
from jobs.repository import JobRepository
from jobs.service import encode_next_token
from tests.conftest import TEST_ENVIRONMENT
from tests.events import BOB, LambdaContext, cancel_event, checked_answer, list_event
from tests.handlers.test_cancel import call as cancel
from tests.handlers.test_worker import run_worker, submit_job

pytestmark = pytest.mark.usefixtures("aws")


def list_jobs(query: dict | None = None, **kwargs) -> tuple[int, dict]:
    code, body, _ = checked_answer(status.handler(list_event(query, **kwargs), LambdaContext(function_name="status")))
    return code, body


def submit_in_order(count: int, task: str = "sleep", task_input: dict | None = None) -> list[str]:
    job_ids = []
    for _ in range(count):
        job_ids.append(submit_job(task, task_input or {"seconds": 0}))
        time.sleep(0.002)  # distinct created_at (milliseconds)
    return job_ids


def test_newest_first_with_summaries_not_results():
    older, newer = submit_in_order(2)
    run_worker(older)
    code, body = list_jobs()
    assert code == 200
    assert [job["job_id"] for job in body["jobs"]] == [newer, older]
    assert "next_token" not in body
    done = body["jobs"][1]
    assert done["status"] == "COMPLETED" and done["progress"] == {"percent": 100}
    assert "result" not in done and "input" not in done and "owner" not in done


def test_pages_follow_next_token_to_the_end():
    job_ids = list(reversed(submit_in_order(7)))
    seen: list[str] = []
    query = {"limit": "3"}
    pages = 0
    while True:
        code, body = list_jobs(query)
        assert code == 200
        pages += 1
        seen.extend(job["job_id"] for job in body["jobs"])
        if "next_token" not in body:
            break
        query = {"limit": "3", "next_token": body["next_token"]}
    assert seen == job_ids
    assert pages == 3


def test_status_filter():
    done, failed, pending = (
        submit_job("sleep", {"seconds": 0}),
        submit_job("fail", {}),
        submit_job("sleep", {"seconds": 1}),
    )
    cancelled = submit_job("sleep", {"seconds": 1})
    run_worker(done)
    run_worker(failed)
    cancel(cancel_event(cancelled))
    for wanted, expected in [
        ("COMPLETED", [done]),
        ("failed", [failed]),
        ("PENDING", [pending]),
        ("CANCELLED", [cancelled]),
    ]:
        code, body = list_jobs({"status": wanted})
        assert code == 200
        assert [job["job_id"] for job in body["jobs"]] == expected, wanted


def test_a_rare_status_among_many_is_still_found_page_by_page():
    rare = submit_job("fail", {})
    run_worker(rare)
    submit_in_order(30)
    found: list[str] = []
    query = {"status": "FAILED", "limit": "2"}
    for _ in range(40):  # each call reads a bounded number of items, then hands back a token
        code, body = list_jobs(query)
        assert code == 200 and len(body["jobs"]) <= 2
        found.extend(job["job_id"] for job in body["jobs"])
        if "next_token" not in body:
            break
        query = {**query, "next_token": body["next_token"]}
    assert found == [rare]


def test_only_the_callers_jobs_are_listed_and_a_token_cannot_cross_owners():
    alices = submit_in_order(3)
    code, body = list_jobs(caller=BOB)
    assert (code, body) == (200, {"jobs": []})
    _, page = list_jobs({"limit": "1"})
    # Alice's own token, replayed by Bob, continues in Bob's (empty) list, not Alice's.
    assert list_jobs({"next_token": page["next_token"]}, caller=BOB) == (200, {"jobs": []})
    assert [job["job_id"] for job in list_jobs({"next_token": page["next_token"]})[1]["jobs"]] == alices[1::-1]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"status": "DONE"}, "status must be one of PENDING, RUNNING, COMPLETED, FAILED, CANCELLED"),
        ({"limit": "0"}, "limit must be a whole number from 1 to 100"),
        ({"limit": "101"}, "limit must be a whole number from 1 to 100"),
        ({"limit": "ten"}, "limit must be a whole number from 1 to 100"),
        ({"next_token": "not base64 json"}, "next_token is invalid; pass the value a previous listing returned"),
        (
            {"next_token": base64.urlsafe_b64encode(b'{"owner": "x"}').decode()},
            "next_token is invalid; pass the value a previous listing returned",
        ),
        (
            {"next_token": encode_next_token({"job_id": "../etc", "created_at": "2026-11-24T10:00:00.000Z"})},
            "next_token is invalid; pass the value a previous listing returned",
        ),
        ({"next_token": "A" * 300}, "next_token is invalid; pass the value a previous listing returned"),
        (
            {
                "next_token": encode_next_token(
                    {"job_id": str(uuid.uuid4()), "created_at": "2026-11-24T10:00:00.000Z\n"}
                )
            },
            "next_token is invalid; pass the value a previous listing returned",
        ),
        (
            {
                "next_token": encode_next_token(
                    {"job_id": str(uuid.uuid4()), "created_at": "\uff12\uff10\uff12\uff16-11-24T10:00:00.000Z"}
                )
            },
            "next_token is invalid; pass the value a previous listing returned",
        ),
    ],
)
def test_bad_query_parameters_are_400(query, message):
    assert list_jobs(query) == (400, {"message": message})


def test_one_owners_jobs_spread_over_the_index_shards_list_once_each_in_order_even_created_together():
    """Jobs of one owner land on several index keys; pages merge them newest first, and a
    page boundary among jobs created in the same millisecond loses and repeats none."""
    store = JobRepository(boto3.client("dynamodb"), TEST_ENVIRONMENT["JOBS_TABLE_NAME"], 3600, 3600)
    same_moment, later = "2026-11-26T08:00:00.000Z", "2026-11-26T08:00:00.001Z"
    jobs = [Job(new_job_id(), "alice", "sleep", {}, created_at=same_moment) for _ in range(25)]
    jobs.append(Job(new_job_id(), "alice", "sleep", {}, created_at=later))
    for job in jobs:
        store.create(job)
    table = boto3.resource("dynamodb").Table(TEST_ENVIRONMENT["JOBS_TABLE_NAME"])
    shards = {str(table.get_item(Key={"job_id": job.job_id})["Item"]["owner_shard"]) for job in jobs}
    assert len(shards) > 4 and all(shard.startswith("alice#") for shard in shards)

    seen: list[str] = []
    position = None
    for _ in range(20):
        page, position = store.list_for_owner("alice", None, 4, position)
        assert len(page) <= 4
        seen.extend(job.job_id for job in page)
        if position is None:
            break
    newest_first = [jobs[-1].job_id, *sorted((job.job_id for job in jobs[:-1]), reverse=True)]
    assert seen == newest_first


def test_a_listing_shows_each_job_as_it_is_now_not_as_an_index_last_saw_it():
    job_id = submit_job("sleep", {"seconds": 0})
    store = JobRepository(boto3.client("dynamodb"), TEST_ENVIRONMENT["JOBS_TABLE_NAME"], 3600, 3600)
    store.claim(job_id, "attempt-1", 60)
    store.report_progress(job_id, "attempt-1", Progress(40, "halfway"))
    _, body = list_jobs()
    [listed] = body["jobs"]
    assert listed["status"] == "RUNNING" and listed["progress"] == {"percent": 40, "message": "halfway"}


def test_while_a_new_owner_index_is_still_being_built_a_listing_answers_503_with_retry_after():
    """DynamoDB refuses queries of an index until it is ACTIVE ("Cannot read from backfilling
    global secondary index"): the first deploy of an upgrade (docs/operations.md)."""
    with Stubber(clients.dynamodb()) as stubber:
        stubber.add_client_error(
            "query",
            service_error_code="ValidationException",
            service_message="Cannot read from backfilling global secondary index: owner-shards",
        )
        code, body, headers = checked_answer(status.handler(list_event(), LambdaContext(function_name="status")))
    assert (code, headers["Retry-After"]) == (503, "2")
    assert body == {"message": "the listing index is still being built; retry later"}


def test_keys_the_table_keeps_leaving_unread_end_in_503_after_backing_off(monkeypatch):
    pauses: list[float] = []
    monkeypatch.setattr("jobs.repository.time.sleep", pauses.append)
    submit_job("sleep", {"seconds": 0})
    real = clients.dynamodb().batch_get_item

    def unprocessed(**request):
        real(**request)
        return {"Responses": {}, "UnprocessedKeys": request["RequestItems"]}

    monkeypatch.setattr(clients.dynamodb(), "batch_get_item", unprocessed)
    code, body = list_jobs()
    assert code == 503 and body == {"message": "the job store is busy; retry later"}
    assert len(pauses) == len(repository.BATCH_GET_PAUSES)
    for paused, wanted in zip(pauses, repository.BATCH_GET_PAUSES, strict=True):
        assert 0.5 * wanted <= paused <= wanted  # backoff with jitter
