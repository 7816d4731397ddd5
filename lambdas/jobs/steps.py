"""A job as workflow steps (``dispatch=stepfunctions``): prepare → process → finalise.

The Standard state machine (``stacks/workflow.py``) calls one Lambda function per step
and records a failure with :meth:`StepRunner.record_failure`. The execution's name is the
job id (Step Functions refuses a second execution of the same name, so a job starts at
most once) and it is the attempt id: only this execution may write the job. Each step
records itself on the job (``step``), so ``GET /jobs/{id}`` shows where the job is, and
where it failed. The task itself runs exactly as with the other dispatchers
(``JobRunner.execute``); only the transport and the retries (the state machine's) differ.

A task that fails (``TaskFailed``, its own bug, a result that cannot be kept) fails the
job in the step itself, which answers ``FAILED``: an ordinary failed job is not a Lambda
error (no alarm). ``TransientTaskError`` and :class:`TimedOut` are raised for the state
machine to retry with backoff; anything else raised (the step's own trouble) is caught by
the state machine and recorded by :meth:`StepRunner.record_failure`: the exception's class
name becomes the job's ``error.type``, its message the ``error.message``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from jobs.deadline import AttemptTimedOut
from jobs.model import Job, JobError, StoredResult
from jobs.progress import JobNoLongerOwned
from jobs.registry import TaskDefinition, TransientTaskError
from jobs.runner import JobRunner, Outcome, ResultRejected, WorkerStore, task_failure, unknown_task

logger = Logger(child=True)

PREPARE = "prepare"
PROCESS = "process"
FINALISE = "finalise"
# What a step answers in "outcome": READY / PROCESSED move on; the Outcome values end the workflow.
READY = "READY"
PROCESSED = "PROCESSED"


class TimedOut(Exception):
    """The process step ran out of time. Raised instead of ``AttemptTimedOut``, a
    ``BaseException``: Lambda's Python runtime catches only ``Exception`` (awslambdaric's
    ``handle_event_request``), so a ``BaseException`` kills the process and the state
    machine sees ``Runtime.ExitError``, which its Retry on this name never matches."""


class StepStore(WorkerStore, Protocol):
    def enter_step(self, job_id: str, attempt_id: str, step: str) -> bool: ...


class StepRunner:
    def __init__(
        self,
        runner: JobRunner,
        store: StepStore,
        tasks: Mapping[str, TaskDefinition],
        lease_seconds: int,
        timeout_margin_seconds: float,
    ) -> None:
        """``lease_seconds``: how long the execution owns the job (its whole run, not one step)."""
        self._runner = runner
        self._store = store
        self._tasks = tasks
        self._lease_seconds = lease_seconds
        self._timeout_margin = timeout_margin_seconds

    def prepare(self, job_id: str, execution: str) -> dict[str, Any]:
        """Claim the job for this execution and check it can run."""
        existing = self._store.get(job_id)
        if existing is None or existing.status.is_terminal:
            return {"outcome": Outcome.SKIPPED.value}
        # One execution is one attempt: this step runs again only when a crash lost its
        # checkpoint after the claim, and that is not another attempt.
        job = self._store.claim(job_id, execution, self._lease_seconds, repeat_counts=False)
        if job is None:
            return {"outcome": Outcome.SKIPPED.value}
        if job.cancel_requested or not self._store.enter_step(job_id, execution, PREPARE):
            return self._stop(job, execution)
        if job.task not in self._tasks:
            return self._fail(job, execution, unknown_task(job))
        return {"outcome": READY}

    def process(self, job_id: str, execution: str, remaining_seconds: Callable[[], float]) -> dict[str, Any]:
        """Run the task; the result is kept aside (inline, or in the result store) for finalise."""
        job = self._owned(job_id, execution, PROCESS)
        if isinstance(job, dict):
            return job
        budget = remaining_seconds() - self._timeout_margin
        try:
            result = self._runner.execute(job, execution, budget)
            stored = self._runner.store_result(job, execution, result)
        except AttemptTimedOut:
            # The state machine retries it (its Retry names TimedOut), then records it FAILED.
            raise TimedOut(f"the process step timed out after {max(budget, 0):.0f} s") from None
        except JobNoLongerOwned:
            return self._stop(job, execution)
        except TransientTaskError:
            raise  # the state machine retries it
        except ResultRejected as rejected:
            return self._fail(job, execution, rejected.error)
        except Exception as exc:  # TaskFailed, or the task's own bug: the job fails
            return self._fail(job, execution, task_failure(exc))
        return {
            "outcome": PROCESSED,
            "result": stored.to_dict(),
        }

    def finalise(self, job_id: str, execution: str, result: Mapping[str, Any]) -> dict[str, Any]:
        """Record the job COMPLETED with the result process kept."""
        job = self._owned(job_id, execution, FINALISE)
        if isinstance(job, dict):
            return job
        stored = StoredResult.from_dict(result)
        if not self._store.complete(job_id, execution, stored):
            return self._stop(job, execution)
        return {"outcome": Outcome.COMPLETED.value}

    def record_failure(self, job_id: str, execution: str, step: str, error: str, cause: str | None) -> dict[str, Any]:
        """A step failed for good: FAILED with the step's error (CANCELLED if its owner had asked)."""
        self._store.enter_step(job_id, execution, step)  # where it failed, when the job is still ours
        failure = JobError(error or "StepFailed", _message_of(cause))
        if self._store.fail(job_id, failure, execution) or self._store.fail(job_id, failure):
            logger.info("job failed", extra={"step": step, "error": failure.to_dict()})
            return {"outcome": Outcome.FAILED.value}
        if self._store.cancel(job_id):
            return {"outcome": Outcome.CANCELLED.value}
        return {"outcome": Outcome.SKIPPED.value}

    def _owned(self, job_id: str, execution: str, step: str) -> Job | dict[str, Any]:
        """The job if this execution still owns it (and now records ``step``), else the step's answer."""
        job = self._store.get(job_id)
        if job is None or job.status.is_terminal:
            return {"outcome": Outcome.SKIPPED.value}
        if not self._store.enter_step(job_id, execution, step):
            return self._stop(job, execution)
        return job

    def _fail(self, job: Job, execution: str, error: JobError) -> dict[str, Any]:
        return {"outcome": self._runner.fail(job, execution, error).outcome.value}

    def _stop(self, job: Job, execution: str) -> dict[str, Any]:
        return {"outcome": self._runner.stop(job, execution).outcome.value}


def _message_of(cause: str | None) -> str:
    """The error message inside a state's ``Cause`` (a Lambda error's JSON), or the cause as is."""
    if not cause:
        return "the step failed"
    try:
        parsed = json.loads(cause)
    except ValueError:
        return cause[:1000]
    if isinstance(parsed, dict) and parsed.get("errorMessage"):
        return str(parsed["errorMessage"])[:1000]
    return cause[:1000]
