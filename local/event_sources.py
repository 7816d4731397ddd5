"""The local runtime's event sources: what AWS itself invokes functions with, played here.

SQS and DynamoDB stream event source mappings (polling, batches, partial batch failures,
retries and on-failure destinations, filter criteria) and EventBridge scheduled rules.
Part of the local runtime (``local/server.py`` starts them); nothing here is deployed.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from threading import Event, Thread
from typing import Any

from local.event_filter import passes
from local.lambda_service import LambdaService
from local.provisioning import queue_arn
from local.template import ACCOUNT_ID, REGION, AppTemplate, QueueMappingSpec, ScheduleSpec, StreamMappingSpec

log = logging.getLogger("local")


class EventSources:
    """The template's event source mappings and scheduled rules, each in a thread of its
    own, invoking ``lambdas`` until ``stopping`` is set."""

    def __init__(
        self,
        lambdas: LambdaService,
        aws_client: Callable[[str], Any],
        stopping: Event,
        queue_urls: dict[str, str],
        stream_arns: dict[str, str],
        send_to_queue: Callable[[str, str], None],
        retry_base_delay: float,
        schedule_interval: float | None,
    ) -> None:
        self.lambdas = lambdas
        self.aws_client = aws_client
        self._stopping = stopping
        self.queue_urls = queue_urls
        self.stream_arns = stream_arns
        self._send_to_queue = send_to_queue
        self._retry_base_delay = retry_base_delay
        self._schedule_interval = schedule_interval

    def start(self, template: AppTemplate) -> None:
        for mapping in template.queue_mappings:
            for poller in range(mapping.max_concurrency):
                Thread(
                    target=self._poll_queue, args=(mapping,), name=f"esm-{mapping.queue}-{poller}", daemon=True
                ).start()
        for stream in template.stream_mappings:
            Thread(target=self._poll_stream, args=(stream,), name=f"esm-{stream.table}", daemon=True).start()
        for schedule in template.schedules:
            Thread(target=self._run_schedule, args=(schedule,), name=f"rule-{schedule.logical_id}", daemon=True).start()

    def _run_schedule(self, schedule: ScheduleSpec) -> None:
        """EventBridge's scheduled rule: an asynchronous invoke of each target, every interval."""
        interval = self._schedule_interval or schedule.interval_seconds
        while not self._stopping.wait(interval):
            event = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": ACCOUNT_ID,
                "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": REGION,
                "resources": [schedule.arn],
                "detail": {},
            }
            for function in schedule.functions:
                self.lambdas.invoke_async(function, event)

    def _poll_queue(self, mapping: QueueMappingSpec) -> None:
        """An SQS event source mapping: receive a batch, invoke the function with it, delete
        what succeeded (all of it, or all but the reported batch item failures). Messages
        not deleted come back after the queue's visibility timeout; the queue's redrive
        policy moves them to its dead-letter queue after ``maxReceiveCount`` receives."""
        sqs = self.aws_client("sqs")
        url = self.queue_urls[mapping.queue]
        arn = queue_arn(mapping.queue)
        while not self._stopping.is_set():
            try:
                batch = sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=mapping.batch_size,
                    WaitTimeSeconds=1,
                    MessageSystemAttributeNames=["All"],
                ).get("Messages", [])
            except Exception:  # the emulator is stopping or busy: try again
                if not self._stopping.wait(0.5):
                    log.debug("receive from %s failed; retrying", mapping.queue, exc_info=True)
                continue
            if not batch:
                continue
            event = {"Records": [sqs_record(message, arn) for message in batch]}
            result = self.lambdas.invoke(mapping.function, event)
            if result is None or not result.ok:
                continue  # the whole batch comes back after the visibility timeout
            failed: set[str] = set()
            if mapping.report_batch_item_failures and isinstance(result.payload, dict):
                failed = {str(f.get("itemIdentifier")) for f in result.payload.get("batchItemFailures") or []}
            done = [m for m in batch if m["MessageId"] not in failed]
            for start in range(0, len(done), 10):
                entries = [
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])
                ]
                sqs.delete_message_batch(QueueUrl=url, Entries=entries)

    def _poll_stream(self, mapping: StreamMappingSpec) -> None:
        """A DynamoDB stream event source mapping: read the shard in order, drop records the
        filter criteria reject, invoke the function with batches of the rest. A failed batch
        is retried (from the first reported batch item failure, if the function reports
        them) up to the mapping's retry limit; then a pointer to it goes to the on-failure
        queue and reading goes on, as in AWS."""
        streams = self.aws_client("dynamodbstreams")
        arn = self.stream_arns[mapping.table]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard, ShardIteratorType=mapping.starting_position
        )["ShardIterator"]
        while not self._stopping.is_set():
            try:
                page = streams.get_records(ShardIterator=iterator, Limit=1000)
            except Exception:  # the emulator is stopping or busy: try again
                if not self._stopping.wait(0.5):
                    log.debug("reading the stream of %s failed; retrying", mapping.table, exc_info=True)
                continue
            iterator = page["NextShardIterator"]
            records = [stream_record(record, arn) for record in page.get("Records", [])]
            wanted = [record for record in records if passes(mapping.filters, record)]
            for start in range(0, len(wanted), mapping.batch_size):
                self._deliver_stream_batch(mapping, wanted[start : start + mapping.batch_size], shard, arn)
            if not records:
                self._stopping.wait(0.2)

    def _deliver_stream_batch(
        self, mapping: StreamMappingSpec, batch: list[dict[str, Any]], shard: str, arn: str
    ) -> None:
        retries = 0
        while batch and not self._stopping.is_set():
            result = self.lambdas.invoke(mapping.function, {"Records": batch})
            if result is not None and result.ok:
                failed = []
                if mapping.report_batch_item_failures and isinstance(result.payload, dict):
                    failed = [str(f.get("itemIdentifier")) for f in result.payload.get("batchItemFailures") or []]
                if not failed:
                    return
                first = min(int(sequence) for sequence in failed)
                batch = [r for r in batch if int(r["dynamodb"]["SequenceNumber"]) >= first]
            retries += 1
            if 0 <= mapping.max_retry_attempts < retries:
                log.warning("stream batch for %s given up after %d retries", mapping.function, retries - 1)
                if mapping.on_failure in self.queue_urls:
                    self._send_to_queue(mapping.on_failure, json.dumps(stream_failure(batch, shard, arn)))
                return
            self._stopping.wait(self._retry_base_delay * retries)


def sqs_record(message: dict[str, Any], arn: str) -> dict[str, Any]:
    """One record of the event an SQS event source mapping sends."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": REGION,
    }


def stream_record(record: dict[str, Any], arn: str) -> dict[str, Any]:
    """A stream record as the event source mapping hands it to a function (JSON-ready)."""
    dynamodb = dict(record["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = int(created.timestamp())
    return {**record, "dynamodb": dynamodb, "eventSourceARN": arn}


def stream_failure(batch: list[dict[str, Any]], shard: str, arn: str) -> dict[str, Any]:
    """The on-failure destination's message for a stream batch: where to find its records."""
    sequences = [r["dynamodb"]["SequenceNumber"] for r in batch]
    return {
        "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": 1},
        "DDBStreamBatchInfo": {
            "shardId": shard,
            "startSequenceNumber": min(sequences, key=int),
            "endSequenceNumber": max(sequences, key=int),
            "batchSize": len(batch),
            "streamArn": arn,
        },
    }
