"""Data access for jobs: the only module that reads or writes the DynamoDB jobs table.

Every status change is one conditional ``UpdateItem``: the condition is the set of
statuses the domain allows the change from (``model.ALLOWED_TRANSITIONS``) plus, for a
running job, proof that the caller is the attempt that owns it. A lost race, a
redelivered event or a stale attempt therefore changes nothing instead of overwriting.

The item layout and its mapping to :class:`Job` are in ``jobs/items.py``.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from jobs import clients
from jobs.items import SUMMARY_ATTRIBUTES, from_attributes, job_from_item, new_job_item, to_attributes
from jobs.model import (
    ALLOWED_TRANSITIONS,
    CallbackRecord,
    Job,
    JobError,
    JobStatus,
    Progress,
    StoredResult,
    iso,
    utc_now,
)
from jobs.service import ListingUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from jobs.settings import Settings

# The sparse "active jobs" index (stacks/job_store.py creates it with these names): only
# PENDING and RUNNING jobs carry its keys, so the reaper queries the few unfinished jobs
# instead of scanning the table. Keys are spread over shards so that a burst of
# submissions does not make one index partition hot: a job writes its shard twice (enters,
# leaves), so 32 shards take 16,000 jobs a second (bench/capacity.py). Raising the count is
# safe (the reaper queries every shard below it); lowering it would strand unfinished jobs.
ACTIVE_INDEX = "active-jobs"
ACTIVE_SHARD = "active_shard"
STUCK_AFTER = "stuck_after"
ACTIVE_SHARDS = 32
# Every move to a terminal status ends with this, taking the job out of the index.
LEAVE_ACTIVE_INDEX = f"{ACTIVE_SHARD}, {STUCK_AFTER}"
# Each owner's job ids by creation time, for listings: keys only, so that only a job's
# creation writes it, and each owner's keys spread over OWNER_SHARDS partition keys, so that
# one caller submitting everything does not make one index partition hot: 16 keys take
# 16,000 jobs a second from one caller, and a listing page reads each (bench/capacity.py).
# Raising the count is safe (listings read every shard below it); lowering it would hide
# older jobs from listings until they expire.
OWNER_INDEX = "owner-shards"
OWNER_SHARD = "owner_shard"
LISTING_ORDER = "listing_order"
OWNER_SHARDS = 16
# Reads of the index per listing request, so a rare status filter cannot make one slow.
MAX_LIST_PAGES = 5


# BatchGetItem's unprocessed keys are asked for again after these pauses (exponential
# backoff, as the API reference asks); still unprocessed after them, the store is busy.
BATCH_GET_PAUSES = (0.05, 0.1, 0.2, 0.4, 0.8)


def _sources_of(target: JobStatus) -> list[JobStatus]:
    """The statuses from which the domain allows a move to ``target``."""
    return [status for status, targets in ALLOWED_TRANSITIONS.items() if target in targets]


def _status_in(target: JobStatus, values: dict[str, Any]) -> str:
    """A ``#status IN (...)`` clause for the statuses that may move to ``target``.

    Adds the placeholder values it uses to ``values``.
    """
    placeholders = []
    for index, status in enumerate(_sources_of(target)):
        values[f":from{index}"] = status.value
        placeholders.append(f":from{index}")
    return f"#status IN ({', '.join(placeholders)})"


def _error_code(error: ClientError) -> str | None:
    return error.response.get("Error", {}).get("Code")


def _is_condition_failure(error: ClientError) -> bool:
    return _error_code(error) == "ConditionalCheckFailedException"


def shard_of(job_id: str, shards: int) -> int:
    """A shard from the job id's random bits (uuid4), so shards fill evenly."""
    return int(job_id[:8], 16) % shards


def owner_shard_key(owner: str, shard: int) -> str:
    """The owner index's partition key for one of an owner's shards."""
    return f"{owner}#{shard}"


# created_at has a fixed width (milliseconds, UTC), so text order is time order, and the job
# id makes each position unique: a listing resumes exactly after the last job it returned.
ORDER_SEPARATOR = "#"


