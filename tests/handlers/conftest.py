"""Handler tests run the real handlers against moto's DynamoDB, Lambda and SQS."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stacks.job_store import IDEMPOTENCY_KEY, JOB_KEY
from tests.conftest import TEST_ENVIRONMENT


def create_table(name: str, key: str) -> None:
    boto3.client("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.fixture
def aws() -> Iterator[None]:
    """Fresh emulated AWS with the stack's tables and the dead-letter queue.

    moto's Lambda accepts the submit function's asynchronous Invoke without running
    anything (no Docker); the tests run the worker handler themselves.
    """
    with mock_aws(config={"lambda": {"use_docker": False}}):
        create_table(TEST_ENVIRONMENT["JOBS_TABLE_NAME"], JOB_KEY)
        create_table(TEST_ENVIRONMENT["IDEMPOTENCY_TABLE_NAME"], IDEMPOTENCY_KEY)
        boto3.client("sqs").create_queue(QueueName="dead-letters")
        yield


def job_item(job_id: str) -> dict[str, Any]:
    table = boto3.resource("dynamodb").Table(TEST_ENVIRONMENT["JOBS_TABLE_NAME"])
    return table.get_item(Key={"job_id": job_id})["Item"]


def all_job_items() -> list[dict[str, Any]]:
    table = boto3.resource("dynamodb").Table(TEST_ENVIRONMENT["JOBS_TABLE_NAME"])
    return table.scan()["Items"]
