import uuid

import pytest

from jobs.model import (
    ALLOWED_TRANSITIONS,
    TERMINAL_STATUSES,
    Job,
    JobError,
    JobStatus,
    Progress,
    can_transition,
    is_job_id,
    new_job_id,
)


def test_terminal_statuses_allow_no_transition():
    for status in TERMINAL_STATUSES:
        assert ALLOWED_TRANSITIONS[status] == frozenset()
        assert all(not can_transition(status, target) for target in JobStatus)


def test_life_cycle_moves():
    assert can_transition(JobStatus.PENDING, JobStatus.RUNNING)
    assert can_transition(JobStatus.RUNNING, JobStatus.RUNNING)  # a retry by a new attempt
    assert can_transition(JobStatus.RUNNING, JobStatus.COMPLETED)
    assert can_transition(JobStatus.PENDING, JobStatus.FAILED)  # dispatch failed / never ran
    assert not can_transition(JobStatus.PENDING, JobStatus.COMPLETED)  # nothing completes unrun


def test_job_ids_are_random_uuid4():
    ids = {new_job_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(uuid.UUID(job_id).version == 4 for job_id in ids)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("b803bf35-bea6-420a-98c6-263be0c288ba", True),  # fixed: parallel workers collect the same ids
        ("not-a-uuid", False),
        ("", False),
        ("97BFD2CC-BC30-4C8F-B3C5-EEFE0F34B5BA", False),  # canonical form only: one spelling per job
        ("../../etc/passwd", False),
    ],
)
def test_is_job_id(value, expected):
    assert is_job_id(value) is expected


def test_progress_bounds():
    assert Progress(0).to_dict() == {"percent": 0}
    assert Progress(100, "done").to_dict() == {"percent": 100, "message": "done"}
    with pytest.raises(ValueError):
        Progress(101)
    with pytest.raises(ValueError):
        Progress(-1)


def test_public_view_shows_result_only_when_completed_and_error_only_when_failed():
    job = Job(job_id=new_job_id(), owner="arn:aws:iam::1:user/a", task="sleep", input={"seconds": 1})
    view = job.to_public_dict()
    assert view["status"] == "PENDING"
    assert "result" not in view
    assert "error" not in view
    assert "owner" not in view  # internal: never shown

    job.status = JobStatus.COMPLETED
    job.result = {"answer": 42}
    assert job.to_public_dict()["result"] == {"answer": 42}

    job.status = JobStatus.FAILED
    job.error = JobError("TaskFailed", "boom")
    view = job.to_public_dict()
    assert view["error"] == {"type": "TaskFailed", "message": "boom"}
    assert "result" not in view


def test_cancellation_moves():
    assert JobStatus.CANCELLED.is_terminal
    assert can_transition(JobStatus.PENDING, JobStatus.CANCELLED)  # at once
    assert can_transition(JobStatus.RUNNING, JobStatus.CANCELLED)  # when the attempt notices
    assert not can_transition(JobStatus.COMPLETED, JobStatus.CANCELLED)
    assert not can_transition(JobStatus.FAILED, JobStatus.CANCELLED)


def test_public_view_shows_a_pending_cancel_request_only_until_the_job_ends():
    job = Job(job_id=new_job_id(), owner="o", task="sleep", input={}, status=JobStatus.RUNNING)
    assert "cancel_requested" not in job.to_public_dict()
    job.cancel_requested = True
    assert job.to_public_dict()["cancel_requested"] is True
    job.status = JobStatus.CANCELLED
    assert "cancel_requested" not in job.to_public_dict()
