"""What the API does, independent of HTTP: submit a job, look one up, list or cancel jobs for their owner."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from jobs.model import Job, JobError, JobStatus, is_job_id, new_job_id

if TYPE_CHECKING:
    from jobs.callbacks import CallbackPolicy
    from jobs.registry import TaskDefinition


class JobsError(Exception):
    """Base of the errors a client can cause or see; each maps to one HTTP status."""


class UnknownTask(JobsError):
    pass


class InvalidTaskInput(JobsError):
    pass


class InvalidJobId(JobsError):
    pass


class JobNotFound(JobsError):
    pass


class DispatchFailed(JobsError):
    pass


class JobAlreadyFinished(JobsError):
    pass


class InvalidListQuery(JobsError):
    pass


class InvalidCallbackUrl(JobsError):
    pass


class ListingUnavailable(JobsError):
    """Retryable (the store raises it): the listing index is still being built, or the
    job store keeps leaving keys unread."""


DEFAULT_LIST_LIMIT = 20
MAX_LIST_LIMIT = 100
# As model.iso writes it (ASCII digits only: \d would take any script's digits, and $ a final newline).
ISO_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")


class JobStore(Protocol):
    def create(self, job: Job) -> None: ...
    def get(self, job_id: str) -> Job | None: ...
    def fail(self, job_id: str, error: JobError, attempt_id: str | None = None) -> bool: ...
    def request_cancel(self, job_id: str, owner: str) -> Job | None: ...
    def cancel(self, job_id: str, attempt_id: str | None = None) -> bool: ...
    def list_for_owner(
        self, owner: str, status: JobStatus | None, limit: int, start_after: dict[str, str] | None
    ) -> tuple[list[Job], dict[str, str] | None]: ...


class ResultLinks(Protocol):
    @property
    def url_expiry_seconds(self) -> int: ...

    def presign(self, location: str) -> str: ...


class Dispatcher(Protocol):
    def dispatch(self, job_id: str, correlation_id: str | None) -> None: ...


class ExecutionStopper(Protocol):
    def stop(self, execution_arn: str) -> bool: ...


def job_view(job: Job, results: ResultLinks | None) -> dict[str, Any]:
    """The job as its owner sees it (the API's answers, the callback's body); a result
    stored outside the item becomes a short-lived presigned ``result_url`` (fetch it
    without signing, before it expires)."""
    view = job.to_public_dict()
    if job.status is JobStatus.COMPLETED and job.result_location is not None:
        if results is None:
            raise RuntimeError("job_view needs result links for stored results")
        view["result_url"] = results.presign(job.result_location)
        view["result_url_expires_in"] = results.url_expiry_seconds
        view["result_bytes"] = job.result_bytes
    return view


class JobService:
    def __init__(
        self,
        store: JobStore,
        dispatcher: Dispatcher | None = None,
        results: ResultLinks | None = None,
        callback_policy: CallbackPolicy | None = None,
        tasks: Mapping[str, TaskDefinition] | None = None,
        executions: ExecutionStopper | None = None,
    ) -> None:
        """``tasks`` and ``dispatcher`` are needed to submit (the status and cancel
        functions build a service without them: their cold starts load no task module);
        ``executions`` stops a cancelled job's durable execution (``dispatch=durable``)."""
        self._store = store
        self._executions = executions
        self._tasks: Mapping[str, TaskDefinition] = tasks or {}
        self._dispatcher = dispatcher
        self._results = results
        self._callback_policy = callback_policy  # None: the strict default

    def view(self, job: Job) -> dict[str, Any]:
        """The job as its owner sees it (see :func:`job_view`)."""
        return job_view(job, self._results)

    def submit(
        self,
        owner: str,
        task: str,
        task_input: dict[str, Any],
        correlation_id: str | None,
        callback_url: str | None = None,
    ) -> Job:
        """Check the task, its input and the callback URL, store the job as PENDING and hand
        it to the worker.

        If the hand-over fails the job is recorded FAILED at once (nobody would ever run
        it) and :class:`DispatchFailed` tells the caller to retry.
        """
        # Imported here: only submissions check inputs and callback URLs, and the status and
        # cancel functions' cold starts need not load them (see bench/cold_start.py).
        from aws_lambda_powertools.utilities.validation import SchemaValidationError, validate  # noqa: PLC0415

        from jobs.callbacks import CallbackPolicy, UnsafeCallbackUrl, check_callback_url  # noqa: PLC0415

        definition = self._tasks.get(task)
        if definition is None:
            known = ", ".join(sorted(self._tasks))
            raise UnknownTask(f"unknown task {task!r}; registered tasks: {known}")
        try:
            validate(event=task_input, schema=definition.input_schema)
        except SchemaValidationError as error:
            raise InvalidTaskInput(f"invalid input for task {task!r}: {error}") from error
        if callback_url is not None:
            try:
                # Kept as it will be called: IDNA host, percent-encoded path and query.
                callback_url = check_callback_url(callback_url, self._callback_policy or CallbackPolicy()).url
            except UnsafeCallbackUrl as error:
                raise InvalidCallbackUrl(str(error)) from None

        if self._dispatcher is None:
            raise RuntimeError("JobService.submit needs a dispatcher")
        job = Job(
            job_id=new_job_id(),
            owner=owner,
            task=task,
            input=task_input,
            correlation_id=correlation_id,
            callback_url=callback_url,
        )
        self._store.create(job)
        try:
            self._dispatcher.dispatch(job.job_id, correlation_id)
        except Exception as error:
            self._store.fail(job.job_id, JobError("DispatchFailed", "the job could not be handed to the worker"))
            raise DispatchFailed("the job could not be started; please retry") from error
        return job

    def get_for_owner(self, owner: str, job_id: str) -> Job:
        """The job, if it exists and belongs to ``owner``; otherwise :class:`JobNotFound`.

        Someone else's job is reported exactly like a missing one, so that job ids of
        other callers cannot be confirmed.
        """
        _check_job_id(job_id)
        job = self._store.get(job_id)
        if job is None or job.owner != owner:
            raise JobNotFound(f"job {job_id} not found")
        return job

    def cancel_for_owner(self, owner: str, job_id: str) -> Job:
        """Cancel the owner's job: a PENDING one is CANCELLED at once, a RUNNING one is
        marked ``cancel_requested`` and stopped by its worker at the next progress report.
        Asking again is harmless (DELETE is idempotent); a COMPLETED or FAILED job raises
        :class:`JobAlreadyFinished`."""
        _check_job_id(job_id)
        job = self._store.request_cancel(job_id, owner)
        if job is None:
            raise JobNotFound(f"job {job_id} not found")
        if job.status in (JobStatus.COMPLETED, JobStatus.FAILED):
            raise JobAlreadyFinished(f"job {job_id} already finished as {job.status.value}")
        # A durable job may be waiting for hours, with no progress report to notice the
        # request: stop its execution, then record what its owner asked for.
        if (
            job.status is JobStatus.RUNNING
            and job.execution_arn
            and self._executions is not None
            and self._executions.stop(job.execution_arn)
            and self._store.cancel(job_id)
        ):
            job = replace(job, status=JobStatus.CANCELLED)
        return job

    def list_for_owner(
        self, owner: str, status: str | None = None, limit: str | None = None, next_token: str | None = None
    ) -> tuple[list[Job], str | None]:
        """The owner's jobs, newest first, a page at a time; the query parameters as given.

        Returns the page and the ``next_token`` for the following one (None on the last).
        """
        wanted = _parse_status(status)
        count = _parse_limit(limit)
        start_after = decode_next_token(next_token) if next_token else None
        jobs, position = self._store.list_for_owner(owner, wanted, count, start_after)
        return jobs, encode_next_token(position) if position else None


