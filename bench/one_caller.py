"""One caller sends everything, against DynamoDB's per-partition write limit scaled down.

The local runtime gives every partition key of every table and index ``--budget`` writes
per second (``local/partitions.py``: DynamoDB gives each 1,000, and throttles a table write
whose index write is over). One identity then submits ``--jobs`` jobs at ``--rate`` per
second, as a backend service does, and the run waits for every job to end. Printed: the
submits refused, the jobs that did not complete, the throttled writes per key, and the
busiest keys' peak writes in one second.

``--legacy`` runs the stack as deployed before issue #18 (the ``owner-jobs`` index beside
the sharded one, ``keep_legacy_owner_index``): every write of every job then also writes the
owner's single key, which throttles at a few jobs per second here, as at a few hundred
jobs per second per caller in AWS (``python -m bench.capacity --owner-shards 1``).

    python -m bench.one_caller [--jobs 60] [--rate 10] [--budget 10] [--legacy]

The figures are the local runtime's (moto, one process per sandbox), not AWS's.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.fault_run import QUIET, TERMINAL, job_items

# A job that reports progress a few times (the test tasks' sleep reports at most once per
# progress interval) and finishes quickly.
TASK = ("sleep", {"seconds": 1.5})
# The stage throttle must not be what refuses the caller here; progress at most twice a
# second, so one job's own item stays under the scaled-down budget as it does under AWS's.
CONTEXT = {"api_throttle_rate_limit": "1000", "api_throttle_burst_limit": "1000", "progress_min_interval_ms": "500"}


@dataclass
class OneCallerReport:
    submitted: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # answers other than 202
    statuses: dict[str, str] = field(default_factory=dict)
    throttled: dict[tuple[str, str], int] = field(default_factory=dict)
    peaks: list[tuple[str, str, int]] = field(default_factory=list)  # (table or index, key, writes in 1 s)
    seconds: float = 0.0

    @property
    def not_completed(self) -> list[str]:
        return [job_id for job_id in self.submitted if self.statuses.get(job_id) != "COMPLETED"]


def run_one_caller(runtime: Any, client: Any, jobs: int, rate: float, timeout: float = 300) -> OneCallerReport:
    """Submit ``jobs`` jobs as one caller at ``rate`` per second; wait for them to end."""
    report = OneCallerReport()
    started = time.monotonic()

    def submit(index: int) -> tuple[str | None, str]:
        delay = started + index / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        response = client.submit(*TASK)
        if response.status != 202:
            return None, f"{response.status} {response.body}"
        return str(response.body["job_id"]), ""

    with ThreadPoolExecutor(max_workers=16) as pool:
        for job_id, refusal in pool.map(submit, range(jobs)):
            if job_id is None:
                report.refused.append(refusal)
            else:
                report.submitted.append(job_id)

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report.statuses = {job_id: str(item["status"]) for job_id, item in job_items(runtime).items()}
        if all(report.statuses.get(job_id) in TERMINAL for job_id in report.submitted) and runtime.lambdas.idle:
            break
        time.sleep(0.5)
    report.seconds = time.monotonic() - started
    budget = runtime.write_budget
    report.throttled = budget.throttled()
    report.peaks = [(space, key, use.peak_writes_per_second) for (space, key), use in budget.busiest()]
    return report


def one_caller_run(cdk_out: Path, jobs: int, rate: float, budget: float) -> OneCallerReport:
    """Start the local runtime on ``cdk_out`` with ``budget`` writes a second per partition
    key, run :func:`run_one_caller` as the caller ``SERVICE``, stop it."""
    from botocore.credentials import Credentials  # noqa: PLC0415  spawned sandboxes re-import this module

    from jobs_cli.client import JobsClient  # noqa: PLC0415
    from local.server import LocalRuntime  # noqa: PLC0415
    from tests.support import TEST_TASKS  # noqa: PLC0415

    runtime = LocalRuntime(
        cdk_out, port=0, extra_environment=QUIET, preload=TEST_TASKS, partition_writes_per_second=budget
    ).start()
    try:
        return run_one_caller(
            runtime, JobsClient(runtime.api_url, credentials=Credentials("SERVICE", "secret")), jobs, rate
        )
    finally:
        runtime.stop()


def describe(report: OneCallerReport, jobs: int, rate: float, budget: float, legacy: bool) -> list[str]:
    lines = [
        f"{'legacy owner index' if legacy else 'sharded owner index'}: {jobs} jobs from one caller at "
        f"{rate:g}/s, {budget:g} writes/s per partition key, {report.seconds:.1f} s",
        f"submits refused: {len(report.refused)}; jobs not completed: {len(report.not_completed)}",
        f"throttled writes: {sum(report.throttled.values())}"
        + "".join(f"\n  {space} {key}: {count}" for (space, key), count in sorted(report.throttled.items())),
        "busiest keys (writes in one second):",
    ]
    lines += [f"  {space} {key}: {peak}" for space, key, peak in report.peaks]
    return lines


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=60)
    parser.add_argument("--rate", type=float, default=10)
    parser.add_argument("--budget", type=float, default=10, help="writes per second per partition key")
    parser.add_argument("--legacy", action="store_true", help="keep the pre-#18 owner index (keep_legacy_owner_index)")
    args = parser.parse_args(argv)
    from local.synth import ROOT, synthesize  # noqa: PLC0415  spawned sandboxes re-import this module

    context = {**CONTEXT, **({"keep_legacy_owner_index": "true"} if args.legacy else {})}
    with tempfile.TemporaryDirectory() as out_dir:
        cdk_out = synthesize(ROOT / "app.py", Path(out_dir), context)
        report = one_caller_run(cdk_out, args.jobs, args.rate, args.budget)
    for line in describe(report, args.jobs, args.rate, args.budget, args.legacy):
        out(line)


if __name__ == "__main__":
    main()
