"""``python -m doctor.upgrade``'s backfill, on the stack's real table layout: jobs created
before the owner index was sharded are listed once it has run, and running it twice
changes nothing the second time."""

from __future__ import annotations

import boto3
import pytest

from doctor.upgrade import backfill
from jobs.model import Job, new_job_id
from jobs.repository import JobRepository
from tests.conftest import TEST_ENVIRONMENT

pytestmark = pytest.mark.usefixtures("aws")
TABLE = TEST_ENVIRONMENT["JOBS_TABLE_NAME"]


def old_job(created_at: str) -> str:
    """A job as the previous version stored it: no owner-index keys."""
    job_id = new_job_id()
    item = {
        "job_id": {"S": job_id},
        "owner": {"S": "alice"},
        "task": {"S": "sleep"},
        "input": {"S": "{}"},
        "status": {"S": "COMPLETED"},
        "created_at": {"S": created_at},
        "updated_at": {"S": created_at},
        "attempts": {"N": "1"},
    }
    boto3.client("dynamodb").put_item(TableName=TABLE, Item=item)
    return job_id


def test_jobs_from_before_the_upgrade_are_listed_after_the_backfill():
    store = JobRepository(boto3.client("dynamodb"), TABLE, 3600, 3600)
    older = [old_job(f"2026-11-0{day}T10:00:00.000Z") for day in (1, 2, 3)]
    newer = Job(new_job_id(), "alice", "sleep", {})
    store.create(newer)
    assert [job.job_id for job in store.list_for_owner("alice", None, 10, None)[0]] == [newer.job_id]

    assert backfill(boto3.client("dynamodb"), TABLE) == 3
    listed, position = store.list_for_owner("alice", None, 10, None)
    assert [job.job_id for job in listed] == [newer.job_id, *reversed(older)]
    assert position is None
    assert backfill(boto3.client("dynamodb"), TABLE) == 0
