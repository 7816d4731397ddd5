"""The fault run: many jobs through the local runtime while workers crash, hang and get
throttled, then an account of where every job ended.

The scenario is shared by ``tests/e2e/test_faults.py`` (which asserts that nothing is lost
or finished twice) and this benchmark (which prints jobs/s and the p99 time from submit to
a terminal status). The figures measure the local runtime on this machine, not AWS.

    python -m bench.fault_run [--dispatch lambda|sqs|stepfunctions|durable] [--jobs 1000] [--crash 0.10]
                              [--hang 0.0] [--throttle 0.05]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

# Heavy imports stay inside functions: spawned sandboxes re-import this module (see cold_start).

# The function that runs jobs, per dispatch mode: the faults are injected there.
JOB_RUNNERS = {
    "lambda": "jobs.handlers.worker.handler",
    "sqs": "jobs.handlers.queue_worker.handler",
    "stepfunctions": "jobs.handlers.steps.process",
    "durable": "jobs.handlers.durable_worker.handler",
}
WORKER_HANDLER = JOB_RUNNERS["lambda"]
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}
# The sandboxes' logs and metrics, silenced: a run's figures are what it prints.
QUIET = {"POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
CONTEXT = {
    "worker_timeout_seconds": 4,  # a hung attempt costs 4 s, not 15 minutes
    "progress_min_interval_ms": 100,
    "api_throttle_rate_limit": 10_000,
    "api_throttle_burst_limit": 5_000,
}


def prime_count(limit: int) -> int:
    """The reference answer for the ``primes`` task (a plain sieve)."""
    sieve = bytearray([1]) * limit
    sieve[0:2] = b"\x00\x00"
    for number in range(2, math.isqrt(limit - 1) + 1):
        if sieve[number]:
            sieve[number * number :: number] = bytearray(len(range(number * number, limit, number)))
    return sieve.count(1)


def limit_of(index: int) -> int:
    return 2_000 + 37 * index


@dataclass
class FaultRunReport:
    submitted: dict[str, int] = field(default_factory=dict)  # job id -> limit
    submit_times: dict[str, float] = field(default_factory=dict)  # job id -> epoch seconds
    items: dict[str, dict[str, Any]] = field(default_factory=dict)  # job id -> plain item
    dead_lettered: list[str] = field(default_factory=list)  # job ids of records (or messages) in the DLQ
    given_up: list[str] = field(default_factory=list)  # job ids of worker events Lambda gave up on
    seconds: float = 0.0

    def terminal_seconds(self) -> list[float]:
        """Per job, seconds from the submit request to the job's last update (its terminal write)."""
        return [
            datetime.fromisoformat(self.items[job_id]["updated_at"]).timestamp() - submitted
            for job_id, submitted in self.submit_times.items()
            if job_id in self.items
        ]


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {key: next(iter(value.values())) for key, value in item.items()}


def job_items(runtime: Any) -> dict[str, dict[str, Any]]:
    """Every item of the runtime's jobs table, by job id, as plain values (one consistent scan)."""
    dynamodb = runtime.aws_client("dynamodb")
    [table] = [name for name in runtime.template.tables if "JobsTable" in name]
    items: dict[str, dict[str, Any]] = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for item in page["Items"]:
            items[item["job_id"]["S"]] = _plain(item)
    return items


