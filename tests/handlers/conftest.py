"""Handler tests run the real handlers against moto's DynamoDB, Lambda and SQS."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

import jobs.observability
from local.provisioning import create_table
from local.template import load
from tests.conftest import TEST_ENVIRONMENT


@pytest.fixture(scope="session")
def table_definitions(cdk_out: Path) -> dict[str, dict[str, Any]]:
    """The stack's own table definitions (keys, indexes, TTL), under the tests' table names."""
    tables = load(cdk_out).tables

    def declared(construct: str) -> dict[str, Any]:
        [spec] = [spec for logical_id, spec in tables.items() if construct in logical_id]
        return spec.properties

    return {
        TEST_ENVIRONMENT["JOBS_TABLE_NAME"]: declared("JobsTable"),
        TEST_ENVIRONMENT["IDEMPOTENCY_TABLE_NAME"]: declared("IdempotencyTable"),
    }


@pytest.fixture
def aws(table_definitions: dict[str, dict[str, Any]]) -> Iterator[None]:
    """Fresh emulated AWS with the stack's tables and the dead-letter queue.

    moto's Lambda accepts the submit function's asynchronous Invoke without running
    anything (no Docker); the tests run the worker handler themselves.
    """
    with mock_aws(config={"lambda": {"use_docker": False}}):
        for name, properties in table_definitions.items():
            create_table(boto3.client("dynamodb"), name, properties)
        boto3.client("sqs").create_queue(QueueName="dead-letters")
        boto3.client("s3").create_bucket(
            Bucket=TEST_ENVIRONMENT["RESULTS_BUCKET_NAME"],
            CreateBucketConfiguration={"LocationConstraint": TEST_ENVIRONMENT["AWS_REGION"]},  # type: ignore[typeddict-item]
        )
        yield


def job_item(job_id: str) -> dict[str, Any]:
    table = boto3.resource("dynamodb").Table(TEST_ENVIRONMENT["JOBS_TABLE_NAME"])
    return table.get_item(Key={"job_id": job_id})["Item"]


def all_job_items() -> list[dict[str, Any]]:
    table = boto3.resource("dynamodb").Table(TEST_ENVIRONMENT["JOBS_TABLE_NAME"])
    return table.scan()["Items"]


@pytest.fixture
def info_logs() -> Iterator[io.StringIO]:
    """Everything the functions' logger writes, at INFO."""
    logger = jobs.observability.logger
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    captured = io.StringIO()
    previous_stream, previous_level = handler.setStream(captured), logger.log_level
    logger.setLevel("INFO")
    yield captured
    logger.setLevel(previous_level)
    handler.setStream(previous_stream)
