"""Runs one delivery of a job: claim it, run its task within the time left, record the end.

Lambda delivers asynchronous events at least once and retries failed attempts, so this
code assumes any event may arrive twice, late, or after the job has finished:

* a finished job, or one another live attempt owns, is left alone (``SKIPPED``);
* the task runs under a deadline a safety margin short of the function timeout, so a
  slow attempt is recorded as timed out instead of vanishing when Lambda kills it;
* only the attempt that claimed the job can complete or fail it;
* once the owner asks to cancel a running job, every write of the attempt is refused; the
  attempt notices at its next progress report (or when it ends) and records CANCELLED.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from jobs import strict_json
from jobs.deadline import AttemptTimedOut, deadline
from jobs.model import Job, JobError, Progress, StoredResult
from jobs.progress import JobNoLongerOwned, ProgressReporter
from jobs.registry import TaskDefinition, TaskFailed, TransientTaskError

logger = Logger(child=True)

# How long after an attempt's own deadline its claim may be taken over by another
# delivery of the same job: by then Lambda has certainly ended that attempt.
LEASE_SLACK_SECONDS = 60


class Outcome(StrEnum):
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    SKIPPED = "SKIPPED"


class AttemptFailed(Exception):
    """Raised to Lambda so it retries the event, or, after the last retry, sends it to the
    on-failure destination (the dead-letter queue). ``final`` is True on the last attempt,
    when the job has already been recorded FAILED."""

    def __init__(self, error: JobError, final: bool) -> None:
        super().__init__(f"{error.type}: {error.message}")
        self.error = error
        self.final = final


class ResultRejected(Exception):
    """The task's result cannot be kept (not JSON, or too large); the job fails with ``error``."""

    def __init__(self, error: JobError) -> None:
        super().__init__(error.message)
        self.error = error


def task_failure(exc: Exception) -> JobError:
    """The error a failed job shows for what its task raised: ``TaskFailed`` with the task's
    message, or, for any other exception (the task's own bug), its class name and message;
    the trace of that goes to the logs only."""
    if isinstance(exc, TaskFailed):
        return JobError("TaskFailed", str(exc))
    logger.exception("task raised")
    return JobError(type(exc).__name__, str(exc) or "the task raised an error")


def unknown_task(job: Job) -> JobError:
    """The error of a job whose task is not (or no longer) registered."""
    return JobError("UnknownTask", f"task {job.task!r} is not registered")


class WorkerStore(Protocol):
    def get(self, job_id: str) -> Job | None: ...
    def claim(self, job_id: str, attempt_id: str, lease_seconds: int, *, repeat_counts: bool = True) -> Job | None: ...
    def report_progress(self, job_id: str, attempt_id: str, progress: Progress) -> bool: ...
    def record_attempt_error(self, job_id: str, attempt_id: str, error: JobError) -> bool: ...
    def complete(self, job_id: str, attempt_id: str, result: StoredResult) -> bool: ...
    def fail(self, job_id: str, error: JobError, attempt_id: str | None = None) -> bool: ...
    def cancel(self, job_id: str, attempt_id: str | None = None) -> bool: ...


class ResultStore(Protocol):
    """Where results too large for the job item go (S3 in AWS)."""

    def put(self, job_id: str, attempt_id: str, body: bytes) -> str: ...


@dataclass(frozen=True)
class RunReport:
    outcome: Outcome
    job: Job | None = None
    duration_seconds: float = 0.0
    error: JobError | None = None