def listing_order(created_at: str, job_id: str) -> str:
    """The owner index's sort key: newest first is descending order of this."""
    return f"{created_at}{ORDER_SEPARATOR}{job_id}"


def owner_index_keys(owner: str, job_id: str, created_at: str) -> dict[str, str]:
    """A job's keys in the owner index (set when it is created; ``doctor/upgrade.py`` gives
    jobs created before the index existed the same)."""
    return {
        OWNER_SHARD: owner_shard_key(owner, shard_of(job_id, OWNER_SHARDS)),
        LISTING_ORDER: listing_order(created_at, job_id),
    }


def _epoch(seconds_from_now: float = 0) -> int:
    return int(utc_now().timestamp() + seconds_from_now)


class JobRepository:
    """Reads and conditionally updates job items."""

    def __init__(
        self, client: DynamoDBClient, table_name: str, retention_seconds: int, stuck_after_seconds: int
    ) -> None:
        self._client = client
        self._table_name = table_name
        self._retention_seconds = retention_seconds
        self._stuck_after_seconds = stuck_after_seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> JobRepository:
        return cls(
            clients.dynamodb(), settings.jobs_table_name, settings.job_retention_seconds, settings.stuck_after_seconds
        )

    # -- reads -------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        response = self._client.get_item(TableName=self._table_name, Key=_key(job_id), ConsistentRead=True)
        item = response.get("Item")
        return job_from_item(from_attributes(item)) if item else None

    def list_for_owner(
        self, owner: str, status: JobStatus | None, limit: int, start_after: dict[str, str] | None
    ) -> tuple[list[Job], dict[str, str] | None]:
        """Up to ``limit`` of ``owner``'s jobs, newest first, optionally of one ``status``.

        ``start_after`` is the position a previous call returned (the last job it looked
        at); the second value is the position to continue from, None at the end. With a
        status filter a call may return fewer than ``limit`` jobs and still a position:
        jobs are filtered after reading, and reads are capped per call (``MAX_LIST_PAGES``).

        The owner index holds keys only, spread over ``OWNER_SHARDS`` keys per owner: each
        shard is read newest first and the shards merged. The jobs themselves then come
        from the table (strongly consistent), so a listing shows each job as ``GET
        /jobs/{job_id}`` does, and no progress write ever touches the index.
        """
        cursor = listing_order(start_after["created_at"], start_after["job_id"]) if start_after else None
        jobs: list[Job] = []
        shards = set(range(OWNER_SHARDS))  # those that may still hold older jobs
        rounds = 0
        while True:
            keys, more = self._newest_keys(owner, cursor, limit - len(jobs), shards)
            found = self._get_many([job_id for _, job_id in keys])
            for _, job_id in keys:
                job = found.get(job_id)  # gone only if expired since the index saw it
                if job is not None and job.owner == owner and (status is None or job.status is status):
                    jobs.append(job)
            if not keys or not more:
                return jobs, None
            cursor, last_id = keys[-1]
            rounds += 1
            if len(jobs) >= limit or rounds == MAX_LIST_PAGES:
                return jobs, {"created_at": cursor.rsplit(ORDER_SEPARATOR, 1)[0], "job_id": last_id}

    def _newest_keys(
        self, owner: str, before: str | None, count: int, shards: set[int]
    ) -> tuple[list[tuple[str, str]], bool]:
        """The ``count`` newest (order, job id) pairs of ``owner`` older than ``before``,
        and whether any older ones may remain.

        Each shard gives its own ``count`` newest; the newest ``count`` of their union are
        the owner's, since no shard's next key can beat the ``count`` it already gave. A
        shard found to hold nothing more is dropped from ``shards``: the next round looks
        further back still."""
        merged: list[tuple[str, str]] = []
        more = False
        ended: dict[int, str] = {}  # shards with nothing older than what they gave: their oldest
        for shard in sorted(shards):
            condition = f"{OWNER_SHARD} = :shard"
            values: dict[str, Any] = {":shard": owner_shard_key(owner, shard)}
            if before is not None:
                condition += f" AND {LISTING_ORDER} < :before"
                values[":before"] = before
            try:
                page = self._client.query(
                    TableName=self._table_name,
                    IndexName=OWNER_INDEX,
                    KeyConditionExpression=condition,
                    ExpressionAttributeValues=to_attributes(values),
                    ScanIndexForward=False,
                    Limit=count,
                )
            except ClientError as error:
                # "Cannot read from backfilling global secondary index": a new index takes
                # queries only once ACTIVE (docs/operations.md, upgrading the owner index).
                if _error_code(error) == "ValidationException" and "backfilling" in str(error):
                    raise ListingUnavailable("the listing index is still being built; retry later") from error
                raise
            given = [from_attributes(item) for item in page.get("Items", [])]
            merged.extend((str(key[LISTING_ORDER]), str(key["job_id"])) for key in given)
            if "LastEvaluatedKey" in page:
                more = True
            else:
                ended[shard] = str(given[-1][LISTING_ORDER]) if given else ""
        merged.sort(reverse=True)
        taken = merged[:count]
        # A shard that ended is done once all it gave is on this page.
        shards.difference_update(
            shard for shard, oldest in ended.items() if not oldest or not taken or oldest >= taken[-1][0]
        )
        return taken, more or len(merged) > count

    def _get_many(self, job_ids: list[str]) -> dict[str, Job]:
        """The jobs with these ids (at most 100, BatchGetItem's limit), as a listing shows
        them; unprocessed keys (throttling, the 16 MB cap) are asked for again."""
        if not job_ids:
            return {}
        names = {f"#a{index}": name for index, name in enumerate(SUMMARY_ATTRIBUTES)}
        request: dict[str, Any] = {
            self._table_name: {
                "Keys": [_key(job_id) for job_id in job_ids],
                "ConsistentRead": True,
                "ProjectionExpression": ", ".join(names),
                "ExpressionAttributeNames": names,
            }
        }
        found: dict[str, Job] = {}
        for pause in (*BATCH_GET_PAUSES, None):
            response = self._client.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(self._table_name, []):
                job = job_from_item(from_attributes(item))
                found[job.job_id] = job
            unprocessed: dict[str, Any] = dict(response.get("UnprocessedKeys") or {})
            if not unprocessed.get(self._table_name, {}).get("Keys"):
                return found
            request = unprocessed
            if pause is not None:
                time.sleep(pause * random.uniform(0.5, 1))  # noqa: S311  jitter, not security
        raise ListingUnavailable("the job store is busy; retry later")

    # -- writes ------------------------------------------------------------------------

    def create(self, job: Job) -> None:
        """Store a new PENDING job; fails if the id exists (uuid4 makes that a bug, not a race)."""
        item = new_job_item(job)
        # Set from the start so that even a job nobody ever finishes expires eventually.
        item["expires_at"] = _epoch(self._retention_seconds)
        item[ACTIVE_SHARD] = str(shard_of(job.job_id, ACTIVE_SHARDS))
        item[STUCK_AFTER] = _epoch(self._stuck_after_seconds)
        item.update(owner_index_keys(job.owner, job.job_id, job.created_at))
        self._client.put_item(
            TableName=self._table_name, Item=to_attributes(item), ConditionExpression="attribute_not_exists(job_id)"
        )

    def claim(self, job_id: str, attempt_id: str, lease_seconds: int, *, repeat_counts: bool = True) -> Job | None:
        """Make ``attempt_id`` the owner of the job and count the attempt.

        Allowed when the job is PENDING, when the same attempt id claims it again, or when
        the previous owner's lease has run out (that attempt is certainly dead, because the
        lease outlasts the function timeout). A repeat by the same id counts as another
        attempt when ``repeat_counts`` (Lambda keeps the request id across its retries);
        a workflow passes False, because its execution is one attempt and its claiming step
        runs again only when its checkpoint was lost to a crash.
        Returns the claimed job, or None when another attempt owns it or it is finished.
        """
        now = _epoch()
        names = {"#status": "status"}
        values: dict[str, Any] = {
            ":running": JobStatus.RUNNING.value,
            ":attempt": attempt_id,
            ":now": now,
            ":lease": now + lease_seconds,
            ":zero": 0,
            ":one": 1,
            ":updated": iso(utc_now()),
        }
        ours = "attempt_id = :attempt OR " if repeat_counts else ""
        condition = (
            f"attribute_exists(job_id) AND {_status_in(JobStatus.RUNNING, values)} AND "
            f"(#status <> :running OR {ours}lease_expires_at < :now)"
        )
        if not repeat_counts:
            condition += " AND (attribute_not_exists(attempt_id) OR attempt_id <> :attempt)"
        try:
            response = self._client.update_item(
                TableName=self._table_name,
                Key=_key(job_id),
                UpdateExpression=(
                    "SET #status = :running, attempt_id = :attempt, lease_expires_at = :lease, "
                    "attempts = if_not_exists(attempts, :zero) + :one, updated_at = :updated"
                ),
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_attributes(values),
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if not _is_condition_failure(error):
                raise
            if repeat_counts:
                return None
            # Already ours: renew the lease without counting another attempt.
            renewed = self._update(
                job_id,
                "SET lease_expires_at = :lease, updated_at = :updated",
                {":running": JobStatus.RUNNING.value, ":attempt": attempt_id, ":lease": now + lease_seconds},
                "#status = :running AND attempt_id = :attempt",
                return_item=True,
            )
            return job_from_item(renewed) if renewed else None
        return job_from_item(from_attributes(response["Attributes"]))

    def report_progress(self, job_id: str, attempt_id: str, progress: Progress) -> bool:
        """Record progress; False when this attempt no longer owns a running job."""
        expression = "SET progress_percent = :percent, updated_at = :updated"
        values: dict[str, Any] = {":percent": progress.percent}
        if progress.message:
            expression += ", progress_message = :message"
            values[":message"] = progress.message
        else:
            expression += " REMOVE progress_message"
        return self._update_owned(job_id, attempt_id, expression, values)

    def enter_step(self, job_id: str, attempt_id: str, step: str) -> bool:
        """Record the workflow step the owning attempt is in; False when it no longer owns the job."""
        return self._update_owned(job_id, attempt_id, "SET step = :step, updated_at = :updated", {":step": step})

    def record_execution(self, job_id: str, attempt_id: str, execution_arn: str) -> bool:
        """Note the durable execution running the job (``dispatch=durable``), which cancel stops."""
        return self._update_owned(
            job_id, attempt_id, "SET execution_arn = :arn, updated_at = :updated", {":arn": execution_arn}
        )

    def record_attempt_error(self, job_id: str, attempt_id: str, error: JobError) -> bool:
        """Note why an attempt gave up, leaving the job RUNNING for Lambda's retry."""
        return self._update_owned(
            job_id,
            attempt_id,
            "SET last_error_type = :type, last_error_message = :message, updated_at = :updated",
            {":type": error.type, ":message": error.message},
        )

    def complete(self, job_id: str, attempt_id: str, result: StoredResult) -> bool:
        """RUNNING -> COMPLETED with the result (inline JSON, or where it is stored); only
        the owning attempt may do this."""
        values: dict[str, Any] = {
            ":target": JobStatus.COMPLETED.value,
            ":hundred": 100,
            ":expires": _epoch(self._retention_seconds),
            ":bytes": result.size,
        }
        if result.location is None:
            stored = "#result = :result"
            values[":result"] = result.inline_json
        else:
            stored = "result_location = :location"
            values[":location"] = result.location
        return self._update_owned(
            job_id,
            attempt_id,
            f"SET #status = :target, {stored}, result_bytes = :bytes, progress_percent = :hundred, "
            "updated_at = :updated, expires_at = :expires "
            f"REMOVE lease_expires_at, progress_message, {LEAVE_ACTIVE_INDEX}",
            values,
            extra_names={"#result": "result"} if result.location is None else None,
        )

    def fail(self, job_id: str, error: JobError, attempt_id: str | None = None) -> bool:
        """Move the job to FAILED with ``error``.

        With ``attempt_id``, only that attempt's running job may fail; without it (the
        dispatcher and the on-failure recorder, which own no attempt) any job that is not
        finished yet may. Returns False when nothing changed.
        """
        values: dict[str, Any] = {
            ":target": JobStatus.FAILED.value,
            ":type": error.type,
            ":message": error.message,
            ":expires": _epoch(self._retention_seconds),
        }
        expression = (
            "SET #status = :target, error_type = :type, error_message = :message, "
            f"updated_at = :updated, expires_at = :expires REMOVE lease_expires_at, {LEAVE_ACTIVE_INDEX}"
        )
        if attempt_id is not None:
            return self._update_owned(job_id, attempt_id, expression, values)
        condition = (
            f"attribute_exists(job_id) AND {_status_in(JobStatus.FAILED, values)} "
            "AND attribute_not_exists(cancel_requested_at)"
        )
        return self._update(job_id, expression, values, condition) is not None

    def request_cancel(self, job_id: str, owner: str) -> Job | None:
        """The owner's cancel request: a PENDING job becomes CANCELLED at once; a RUNNING one
        is marked ``cancel_requested`` for its worker to stop. Returns the job as it is
        afterwards (a finished job unchanged), or None when ``owner`` has no such job."""
        values: dict[str, Any] = {
            ":owner": owner,
            ":pending": JobStatus.PENDING.value,
            ":target": JobStatus.CANCELLED.value,
            ":expires": _epoch(self._retention_seconds),
            ":now": iso(utc_now()),
        }
        cancelled = self._update(
            job_id,
            "SET #status = :target, cancel_requested_at = :now, updated_at = :updated, expires_at = :expires "
            f"REMOVE {LEAVE_ACTIVE_INDEX}",
            values,
            "#status = :pending AND #owner = :owner",
            {"#owner": "owner"},
            return_item=True,
        )
        if cancelled is not None:
            return job_from_item(cancelled)
        values = {":owner": owner, ":running": JobStatus.RUNNING.value, ":now": iso(utc_now())}
        requested = self._update(
            job_id,
            "SET cancel_requested_at = if_not_exists(cancel_requested_at, :now), updated_at = :updated",
            values,
            "#status = :running AND #owner = :owner",
            {"#owner": "owner"},
            return_item=True,
        )
        if requested is not None:
            return job_from_item(requested)
        job = self.get(job_id)
        return job if job is not None and job.owner == owner else None

    def cancel(self, job_id: str, attempt_id: str | None = None) -> bool:
        """RUNNING -> CANCELLED for a job whose owner asked to cancel it.

        With ``attempt_id`` only the owning attempt may (the worker noticing the request);
        without it any such job may (the on-failure recorder, after the worker died).
        """
        values: dict[str, Any] = {
            ":target": JobStatus.CANCELLED.value,
            ":running": JobStatus.RUNNING.value,
            ":expires": _epoch(self._retention_seconds),
        }
        condition = "#status = :running AND attribute_exists(cancel_requested_at)"
        if attempt_id is not None:
            condition += " AND attempt_id = :attempt"
            values[":attempt"] = attempt_id
        expression = (
            "SET #status = :target, updated_at = :updated, expires_at = :expires "
            f"REMOVE lease_expires_at, {LEAVE_ACTIVE_INDEX}"
        )
        return self._update(job_id, expression, values, condition) is not None

    def record_callback(self, job_id: str, record: CallbackRecord) -> bool:
        """Note what became of a finished job's callback. Conditional on the job still
        being there (it may have expired meanwhile); never changes its status."""
        values: dict[str, Any] = {
            ":status": record.status,
            ":attempts": record.attempts,
            ":at": record.at,
        }
        expression = (
            "SET callback_status = :status, callback_attempts = :attempts, callback_at = :at, updated_at = :updated"
        )
        if record.response_status is not None:
            expression += ", callback_response_status = :response"
            values[":response"] = record.response_status
        if record.error:
            expression += ", callback_error = :error"
            values[":error"] = record.error
        return self._update(job_id, expression, values, "attribute_exists(job_id)") is not None

    # -- the reaper --------------------------------------------------------------------

    def find_stuck(self, now: int, limit: int) -> list[str]:
        """Ids of up to ``limit`` unfinished jobs whose deadline (``stuck_after``) is past.

        Queries each shard of the sparse index (keys only): cost follows the number of
        unfinished jobs, never the size of the table.
        """
        found: list[str] = []
        for shard in range(ACTIVE_SHARDS):
            query: dict[str, Any] = {
                "TableName": self._table_name,
                "IndexName": ACTIVE_INDEX,
                "KeyConditionExpression": f"{ACTIVE_SHARD} = :shard AND {STUCK_AFTER} <= :now",
                "ExpressionAttributeValues": to_attributes({":shard": str(shard), ":now": now}),
            }
            while len(found) < limit:
                page = self._client.query(**query, Limit=limit - len(found))
                found.extend(str(from_attributes(item)["job_id"]) for item in page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    break
                query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return found

    def expire(self, job_id: str, now: int, error: JobError) -> JobStatus | None:
        """End a job still unfinished past its deadline: CANCELLED if its owner had asked,
        else FAILED with ``error``. None when it finished (or moved on) meanwhile."""
        values: dict[str, Any] = {
            ":target": JobStatus.FAILED.value,
            ":type": error.type,
            ":message": error.message,
            ":expires": _epoch(self._retention_seconds),
            ":now": now,
        }
        unfinished = f"{_status_in(JobStatus.FAILED, values)} AND {STUCK_AFTER} <= :now"
        failed = self._update(
            job_id,
            "SET #status = :target, error_type = :type, error_message = :message, updated_at = :updated, "
            f"expires_at = :expires REMOVE lease_expires_at, {LEAVE_ACTIVE_INDEX}",
            values,
            f"{unfinished} AND attribute_not_exists(cancel_requested_at)",
        )
        if failed is not None:
            return JobStatus.FAILED
        values = {":target": JobStatus.CANCELLED.value, ":expires": values[":expires"], ":now": now}
        cancelled = self._update(
            job_id,
            f"SET #status = :target, updated_at = :updated, expires_at = :expires "
            f"REMOVE lease_expires_at, {LEAVE_ACTIVE_INDEX}",
            values,
            f"{_status_in(JobStatus.CANCELLED, values)} AND {STUCK_AFTER} <= :now "
            "AND attribute_exists(cancel_requested_at)",
        )
        return JobStatus.CANCELLED if cancelled is not None else None

    # -- helpers -----------------------------------------------------------------------

    def _update_owned(
        self,
        job_id: str,
        attempt_id: str,
        expression: str,
        values: dict[str, Any],
        extra_names: dict[str, str] | None = None,
    ) -> bool:
        """An update by the attempt that owns the running job, unless its owner asked to
        cancel it: from then on only :meth:`cancel` may end the job."""
        values = {**values, ":running": JobStatus.RUNNING.value, ":attempt": attempt_id}
        condition = "#status = :running AND attempt_id = :attempt AND attribute_not_exists(cancel_requested_at)"
        return self._update(job_id, expression, values, condition, extra_names) is not None

    def _update(
        self,
        job_id: str,
        expression: str,
        values: dict[str, Any],
        condition: str,
        extra_names: dict[str, str] | None = None,
        return_item: bool = False,
    ) -> dict[str, Any] | None:
        """One conditional UpdateItem. None when the condition did not hold; otherwise the
        item as it is afterwards if ``return_item``, else an empty dict."""
        values = {**values, ":updated": iso(utc_now())}
        names = {**({"#status": "status"} if "#status" in expression + condition else {}), **(extra_names or {})}
        # DynamoDB refuses an empty ExpressionAttributeNames (ValidationException): send none then.
        named: dict[str, Any] = {"ExpressionAttributeNames": names} if names else {}
        try:
            response = self._client.update_item(
                TableName=self._table_name,
                Key=_key(job_id),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues=to_attributes(values),
                ReturnValues="ALL_NEW" if return_item else "NONE",
                **named,
            )
        except ClientError as error:
            if _is_condition_failure(error):
                return None
            raise
        return from_attributes(response.get("Attributes", {}))


def _key(job_id: str) -> dict[str, Any]:
    return {"job_id": {"S": job_id}}