def run_fault_scenario(runtime: Any, client: Any, jobs: int, clients: int = 16, timeout: float = 600) -> FaultRunReport:
    """Submit ``jobs`` primes jobs, wait until every one is finished and the runtime idle,
    then collect every job item and the dead-letter queue."""
    report = FaultRunReport()

    def submit(index: int) -> tuple[str, int, float]:
        sent = time.time()
        response = client.submit("primes", {"limit": limit_of(index)})
        if response.status != 202:
            raise RuntimeError(f"submit {index} answered {response.status}: {response.body}")
        return str(response.body["job_id"]), limit_of(index), sent

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        for job_id, limit, sent in pool.map(submit, range(jobs)):
            report.submitted[job_id] = limit
            report.submit_times[job_id] = sent

    deadline = time.monotonic() + timeout
    while True:
        items = job_items(runtime)
        finished = all(items.get(job_id, {}).get("status") in TERMINAL for job_id in report.submitted)
        if (finished or _nothing_left_to_deliver(runtime)) and runtime.lambdas.idle:
            # With dispatch=sqs, a job whose every receive crashed has its message in the
            # dead-letter queue and stays RUNNING until the reaper's deadline (an hour here).
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    report.seconds = time.monotonic() - started
    report.items = {job_id: items[job_id] for job_id in report.submitted if job_id in items}

    sqs = runtime.aws_client("sqs")
    for url in runtime.queue_urls.values():
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300).get("Messages"):
            for message in batch:
                body = json.loads(message["Body"])
                # Lambda's invocation record (dispatch=lambda), the job's own message (sqs), or
                # the status change of its durable execution (durable).
                payload = body.get("requestPayload") or body
                if "detail" in body:
                    payload = {"job_id": body["detail"].get("durableExecutionName")}
                report.dead_lettered.append(str(payload.get("job_id")))
    workers = {name for name, function in runtime.lambdas.functions.items() if function.spec.handler == WORKER_HANDLER}
    report.given_up = [
        str(event.payload.get("job_id")) for name, event, _ in runtime.lambdas.given_up if name in workers
    ]
    if runtime.durable is not None:  # executions that ended other than SUCCEEDED
        report.given_up += [name for name, status in runtime.durable.ended if status != "SUCCEEDED"]
    return report


def _nothing_left_to_deliver(runtime: Any) -> bool:
    """True when the queues that feed functions (``dispatch=sqs``) are empty, in flight included."""
    mapped = [runtime.queue_urls[mapping.queue] for mapping in runtime.template.queue_mappings]
    if not mapped:
        return False
    sqs = runtime.aws_client("sqs")
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    for url in mapped:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        if any(int(attributes[name]) for name in names):
            return False
    return True


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dispatch", choices=sorted(JOB_RUNNERS), default="lambda")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--crash", type=float, default=0.10)
    parser.add_argument("--hang", type=float, default=0.0)
    parser.add_argument("--throttle", type=float, default=0.05)
    args = parser.parse_args(argv)
    from botocore.credentials import Credentials  # noqa: PLC0415

    from jobs_cli.client import JobsClient  # noqa: PLC0415
    from local.faults import FaultPlan  # noqa: PLC0415
    from local.server import LocalRuntime  # noqa: PLC0415
    from local.synth import ROOT, synthesize  # noqa: PLC0415
    from tests.support import TEST_TASKS  # noqa: PLC0415

    plan = FaultPlan((JOB_RUNNERS[args.dispatch],), crash=args.crash, hang=args.hang, throttle=args.throttle, seed=7)
    with tempfile.TemporaryDirectory() as folder:
        cdk_out = synthesize(ROOT / "app.py", Path(folder), {**CONTEXT, "dispatch": args.dispatch})
        runtime = LocalRuntime(
            cdk_out, port=0, extra_environment=QUIET, retry_base_delay=0.2, faults=plan, preload=TEST_TASKS
        ).start()
        try:
            client = JobsClient(runtime.api_url, credentials=Credentials("BENCH", "local"))
            report = run_fault_scenario(runtime, client, args.jobs, args.clients)
        finally:
            runtime.stop()
    statuses = [item["status"] for item in report.items.values()]
    to_terminal = report.terminal_seconds()
    out(
        f"jobs                 {args.jobs} (primes), dispatch={args.dispatch}, {args.clients} clients, worker faults: "
        f"crash {args.crash:.0%}, hang {args.hang:.0%}, DynamoDB throttling {args.throttle:.0%}"
    )
    out(
        f"injected             {plan.counts['crash']} crashes, {plan.counts['hang']} hangs, "
        f"{plan.counts['throttle']} throttled requests, in {plan.counts['invocations']} worker invocations"
    )
    out(
        f"finished             {statuses.count('COMPLETED')} COMPLETED, {statuses.count('FAILED')} FAILED, "
        f"{len(report.submitted) - len(statuses) + sum(s not in TERMINAL for s in statuses)} unfinished"
    )
    failures = Counter(item.get("error_type") for item in report.items.values() if item["status"] == "FAILED")
    out(f"failed by error      {dict(failures.most_common()) or '-'}")
    out(f"dead-lettered        {len(report.dead_lettered)} (Lambda gave up on {len(report.given_up)} worker events)")
    out(f"throughput           {len(report.submitted) / report.seconds:.1f} jobs/s to the last terminal status")
    out(f"submit -> terminal   p50 {percentile(to_terminal, 0.5):.2f} s   p99 {percentile(to_terminal, 0.99):.2f} s")


if __name__ == "__main__":
    main()
