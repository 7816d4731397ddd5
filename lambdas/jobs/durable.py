"""A job as a Lambda durable execution (``dispatch=durable``): checkpointed steps and waits,
past the 15 minutes one invocation may run.

The submit function invokes the worker's ``live`` alias asynchronously with the job id as
the ``DurableExecutionName`` (Lambda starts one execution per name, so a job starts at most
once). Lambda then invokes the worker as often as the job needs: after each wait, after a
step's retry pause, and after a crash, replaying the handler from the top while every
operation that already finished returns its checkpointed answer instead of running again
(Lambda Developer Guide, "Lambda durable functions"). One execution of a job:

1. ``prepare`` (a step): claim the job for this execution (its name, the job id, is the
   attempt id, so only it may write the job) and note the execution's ARN for cancel.
2. ``attempt-N`` (a child context): run the task with a :class:`DurableProgress`. The
   task's ``progress.step(name, fn)`` calls are durable steps and ``progress.wait(s)`` a
   durable wait; code between them runs again on each replay, so keep it cheap and free
   of side effects. The attempt's answer (the stored result, or why it ended) is
   checkpointed, so a finished attempt never runs again. An attempt that ends with
   ``TransientTaskError`` or runs out of one invocation's time outside a step is followed
   by a pause and another attempt, up to ``max_attempts``: a new attempt starts the task
   over, its steps included (a step's own failures are retried inside the step instead).
3. ``finish`` (a step): record the job COMPLETED, FAILED or CANCELLED.

Time. The SDK runs the handler on a thread of its own, so the SIGALRM deadline of the
other dispatchers (``jobs.deadline``) cannot interrupt a task here. Instead each step runs
at most once per try (``AT_MOST_ONCE_PER_RETRY``): a step whose invocation crashed or timed
out counts as a failed try (``StepInterruptedError``), and ``progress.report`` raises
:class:`StepTimedOut` once fewer than ``timeout_margin_seconds`` are left in the
invocation. Inside a step, those two and ``TransientTaskError`` are retried by the SDK, in
a fresh invocation, up to ``max_attempts`` tries; anything else raised there fails the job.
Code outside steps that neither reports progress nor finishes within one invocation is
invoked again by Lambda until the execution's timeout: keep long work in steps. A failure of the
execution itself (its timeout, the service giving up) is recorded by the on-failure
recorder from Lambda's "Durable Execution Status Change" event, and by the reaper as a
last resort; cancelling a job stops its execution (``jobs.dispatcher.DurableExecutions``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Protocol, TypeVar

from aws_durable_execution_sdk_python.config import Duration, StepConfig, StepSemantics
from aws_durable_execution_sdk_python.context import DurableContext
from aws_durable_execution_sdk_python.exceptions import (
    DurableExecutionsError,
    DurableOperationError,
    RetryableSerDesError,
    SerDesError,
    StepInterruptedError,
)
from aws_durable_execution_sdk_python.retries import RetryStrategyConfig, create_retry_strategy
from aws_durable_execution_sdk_python.types import StepContext
from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from jobs.model import JobError, StoredResult
from jobs.progress import JobNoLongerOwned, ProgressReporter
from jobs.registry import TaskDefinition, TransientTaskError
from jobs.runner import JobRunner, Outcome, ResultRejected, task_failure
from jobs.steps import READY, StepRunner, StepStore

logger = Logger(child=True)
T = TypeVar("T")

PREPARE = "prepare"
FINISH = "finish"
# What an attempt answers (checkpointed with it): how it ended.
COMPLETED, FAILED, TRANSIENT, STOPPED = "completed", "failed", "transient", "stopped"
# The pause before another attempt, and before a step's retry: the SDK's backoff from
# this, doubling, capped, with full jitter.
RETRY_INITIAL_DELAY_SECONDS = 5
RETRY_MAX_DELAY_SECONDS = 300


class StepTimedOut(Exception):
    """The invocation's time is nearly up (raised by ``progress.report``): inside a step, the
    SDK retries the step in a fresh invocation; outside, the attempt ends and another
    follows."""


class DurableStore(StepStore, Protocol):
    def record_execution(self, job_id: str, attempt_id: str, execution_arn: str) -> bool: ...


def remaining_seconds(context: DurableContext) -> float:
    """Seconds left in this invocation (the function's timeout bounds each one)."""
    lambda_context = context.lambda_context
    if lambda_context is None:
        return math.inf
    return float(lambda_context.get_remaining_time_in_millis()) / 1000


def step_config(max_attempts: int) -> StepConfig:
    """Each try of a step runs at most once; a transient failure, a try cut short by a
    crash or the invocation's timeout, or one out of time is tried again, nothing else."""
    return StepConfig(
        retry_strategy=create_retry_strategy(
            RetryStrategyConfig(
                max_attempts=max_attempts,
                initial_delay=Duration.from_seconds(RETRY_INITIAL_DELAY_SECONDS),
                max_delay=Duration.from_seconds(RETRY_MAX_DELAY_SECONDS),
                # AWS calls that failed after botocore's own retries (throttling, a 5XX, a dropped
                # connection) are tried again too: a job's bookkeeping never fails it.
                retryable_error_types=[
                    TransientTaskError,
                    StepTimedOut,
                    StepInterruptedError,
                    BotoCoreError,
                    ClientError,
                ],
            )
        ),
        step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY,
    )


class DurableProgress:
    """What a task gets as ``progress`` under ``dispatch=durable``: ``report`` as anywhere,
    ``step`` checkpointed, ``wait`` without running the function."""

    def __init__(
        self,
        context: DurableContext,
        store: DurableStore,
        job_id: str,
        attempt_id: str,
        reporter: ProgressReporter,
        config: StepConfig,
        timeout_margin_seconds: float,
    ) -> None:
        self._context = context
        self._margin = timeout_margin_seconds
        self._store = store
        self._job_id = job_id
        self._attempt_id = attempt_id
        self._reporter = reporter
        self._config = config

    def report(self, percent: float, message: str | None = None) -> None:
        """Tell the client how far the job is; raises :class:`StepTimedOut` when the
        invocation's time is nearly up (let it propagate)."""
        if remaining_seconds(self._context) < self._margin:
            raise StepTimedOut("the invocation's time is nearly up")
        if self._context.is_replaying():  # a report the job has moved past: do not write it again
            return
        self._reporter.report(percent, message)

    def step(self, name: str, function: Callable[[], T]) -> T:
        """Run ``function()`` as the durable step ``name`` (shown as the job's ``step``): once
        it has returned, its result (JSON, well under 256 KB) is replayed, never recomputed
        (unless a later attempt starts the task over).
        When the invocation's time left looks too short for another such step, the job goes
        on in a fresh invocation (a one-second wait), not in one Lambda would cut short."""

        def run(_: StepContext) -> dict[str, Any]:
            if not self._store.enter_step(self._job_id, self._attempt_id, name):
                raise JobNoLongerOwned("the job is no longer owned by this execution")
            started = remaining_seconds(self._context)
            value = function()
            left = remaining_seconds(self._context)
            # Checkpointed with the value, so that every replay decides the same way: when
            # another step as long as this one would not fit, go on in a fresh invocation.
            return {"value": value, "fresh_invocation": left < self._margin + (started - left)}

        answer = self._context.step(run, name=name, config=self._config)
        if answer["fresh_invocation"]:
            self._context.wait(Duration.from_seconds(1), name="fresh-invocation")
        return answer["value"]  # type: ignore[no-any-return]

    def wait(self, seconds: float) -> None:
        """Pause the job for ``seconds`` (at least 1) without running the function: Lambda
        invokes it again when the wait is over."""
        self._context.wait(Duration.from_seconds(max(1, math.ceil(seconds))), name="wait")


class DurableJobRunner:
    def __init__(
        self,
        runner: JobRunner,
        steps: StepRunner,
        store: DurableStore,
        tasks: Mapping[str, TaskDefinition],
        max_attempts: int,
        progress_min_interval: float,
        timeout_margin_seconds: float,
    ) -> None:
        self._runner = runner
        self._steps = steps
        self._store = store
        self._tasks = tasks
        self._max_attempts = max_attempts
        self._progress_min_interval = progress_min_interval
        self._timeout_margin = timeout_margin_seconds
        self._step_config = step_config(max_attempts)

    def run(self, job_id: str, context: DurableContext) -> dict[str, Any]:
        """Run the job ``job_id`` as this durable execution (named after it); the answer is
        the job's outcome."""
        execution_arn = context.state.durable_execution_arn
        prepared = context.step(lambda _: self._prepare(job_id, execution_arn), name=PREPARE, config=self._step_config)
        if prepared["outcome"] != READY:
            return {"job_id": job_id, "outcome": prepared["outcome"]}
        answer: dict[str, Any] = {}
        for attempt in range(1, self._max_attempts + 1):
            answer = context.run_in_child_context(partial(self._attempt, job_id, attempt), name=f"attempt-{attempt}")
            if answer["outcome"] != TRANSIENT or attempt == self._max_attempts:
                break
            error = JobError.from_dict(answer["error"])
            recorded = context.step(
                lambda _, error=error: self._store.record_attempt_error(job_id, job_id, error),  # type: ignore[misc]
                name="attempt-failed",
                config=self._step_config,
            )
            if not recorded:  # cancelled meanwhile (or no longer ours): no other attempt
                answer = {"outcome": STOPPED}
                break
            pause = min(RETRY_MAX_DELAY_SECONDS, RETRY_INITIAL_DELAY_SECONDS * 2 ** (attempt - 1))
            context.wait(Duration.from_seconds(pause), name="retry-pause")
        outcome: str = context.step(lambda _: self._finish(job_id, answer), name=FINISH, config=self._step_config)
        return {"job_id": job_id, "outcome": outcome}

    def _prepare(self, job_id: str, execution_arn: str) -> dict[str, Any]:
        prepared = self._steps.prepare(job_id, job_id)
        if prepared["outcome"] == READY and not self._store.record_execution(job_id, job_id, execution_arn):
            # Cancelled between the claim and now: the ARN cancel would stop is not on the job.
            job = self._store.get(job_id)
            return {"outcome": self._runner.stop(job, job_id).outcome.value if job else Outcome.SKIPPED.value}
        return prepared

    def _attempt(self, job_id: str, attempt: int, context: DurableContext) -> dict[str, Any]:
        """One attempt at the task; every way it ends becomes a checkpointed answer."""
        try:
            job = self._store.get(job_id)
        except (BotoCoreError, ClientError) as error:
            return _answer(TRANSIENT, JobError("TransientTaskError", f"could not read the job: {error}"))
        if job is None or job.status.is_terminal or job.cancel_requested:
            return {"outcome": STOPPED}
        reporter = ProgressReporter(
            lambda progress: self._store.report_progress(job_id, job_id, progress), self._progress_min_interval
        )
        progress = DurableProgress(
            context, self._store, job_id, job_id, reporter, self._step_config, self._timeout_margin
        )
        try:
            result = self._tasks[job.task].function(job.input, progress)
            stored = self._runner.store_result(job, job_id, result)
        except StepTimedOut:
            message = f"attempt {attempt} of {self._max_attempts} ran out of an invocation's time outside a step"
            return _answer(TRANSIENT, JobError("TimedOut", message))
        except (TransientTaskError, BotoCoreError, ClientError) as exc:  # AWS's own trouble passes too
            return _answer(TRANSIENT, JobError("TransientTaskError", str(exc)))
        except JobNoLongerOwned:
            return {"outcome": STOPPED}
        except ResultRejected as rejected:
            return _answer(FAILED, rejected.error)
        except DurableOperationError as failed_step:  # a step failed for good (retries used up)
            error_type = failed_step.error_type.rsplit(".", 1)[-1]
            if error_type == JobNoLongerOwned.__name__:
                return {"outcome": STOPPED}
            return _answer(FAILED, JobError(error_type, failed_step.message or "the step failed"))
        except SerDesError as unserialisable:
            if isinstance(unserialisable, RetryableSerDesError):
                raise
            return _answer(FAILED, JobError("StepResultNotSerializable", str(unserialisable)[:500]))
        except DurableExecutionsError:
            raise  # the SDK's own trouble: Lambda retries the invocation
        except Exception as exc:  # TaskFailed, or the task's own bug: the job fails
            return _answer(FAILED, task_failure(exc))
        return {
            "outcome": COMPLETED,
            "result": stored.to_dict(),
        }

    def _finish(self, job_id: str, answer: Mapping[str, Any]) -> str:
        """Record how the job ended; the outcome (COMPLETED, FAILED, CANCELLED or SKIPPED)."""
        job = self._store.get(job_id)
        if job is None:
            return Outcome.SKIPPED.value
        if job.status.is_terminal:
            # While the execution lives only it may end the job: a retried finish whose first
            # try ended it before its invocation died.
            return job.status.value
        if answer.get("outcome") == COMPLETED:
            result = answer["result"]
            stored = StoredResult.from_dict(result)
            if self._store.complete(job_id, job_id, stored):
                logger.info("job completed")
                return Outcome.COMPLETED.value
            return self._runner.stop(job, job_id).outcome.value
        if answer.get("outcome") in (FAILED, TRANSIENT):
            return self._runner.fail(job, job_id, JobError.from_dict(answer["error"])).outcome.value
        return self._runner.stop(job, job_id).outcome.value


def _answer(outcome: str, error: JobError) -> dict[str, Any]:
    return {"outcome": outcome, "error": error.to_dict()}