def _parse_status(raw: str | None) -> JobStatus | None:
    if raw is None or raw == "":
        return None
    try:
        if not raw.isascii():  # a dotless i upper-cases to I: "PENDING" spelled otherwise
            raise ValueError(raw)
        return JobStatus(raw.upper())
    except ValueError:
        names = ", ".join(status.value for status in JobStatus)
        raise InvalidListQuery(f"status must be one of {names}") from None


# ASCII digits only: str.isdigit() also takes "²" (which int() refuses) and other scripts'
# digits (which int() reads), and int() of thousands of digits raises past Python's
# integer-string limit.
LIMIT = re.compile(r"[0-9]{1,4}")


def _parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIST_LIMIT
    if not LIMIT.fullmatch(raw) or not 1 <= int(raw) <= MAX_LIST_LIMIT:
        raise InvalidListQuery(f"limit must be a whole number from 1 to {MAX_LIST_LIMIT}")
    return int(raw)


def encode_next_token(position: dict[str, str]) -> str:
    """An opaque continuation token. It holds no owner: that always comes from the caller's
    identity, so a token cannot open anyone else's jobs."""
    raw = json.dumps({"job_id": position["job_id"], "created_at": position["created_at"]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_next_token(token: str) -> dict[str, str]:
    invalid = InvalidListQuery("next_token is invalid; pass the value a previous listing returned")
    if len(token) > 200:
        raise invalid
    try:
        position = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        raise invalid from None
    if (
        not isinstance(position, dict)
        or set(position) != {"job_id", "created_at"}
        or not isinstance(position["job_id"], str)
        or not is_job_id(position["job_id"])
        or not isinstance(position["created_at"], str)
        or not ISO_TIMESTAMP.fullmatch(position["created_at"])
    ):
        raise invalid
    return position


def _check_job_id(job_id: str) -> None:
    if not is_job_id(job_id):
        raise InvalidJobId("job_id must be a UUID")
