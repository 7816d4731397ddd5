"""The jobs table's item layout, and how a :class:`~jobs.model.Job` is stored and read back.

Item layout (key ``job_id``): ``owner``, ``task``, ``input`` and ``result`` (JSON text),
``status``, ``created_at``/``updated_at`` (ISO 8601), ``attempts``, ``attempt_id`` and
``lease_expires_at`` (the owning attempt), ``progress_percent``/``progress_message``,
``error_type``/``error_message``, ``last_error_*`` (the last failed attempt),
``cancel_requested_at``, ``step`` (``dispatch=stepfunctions`` or ``durable``),
``execution_arn`` (``durable``), ``callback_url`` and ``callback_*`` (the webhook and its
delivery), ``expires_at`` (TTL), and, only while the job is unfinished,
``active_shard``/``stuck_after``: the keys of the sparse index the reaper queries.

``owner_shard``/``listing_order`` are the keys of the owner index that listings query.

``jobs/repository.py`` runs the queries and conditional updates over these items.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from jobs.model import CallbackRecord, Job, JobError, JobStatus, Progress

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

# What a listing reads of each job: everything Job.to_summary_dict shows, not the input
# or the result (a read costs the whole item either way, but need not carry it).
SUMMARY_ATTRIBUTES = (
    "job_id",
    "owner",
    "task",
    "status",
    "created_at",
    "updated_at",
    "attempts",
    "progress_percent",
    "progress_message",
    "step",
    "error_type",
    "error_message",
    "cancel_requested_at",
    "callback_url",
    "callback_status",
    "callback_attempts",
    "callback_at",
    "callback_response_status",
    "callback_error",
)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_attributes(values: dict[str, Any]) -> dict[str, Any]:
    """Plain values (str, int, Decimal, ...) as DynamoDB's typed attribute values."""
    return {name: _serializer.serialize(value) for name, value in values.items()}


def from_attributes(item: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB's typed attribute values as plain values (numbers as Decimal)."""
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def new_job_item(job: Job) -> dict[str, Any]:
    """A new job as an item (plain values; the repository adds the TTL and index keys)."""
    item: dict[str, Any] = {
        "job_id": job.job_id,
        "owner": job.owner,
        "task": job.task,
        "input": json.dumps(job.input, separators=(",", ":")),
        "status": job.status.value,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "attempts": 0,
    }
    if job.correlation_id:
        item["correlation_id"] = job.correlation_id
    if job.callback_url:
        item["callback_url"] = job.callback_url
    return item


def _number(value: Any) -> int:
    return int(value) if isinstance(value, (int, Decimal)) else 0


def job_from_item(item: dict[str, Any]) -> Job:
    status = JobStatus(item["status"])
    progress = None
    if "progress_percent" in item:
        progress = Progress(_number(item["progress_percent"]), item.get("progress_message"))
    error = None
    if "error_type" in item:
        error = JobError(str(item["error_type"]), str(item.get("error_message", "")))
    result = json.loads(item["result"]) if "result" in item else None
    return Job(
        job_id=str(item["job_id"]),
        owner=str(item["owner"]),
        task=str(item["task"]),
        input=json.loads(item["input"]) if "input" in item else {},  # a listing does not carry it
        status=status,
        created_at=str(item["created_at"]),
        updated_at=str(item.get("updated_at", item["created_at"])),
        progress=progress,
        result=result,
        result_location=item.get("result_location"),
        result_bytes=_number(item["result_bytes"]) if "result_bytes" in item else None,
        error=error,
        attempts=_number(item.get("attempts", 0)),
        correlation_id=item.get("correlation_id"),
        cancel_requested="cancel_requested_at" in item,
        step=item.get("step"),
        execution_arn=item.get("execution_arn"),
        callback_url=item.get("callback_url"),
        callback=_callback_from_item(item),
    )


def job_in_stream_record(record: DynamoDBRecord) -> Job | None:
    """The job as a record of the jobs table's stream shows it after the change (its new
    image); None for a removal (TTL) or a record without one."""
    image = record.dynamodb.new_image if record.dynamodb else None
    if not image or "job_id" not in image:
        return None
    return job_from_item(image)


def _callback_from_item(item: dict[str, Any]) -> CallbackRecord | None:
    if "callback_status" not in item:
        return None
    return CallbackRecord(
        status=str(item["callback_status"]),
        attempts=_number(item.get("callback_attempts")),
        at=str(item.get("callback_at", "")),
        response_status=_number(item["callback_response_status"]) if "callback_response_status" in item else None,
        error=item.get("callback_error"),
    )
