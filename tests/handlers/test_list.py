"""GET /jobs: the caller's own jobs, newest first, filtered and paginated through the owner index."""

import base64
import time

import pytest

from jobs.handlers import status
from jobs.service import encode_next_token
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
    ],
)
def test_bad_query_parameters_are_400(query, message):
    assert list_jobs(query) == (400, {"message": message})
