"""The stuck-job reaper: ends jobs that nothing else will ever finish.

Normally every job ends through its worker, or through the on-failure recorder once
Lambda gives up on the worker's event. The reaper is the backstop for the rest: an event
Lambda's asynchronous queue dropped, a recorder that failed too, a dispatch that never
reached Lambda. A job still PENDING or RUNNING past its deadline (``stuck_after``, set at
submit: the longest Lambda may hold the event, plus one whole attempt, plus slack) is
recorded FAILED with the reason, or CANCELLED if its owner had asked to cancel it.

No live attempt can be cut off: by the deadline, Lambda has either run or discarded the
event, and every attempt has ended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from jobs.model import JobError, JobStatus
from jobs.observability import logger

# Per run; a larger backlog is worked off by the next runs.
BATCH_LIMIT = 500


class ReaperStore(Protocol):
    def find_stuck(self, now: int, limit: int) -> list[str]: ...
    def expire(self, job_id: str, now: int, error: JobError) -> JobStatus | None: ...


@dataclass
class ReapReport:
    failed: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    finished_meanwhile: int = 0


class Reaper:
    def __init__(self, store: ReaperStore, stuck_after_seconds: int, batch_limit: int = BATCH_LIMIT) -> None:
        self._store = store
        self._stuck_after_seconds = stuck_after_seconds
        self._batch_limit = batch_limit

    def reason(self) -> JobError:
        return JobError(
            "DeadlineExceeded",
            f"no worker finished the job within {self._stuck_after_seconds} s of its submission "
            "(its event was lost or every attempt ended without a record); ended by the reaper",
        )

    def run(self, now: int) -> ReapReport:
        """End every job past its deadline at ``now`` (epoch seconds), up to the batch limit."""
        report = ReapReport()
        for job_id in self._store.find_stuck(now, self._batch_limit):
            outcome = self._store.expire(job_id, now, self.reason())
            if outcome is JobStatus.FAILED:
                report.failed.append(job_id)
            elif outcome is JobStatus.CANCELLED:
                report.cancelled.append(job_id)
            else:  # it finished between the query and the update
                report.finished_meanwhile += 1
                continue
            logger.warning("stuck job ended", extra={"job_id": job_id, "status": outcome.value})
        return report