class JobRunner:
    def __init__(
        self,
        store: WorkerStore,
        tasks: Mapping[str, TaskDefinition],
        max_attempts: int,
        max_result_bytes: int,
        progress_min_interval: float,
        timeout_margin_seconds: float,
        max_inline_result_bytes: int | None = None,
        results: ResultStore | None = None,
    ) -> None:
        """Results up to ``max_inline_result_bytes`` are kept on the job item; larger ones,
        up to ``max_result_bytes``, go to ``results`` (with none, the inline limit is the limit)."""
        self._store = store
        self._tasks = tasks
        self._max_attempts = max_attempts
        self._max_inline_result_bytes = min(max_inline_result_bytes or max_result_bytes, max_result_bytes)
        self._max_result_bytes = max_result_bytes if results is not None else self._max_inline_result_bytes
        self._results = results
        self._progress_min_interval = progress_min_interval
        self._timeout_margin = timeout_margin_seconds

    def run(self, job_id: str, attempt_id: str, remaining_seconds: Callable[[], float]) -> RunReport:
        """Run the job ``job_id`` as the attempt ``attempt_id`` (the Lambda request id)."""
        existing = self._store.get(job_id)
        if existing is None:
            logger.warning("job not found; nothing to run", extra={"job_id": job_id})
            return RunReport(Outcome.SKIPPED)
        if existing.status.is_terminal:
            logger.info("job already finished; duplicate delivery ignored", extra={"status": existing.status})
            return RunReport(Outcome.SKIPPED, existing)

        lease = int(remaining_seconds()) + LEASE_SLACK_SECONDS
        job = self._store.claim(job_id, attempt_id, lease)
        if job is None:
            logger.info("job is owned by another live attempt or finished; skipping")
            return RunReport(Outcome.SKIPPED, existing)
        logger.append_keys(job_id=job_id, task=job.task, attempt=job.attempts)
        if job.cancel_requested:  # asked while an earlier attempt ran, which then died
            return self._stop(job, attempt_id, 0)

        if job.task not in self._tasks:
            return self._fail(job, attempt_id, unknown_task(job), 0)

        budget = remaining_seconds() - self._timeout_margin
        started = time.monotonic()
        try:
            result = self.execute(job, attempt_id, budget)
        except AttemptTimedOut:
            error = JobError(
                "TimedOut",
                f"attempt {job.attempts} of {self._max_attempts} timed out after {max(budget, 0):.0f} s",
            )
            return self._give_up_attempt(job, attempt_id, error)
        except JobNoLongerOwned:
            return self._stop(job, attempt_id, time.monotonic() - started)
        except TransientTaskError as exc:
            return self._give_up_attempt(job, attempt_id, JobError("TransientTaskError", str(exc)))
        except Exception as exc:  # TaskFailed, or the task's own bug: the job fails
            return self._fail(job, attempt_id, task_failure(exc), time.monotonic() - started)
        duration = time.monotonic() - started
        try:
            stored = self.store_result(job, attempt_id, result)
        except ResultRejected as rejected:
            return self._fail(job, attempt_id, rejected.error, duration)
        if not self._store.complete(job.job_id, attempt_id, stored):
            return self._stop(job, attempt_id, duration)
        logger.info("job completed", extra={"duration_seconds": round(duration, 3)})
        return RunReport(Outcome.COMPLETED, job, duration)

    def execute(self, job: Job, attempt_id: str, budget_seconds: float) -> Any:
        """Run the job's task within ``budget_seconds``, reporting progress as ``attempt_id``.

        Raises what the task raises (``TaskFailed``, ``TransientTaskError``, its own bugs),
        ``AttemptTimedOut`` past the budget and ``JobNoLongerOwned`` once the attempt may no
        longer write the job (cancelled, or taken over)."""
        definition = self._tasks[job.task]
        reporter = ProgressReporter(
            lambda progress: self._store.report_progress(job.job_id, attempt_id, progress),
            self._progress_min_interval,
        )
        with deadline(budget_seconds):
            return definition.function(job.input, reporter)

    def store_result(self, job: Job, attempt_id: str, result: Any) -> StoredResult:
        """The result as it will be kept: inline JSON, or written to the result store first
        (so a completed job's result always exists). Raises :class:`ResultRejected` for a
        result that is not strict JSON (``jobs/strict_json.py``: the API, callbacks and pushes
        promise JSON that any parser reads back) or too large."""
        try:
            text = strict_json.dumps(result)
        except strict_json.NotStrictJson as exc:
            raise ResultRejected(JobError("ResultNotSerializable", f"the result is not JSON: {exc}"[:500])) from None
        body = text.encode()
        size = len(body)
        if size > self._max_result_bytes:
            message = f"result is {size} bytes; the limit is {self._max_result_bytes} bytes"
            raise ResultRejected(JobError("ResultTooLarge", message))
        if size <= self._max_inline_result_bytes or self._results is None:
            return StoredResult(size, inline_json=text)
        return StoredResult(size, location=self._results.put(job.job_id, attempt_id, body))

    def _fail(self, job: Job, attempt_id: str, error: JobError, duration: float) -> RunReport:
        if not self._store.fail(job.job_id, error, attempt_id):
            return self._stop(job, attempt_id, duration)
        logger.info("job failed", extra={"error": error.to_dict()})
        return RunReport(Outcome.FAILED, job, duration, error)

    def _give_up_attempt(self, job: Job, attempt_id: str, error: JobError) -> RunReport:
        """End this attempt so that Lambda retries it; on the last attempt, fail the job first."""
        final = job.attempts >= self._max_attempts
        if final:
            recorded = self._store.fail(job.job_id, error, attempt_id)
        else:
            recorded = self._store.record_attempt_error(job.job_id, attempt_id, error)
        if not recorded:  # cancelled meanwhile (no retry wanted) or no longer ours
            return self._stop(job, attempt_id, 0)
        if final:
            logger.warning("last attempt failed; job failed", extra={"error": error.to_dict()})
        else:
            logger.warning("attempt failed; Lambda will retry", extra={"error": error.to_dict()})
        raise AttemptFailed(error, final)

    def stop(self, job: Job, attempt_id: str, duration: float = 0) -> RunReport:
        """See :meth:`_stop` (for other runners of the same job logic)."""
        return self._stop(job, attempt_id, duration)

    def fail(self, job: Job, attempt_id: str, error: JobError, duration: float = 0) -> RunReport:
        """See :meth:`_fail` (for other runners of the same job logic)."""
        return self._fail(job, attempt_id, error, duration)

    def _stop(self, job: Job, attempt_id: str, duration: float) -> RunReport:
        """This attempt may no longer write the job: either its owner asked to cancel it
        (record CANCELLED) or another attempt took it over or finished it (leave it)."""
        if self._store.cancel(job.job_id, attempt_id):
            logger.info("job cancelled at its owner's request")
            return RunReport(Outcome.CANCELLED, job, duration)
        logger.warning("job was finished or taken over by another attempt; stopping")
        return RunReport(Outcome.SKIPPED, job, duration)
