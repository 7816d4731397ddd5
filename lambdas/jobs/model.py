"""The job domain: statuses, the job record and the rules for moving between statuses.

Pure Python on purpose: nothing here talks to AWS, so the rules can be tested on their
own and the data-access layer (``repository.py``) only has to enforce them atomically.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class JobStatus(StrEnum):
    """Life cycle of a job: PENDING -> RUNNING -> COMPLETED | FAILED | CANCELLED."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})

# The only moves a job may make. RUNNING -> RUNNING is a retry of the same job by a new
# attempt (Lambda re-delivers the event after a crash or a timeout). A PENDING job is
# cancelled at once; a RUNNING one only records the request (``cancel_requested``) and
# its owning attempt moves it to CANCELLED when it notices.
ALLOWED_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.PENDING: frozenset({JobStatus.RUNNING, JobStatus.FAILED, JobStatus.CANCELLED}),
    JobStatus.RUNNING: frozenset({JobStatus.RUNNING, JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED}),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}


def can_transition(current: JobStatus, target: JobStatus) -> bool:
    """True when a job in ``current`` may move to ``target``."""
    return target in ALLOWED_TRANSITIONS[current]


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with millisecond precision, e.g. ``2026-11-24T10:00:00.000Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_job_id() -> str:
    # uuid4: random, so ids cannot be guessed or enumerated.
    return str(uuid.uuid4())


def is_job_id(value: str) -> bool:
    """True for a canonical (lower-case, hyphenated) UUID string."""
    try:
        return str(uuid.UUID(value)) == value
    except (ValueError, AttributeError, TypeError):
        return False


@dataclass(frozen=True)
class Progress:
    """How far a running job is: a percentage (0-100) and an optional message."""

    percent: int
    message: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.percent <= 100:
            raise ValueError(f"progress percent must be between 0 and 100, got {self.percent}")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"percent": self.percent}
        if self.message:
            data["message"] = self.message
        return data


@dataclass(frozen=True)
class JobError:
    """Why a job failed: an error type (class name or code) and a human-readable message."""

    type: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"type": self.type, "message": self.message}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobError:
        """The error :meth:`to_dict` wrote."""
        return cls(str(data["type"]), str(data["message"]))


@dataclass(frozen=True)
class StoredResult:
    """A finished job's result as kept: inline JSON text, or the location of a stored one."""

    size: int
    inline_json: str | None = None
    location: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """As it travels between steps (a workflow's state, a durable checkpoint)."""
        return {"size": self.size, "inline_json": self.inline_json, "location": self.location}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StoredResult:
        """The result :meth:`to_dict` wrote."""
        return cls(int(data["size"]), data.get("inline_json"), data.get("location"))


@dataclass(frozen=True)
class CallbackRecord:
    """What became of a job's callback: ``DELIVERED`` or ``FAILED`` after ``attempts``."""

    status: str
    attempts: int
    at: str
    response_status: int | None = None
    error: str | None = None


@dataclass
class Job:
    """One unit of long-running work and everything a client may ask about it."""

    job_id: str
    owner: str
    task: str
    input: dict[str, Any]
    status: JobStatus = JobStatus.PENDING
    created_at: str = field(default_factory=lambda: iso(utc_now()))
    updated_at: str = ""
    progress: Progress | None = None
    result: Any = None
    result_location: str | None = None  # where a result too large to keep inline is stored
    result_bytes: int | None = None
    error: JobError | None = None
    attempts: int = 0
    correlation_id: str | None = None
    cancel_requested: bool = False  # the owner asked to cancel a RUNNING job; the worker will stop it
    step: str | None = None  # dispatch=stepfunctions or durable: the step the job is in (or failed in)
    execution_arn: str | None = None  # dispatch=durable: the job's durable execution, which cancel stops
    callback_url: str | None = None  # POSTed the final job document when the job finishes
    callback: CallbackRecord | None = None  # the outcome of that delivery, once attempted

    def __post_init__(self) -> None:
        if not self.updated_at:
            self.updated_at = self.created_at

    def to_public_dict(self) -> dict[str, Any]:
        """The job as the API shows it to its owner (no internal bookkeeping)."""
        view: dict[str, Any] = {
            "job_id": self.job_id,
            "task": self.task,
            "status": self.status.value,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "attempts": self.attempts,
        }
        if self.progress is not None:
            view["progress"] = self.progress.to_dict()
        if self.step is not None:
            view["step"] = self.step
        if self.status is JobStatus.COMPLETED and self.result_location is None:
            view["result"] = self.result
        if self.status is JobStatus.FAILED and self.error is not None:
            view["error"] = self.error.to_dict()
        if self.cancel_requested and not self.status.is_terminal:
            view["cancel_requested"] = True
        if self.callback_url is not None:
            view["callback"] = self._callback_view()
        return view

    def _callback_view(self) -> dict[str, Any]:
        view: dict[str, Any] = {"url": self.callback_url, "status": "PENDING"}
        if self.callback is not None:
            view.update(status=self.callback.status, attempts=self.callback.attempts, at=self.callback.at)
            if self.callback.response_status is not None:
                view["response_status"] = self.callback.response_status
            if self.callback.error:
                view["error"] = self.callback.error
        return view

    def to_summary_dict(self) -> dict[str, Any]:
        """The job as a listing shows it: as :meth:`to_public_dict`, without the result
        (which may be large; ``GET /jobs/{job_id}`` has it)."""
        view = self.to_public_dict()
        view.pop("result", None)
        return view
