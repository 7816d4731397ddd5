"""The local runtime's per-partition write budget (local/partitions.py) charges the keys
DynamoDB documents a write charges, for the repository's real requests, on the stack's
real table layout; and refuses a write over a key's budget as DynamoDB does."""

from __future__ import annotations

import copy
import time
from typing import Any

import boto3
import pytest

from jobs.model import Job, Progress, StoredResult, new_job_id
from jobs.repository import JobRepository
from local.partitions import WriteBudget, throttling_answer
from local.provisioning import create_table
from tests.conftest import TEST_ENVIRONMENT

pytestmark = pytest.mark.usefixtures("aws")
TABLE = TEST_ENVIRONMENT["JOBS_TABLE_NAME"]
# The owner index before it was sharded (stacks/job_store.py, LEGACY_OWNER_INDEX).
LEGACY_INDEX = {
    "IndexName": "owner-jobs",
    "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}, {"AttributeName": "created_at", "KeyType": "RANGE"}],
    "Projection": {
        "ProjectionType": "INCLUDE",
        "NonKeyAttributes": ["task", "status", "updated_at", "attempts", "progress_percent", "progress_message"],
    },
}


def recording(table: str) -> tuple[JobRepository, list[list[tuple[str, str]]]]:
    """A repository whose every request is first priced by a budget: the (table or index,
    key) pairs each write charges, in order."""
    client = boto3.client("dynamodb")
    budget = WriteBudget(1000, boto3.client("dynamodb"))
    charged: list[list[tuple[str, str]]] = []

    def price(params: dict[str, Any], model: Any, **_: Any) -> None:
        written = budget.keys_written(model.name, params)
        if written:
            charged.append([(space.index or "table", value) for space, value in written])

    client.meta.events.register("provide-client-params.dynamodb.*", price)
    return JobRepository(client, table, 3600, 3600), charged


def run_one_job(store: JobRepository, owner: str = "alice") -> str:
    job = Job(new_job_id(), owner, "sleep", {})
    store.create(job)
    store.claim(job.job_id, "attempt-1", 60)
    for percent in (20, 40, 60):
        store.report_progress(job.job_id, "attempt-1", Progress(percent))
    store.complete(job.job_id, "attempt-1", StoredResult(2, inline_json="{}"))
    return job.job_id


def test_only_creation_writes_the_owner_index_and_only_start_and_end_the_active_index():
    store, charged = recording(TABLE)
    job_id = run_one_job(store)
    create, claim, *progress, complete = charged
    table_key = f"S:{job_id}"
    shard = next(value for index, value in create if index == "owner-shards")
    assert shard.startswith("S:alice#")
    assert sorted(index for index, _ in create) == ["active-jobs", "owner-shards", "table"]
    assert claim == [("table", table_key)]  # nothing indexed changes
    assert progress == [[("table", table_key)]] * 3
    assert sorted(index for index, _ in complete) == ["active-jobs", "table"]  # leaves the sparse index


def test_the_old_owner_index_was_written_by_every_write_of_every_job_on_one_key(
    table_definitions: dict[str, dict[str, Any]],
):
    properties = copy.deepcopy(table_definitions[TABLE])
    properties["GlobalSecondaryIndexes"].append(LEGACY_INDEX)
    properties["AttributeDefinitions"].append({"AttributeName": "owner", "AttributeType": "S"})
    properties["AttributeDefinitions"].append({"AttributeName": "created_at", "AttributeType": "S"})
    create_table(boto3.client("dynamodb"), "jobs-before", properties)
    store, charged = recording("jobs-before")
    run_one_job(store)
    run_one_job(store)
    legacy = [value for writes in charged for index, value in writes if index == "owner-jobs"]
    assert legacy == ["S:alice"] * 12  # create, claim, three progress reports and the end, twice


def test_a_write_over_a_keys_budget_is_refused_as_dynamodb_refuses_it_and_the_budget_refills():
    budget = WriteBudget(2, boto3.client("dynamodb"))
    store = JobRepository(boto3.client("dynamodb"), TABLE, 3600, 3600)
    job = Job(new_job_id(), "alice", "sleep", {})
    store.create(job)
    update = {
        "TableName": TABLE,
        "Key": {"job_id": {"S": job.job_id}},
        "UpdateExpression": "SET updated_at = :now",
        "ExpressionAttributeValues": {":now": {"S": "2026-11-26T00:00:00.000Z"}},
    }
    assert budget.admit("UpdateItem", update).over is None
    assert budget.admit("UpdateItem", update).over is None
    over = budget.admit("UpdateItem", update).over
    assert over is not None and over[1] == f"S:{job.job_id}"
    answer = throttling_answer(over[0])
    assert answer["__type"].endswith("#ProvisionedThroughputExceededException")
    assert answer["ThrottlingReasons"] == [{"reason": "TableWriteKeyRangeThroughputExceeded", "resource": over[0].arn}]
    assert budget.throttled() == {(TABLE, f"S:{job.job_id}"): 1}
    time.sleep(0.6)  # one more write's worth at 2 per second
    assert budget.admit("UpdateItem", update).over is None


def test_a_write_whose_index_key_is_over_budget_is_refused_though_its_own_key_is_not():
    """GSI back pressure: the table write is refused with the index's reason and ARN."""
    budget = WriteBudget(1, boto3.client("dynamodb"))

    def new_job(job_id: str) -> dict[str, Any]:
        item = {"job_id": {"S": job_id}, "active_shard": {"S": "3"}, "stuck_after": {"N": "1"}}
        return {"TableName": TABLE, "Item": item}

    first = budget.admit("PutItem", new_job(new_job_id()))
    assert first.over is None
    over = budget.admit("PutItem", new_job(new_job_id())).over
    assert over is not None and (over[0].index, over[1]) == ("active-jobs", "S:3")
    answer = throttling_answer(over[0])
    assert answer["__type"].endswith("#ThrottlingException")
    assert answer["throttlingReasons"][0]["reason"] == "IndexWriteKeyRangeThroughputExceeded"
    assert over[0].arn.endswith(f"table/{TABLE}/index/active-jobs")
    # Had the first write failed its condition, DynamoDB would have written no index.
    budget.refund_indexes(first)
    assert budget.admit("PutItem", new_job(new_job_id())).over is None
