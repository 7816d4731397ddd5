"""The capacity model: for a workload, the load on every shared key and quota the app
touches, against AWS's documented limits, and the first ceiling the workload hits.

A model, not a measurement: it counts what the code does per job (``writes_per_job`` and
friends follow ``lambdas/jobs/repository.py``) and divides each documented limit by it.
Every limit names the AWS page it comes from; where AWS documents none (an asynchronous
invoke has no rate limit of its own, only concurrency), there is no row.

    python -m bench.capacity [--jobs-per-second 100] [--owners 1] [--job-seconds 60]
                             [--polls 5] [--progress-writes 5] [--dispatch lambda]
                             [--notify none] [--legacy-owner-index] [--region other]

``--legacy-owner-index`` models the owner index as it was before issue #18 (one key per
owner, written by every write of every job) to compare. ``--region large`` uses the higher
quotas AWS gives us-east-1, us-west-2 and eu-west-1 where a service has them.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DISPATCHES = ("lambda", "sqs", "stepfunctions", "durable")
# The sparse index the reaper reads, and each owner's listing index, are each spread over
# this many keys (lambdas/jobs/repository.py; tests/unit/test_capacity.py checks).
ACTIVE_SHARDS = 32
OWNER_SHARDS = 16
# How long a submit, status or cancel invocation takes, on average (docs/benchmarks.md: tens of ms).
API_INVOCATION_SECONDS = 0.05
# State transitions of one job through the workflow (stacks/workflow.py): Prepare, its
# Choice, Process, its Choice, Finalise, the end state.
WORKFLOW_TRANSITIONS = 6
# Durable execution calls per job (lambdas/jobs/durable.py), each a CheckpointDurableExecution:
# prepare, the attempt's child context and finish each start and end (at most once per try:
# the start is written before the step runs), plus the task's own steps, the same.
DURABLE_FIXED_CHECKPOINTS = 6


@dataclass(frozen=True)
class Limit:
    """A documented limit: ``value`` per second (or at once, for concurrency)."""

    name: str
    value: float
    scope: str
    adjustable: bool
    source: str  # the AWS page's title and address
    remedy: str  # what a workload over it needs


def limits(region: str = "other") -> dict[str, Limit]:
    """AWS's documented limits, as of late 2026 (check the Service Quotas console for yours)."""
    large = region == "large"
    return {
        "partition_writes": Limit(
            "DynamoDB writes per partition key",
            1_000,
            "per partition of a table or of each global secondary index; one key value never gets more",
            False,
            "Amazon DynamoDB Developer Guide, 'Burst and adaptive capacity': 1,000 WCU per partition, "
            "also for a key isolated by adaptive capacity "
            "(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/burst-adaptive-capacity.html); "
            "a throttled index write throttles the table write that caused it ('GSI back pressure', "
            "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/gsi-throttling.html)",
            "spread the key (more shards): no quota raises it",
        ),
        "table_writes": Limit(
            "DynamoDB on-demand write request units per table",
            40_000,
            "per table and per global secondary index, per Region",
            True,
            "Amazon DynamoDB Developer Guide, 'Quotas in Amazon DynamoDB' "
            "(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html); a new "
            "on-demand table starts at 4,000 writes/s and doubles its previous peak within 30 minutes "
            "(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/on-demand-capacity-mode.html)",
            "a table quota increase (and warm throughput before a launch)",
        ),
        "new_table_writes": Limit(
            "DynamoDB writes a new on-demand table takes at once",
            4_000,
            "per table, until traffic has raised it (on-demand doubles the previous peak within 30 minutes)",
            False,
            "Amazon DynamoDB Developer Guide, 'On-demand capacity mode', initial throughput "
            "(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/on-demand-capacity-mode.html); "
            "warm throughput (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput.html)",
            "warm throughput set on the table before launch, or a ramp of about 30 minutes per doubling",
        ),
        "table_reads": Limit(
            "DynamoDB on-demand read request units per table",
            40_000,
            "per table, per Region (a strongly consistent read of up to 4 KB is one)",
            True,
            "Amazon DynamoDB Developer Guide, 'Quotas in Amazon DynamoDB' "
            "(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html)",
            "a table quota increase, or fewer polls (retry_after_seconds, notify=websocket)",
        ),
        "lambda_concurrency": Limit(
            "Lambda concurrent executions",
            1_000,
            "per account per Region, every function together (lambda_account_concurrency)",
            True,
            "AWS Lambda Developer Guide, 'Lambda quotas' "
            "(https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html): 1,000, up to tens of "
            "thousands on request; each function scales by 1,000 environments every 10 s",
            "a Lambda concurrency quota increase",
        ),
        "api_account": Limit(
            "API Gateway requests per second",
            10_000,
            "per account per Region, every API together (burst 5,000), WebSocket pushes included",
            True,
            "Amazon API Gateway Developer Guide, 'Amazon API Gateway quotas' "
            "(https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html)",
            "an API Gateway throttle quota increase",
        ),
        "sqs_in_flight": Limit(
            "SQS messages in flight",
            120_000,
            "per standard queue (received, not yet deleted)",
            True,
            "Amazon SQS Developer Guide, 'Amazon SQS message quotas' "
            "(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html)",
            "an SQS in-flight quota increase",
        ),
        "sfn_starts": Limit(
            "Step Functions StartExecution",
            300 if large else 150,
            "per account per Region, refill rate (bucket 1,300, or 800 outside the three largest Regions)",
            True,
            "AWS Step Functions Developer Guide, 'Step Functions service quotas' "
            "(https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html)",
            "a StartExecution quota increase",
        ),
        "sfn_transitions": Limit(
            "Step Functions state transitions",
            5_000 if large else 800,
            "per account per Region, refill rate, Standard workflows",
            True,
            "AWS Step Functions Developer Guide, 'Step Functions service quotas' "
            "(https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html)",
            "a state-transition quota increase",
        ),
        "sfn_open": Limit(
            "Step Functions open executions",
            1_000_000,
            "per account per Region",
            True,
            "AWS Step Functions Developer Guide, 'Step Functions service quotas' "
            "(https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html)",
            "an open-executions quota increase",
        ),
        "durable_starts": Limit(
            "Lambda durable execution starts",
            300,
            "per account per Region (invocations that start a durable execution)",
            True,
            "AWS Lambda Developer Guide, 'Lambda quotas', durable functions "
            "(https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html#durable-functions-quotas)",
            "a durable-start quota increase",
        ),
        "durable_checkpoints": Limit(
            "Lambda CheckpointDurableExecution",
            20_000 if large else 10_000,
            "requests per second, per account per Region",
            True,
            "AWS Lambda Developer Guide, 'Lambda quotas', durable functions "
            "(https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html#durable-functions-quotas)",
            "a checkpoint quota increase",
        ),
        "websocket_connections": Limit(
            "API Gateway WebSocket new connections",
            500,
            "per second, per account per Region",
            True,
            "Amazon API Gateway Developer Guide, 'Amazon API Gateway quotas' "
            "(https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html)",
            "a WebSocket connection-rate quota increase",
        ),
    }


@dataclass(frozen=True)
class Settings:
    """The deployment's own caps (cdk.json's defaults unless given)."""

    api_throttle_rate_limit: int
    lambda_account_concurrency: int
    worker_max_concurrency: int

    @classmethod
    def from_cdk_json(cls) -> Settings:
        settings = json.loads((ROOT / "cdk.json").read_text())["context"]["settings"]
        return cls(
            int(settings["api_throttle_rate_limit"]),
            int(settings["lambda_account_concurrency"]),
            int(settings["worker_max_concurrency"]),
        )


@dataclass(frozen=True)
class Workload:
    jobs_per_second: float
    owners: int = 1  # callers submitting evenly; 1 = service-to-service
    job_seconds: float = 60
    polls_per_job: float = 5
    progress_writes_per_job: int = 5
    dispatch: str = "lambda"
    notify: str = "none"
    steps_per_job: int = 3  # dispatch=durable: the task's own steps
    legacy_owner_index: bool = False  # the owner index before issue #18, to compare


def writes_per_job(workload: Workload) -> int:
    """Writes to a job's item (lambdas/jobs/repository.py): create, claim, each progress
    report, the end; the workflow notes each of its three steps; a durable execution its
    ARN and each of the task's steps."""
    writes = 3 + workload.progress_writes_per_job
    if workload.dispatch == "stepfunctions":
        writes += 3
    if workload.dispatch == "durable":
        writes += 1 + workload.steps_per_job
    return writes


def owner_index_writes_per_job(workload: Workload) -> int:
    """The owner index holds keys only: only a job's creation writes it (its expiry, later,
    deletes the entry). The legacy index projected ``updated_at``, which every write of a
    job sets: each was an index write too, on the owner's one key."""
    return writes_per_job(workload) if workload.legacy_owner_index else 1


def owner_keys(workload: Workload) -> int:
    """Partition keys one owner's index entries are spread over."""
    return 1 if workload.legacy_owner_index else OWNER_SHARDS


@dataclass(frozen=True)
class Row:
    limit: Limit
    what: str
    per_job: float  # units per job (per second of load for each job/s), or per job-second at once
    concurrent: bool = False
    cap: float | None = None  # the deployment's own cap, where a setting is lower than AWS's limit
    cap_name: str | None = None

    def load(self, workload: Workload) -> float:
        return workload.jobs_per_second * self.per_job * (workload.job_seconds if self.concurrent else 1)

    @property
    def ceiling(self) -> float:
        return min(self.limit.value, self.cap) if self.cap is not None else self.limit.value

    def most_jobs_per_second(self, workload: Workload) -> float:
        per_job = self.per_job * (workload.job_seconds if self.concurrent else 1)
        return self.ceiling / per_job if per_job else float("inf")


def rows(workload: Workload, settings: Settings, region: str = "other") -> list[Row]:
    """Every shared key and quota this workload loads, one row each."""
    known = limits(region)
    requests = 1 + workload.polls_per_job  # POST /jobs, then the polls
    hottest_owner = 1 / max(1, workload.owners)  # the share of jobs of the busiest caller, spread evenly
    owner_index = "owner-jobs (legacy)" if workload.legacy_owner_index else "owner-shards"
    found = [
        Row(
            known["partition_writes"],
            f"{owner_index} index: the busiest owner's key",
            owner_index_writes_per_job(workload) * hottest_owner / owner_keys(workload),
        ),
        # A job enters the sparse index at creation and leaves it at its end.
        Row(known["partition_writes"], f"active-jobs index: one of its {ACTIVE_SHARDS} shards", 2 / ACTIVE_SHARDS),
        Row(known["table_writes"], "jobs table: writes", writes_per_job(workload)),
        Row(known["new_table_writes"], "jobs table: writes, newly created", writes_per_job(workload)),
        Row(known["table_writes"], f"{owner_index} index: writes", owner_index_writes_per_job(workload)),
        Row(known["table_reads"], "jobs table: strongly consistent reads", workload.polls_per_job + 2),
        Row(
            known["api_account"],
            "REST API: requests",
            requests,
            cap=settings.api_throttle_rate_limit,
            cap_name="api_throttle_rate_limit",
        ),
    ]
    api_concurrency = requests * API_INVOCATION_SECONDS
    if workload.dispatch == "sqs":
        found.append(
            Row(
                known["lambda_concurrency"],
                "Lambda: the queue worker, at once (Little's law)",
                1,
                concurrent=True,
                cap=settings.worker_max_concurrency,
                cap_name="worker_max_concurrency",
            )
        )
        found.append(Row(known["sqs_in_flight"], "jobs queue: messages in flight", 1, concurrent=True))
    else:
        found.append(Row(known["lambda_concurrency"], "Lambda: the job runner, at once (Little's law)", 1, True))
    found.append(
        Row(
            known["lambda_concurrency"],
            "Lambda: everything, at once",
            1 + api_concurrency / max(workload.job_seconds, 1e-9),
            concurrent=True,
            cap=settings.lambda_account_concurrency,
            cap_name="lambda_account_concurrency",
        )
    )
    if workload.dispatch == "stepfunctions":
        found += [
            Row(known["sfn_starts"], "Step Functions: StartExecution", 1),
            Row(known["sfn_transitions"], "Step Functions: state transitions", WORKFLOW_TRANSITIONS),
            Row(known["sfn_open"], "Step Functions: open executions", 1, concurrent=True),
        ]
    if workload.dispatch == "durable":
        checkpoints = DURABLE_FIXED_CHECKPOINTS + 2 * workload.steps_per_job
        found += [
            Row(known["durable_starts"], "durable executions: starts", 1),
            Row(known["durable_checkpoints"], "durable executions: checkpoint calls", checkpoints),
        ]
    if workload.notify == "websocket":
        # One watcher per job; each change of the job pushed to it (create, claim, progress, end).
        # Its connection item is written when it subscribes and deleted at disconnect
        # (lambdas/jobs/connections.py); the job-connections index is keyed by job id, so no
        # key is shared between jobs, whoever the caller.
        found += [
            Row(known["websocket_connections"], "WebSocket: new connections", 1),
            Row(known["table_writes"], "connections table: writes", 2),
            Row(known["api_account"], "REST + WebSocket: requests and pushes", requests + writes_per_job(workload)),
        ]
    return found


# DynamoDB Streams: "you can design for up to two simultaneous processes to read from the
# same DynamoDB Streams shard at the same time. Exceeding this limit can result in request
# throttling" (Amazon DynamoDB Developer Guide, 'Quotas in Amazon DynamoDB',
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html).
STREAM_READERS_PER_SHARD = 2


def stream_readers(workload: Workload) -> list[str]:
    """The functions reading the jobs table's stream (each shard is read by each of them):
    the webhook callbacks always (stacks/callbacks.py), the WebSocket push with
    ``notify=websocket`` (stacks/notifications.py). A count, not a rate: no workload
    changes it, and AWS documents no record rate per stream shard."""
    return ["callbacks"] + (["push"] if workload.notify == "websocket" else [])


def first_ceiling(workload: Workload, settings: Settings, region: str = "other") -> tuple[Row, float]:
    """The row that caps this workload first, and the most jobs per second it allows."""
    return min(
        ((row, row.most_jobs_per_second(workload)) for row in rows(workload, settings, region)),
        key=lambda pair: pair[1],
    )


def needs(workload: Workload, settings: Settings, region: str = "other") -> list[str]:
    """What this workload needs beyond the defaults: each setting to raise, each quota
    increase to ask for, each key no quota can help (the most each one must allow)."""
    wanted: dict[str, float | None] = {}  # what to raise: the least it must allow (None: no quota helps)
    for row in rows(workload, settings, region):
        load = row.load(workload)
        if load <= row.ceiling:
            continue
        if not row.limit.adjustable and load > row.limit.value:
            wanted[f"{row.what}: {row.limit.remedy}"] = None
            continue
        if load > row.limit.value:
            name = f"{row.limit.name} quota"
            wanted[name] = max(wanted.get(name) or 0, load)
        if row.cap is not None and load > row.cap and row.cap_name:
            wanted[f"`{row.cap_name}`"] = max(wanted.get(f"`{row.cap_name}`") or 0, load)
    return [name if least is None else f"{name} ≥ {math.ceil(least):,}" for name, least in wanted.items()]


# The README's "How far it scales": each rate from one caller and from 10,000.
SCALE_RATES = (10, 100, 1_000, 10_000)
SCALE_CALLERS = (1, 10_000)


def scale_table(settings: Settings, region: str = "other") -> list[str]:
    """A Markdown table: for 60-second jobs polled 5 times with 5 progress reports each
    (``dispatch=lambda``), what each rate needs beyond the defaults."""
    lines = [
        "| jobs/s | callers | busiest owner index key, writes/s: before #18 → now (limit 1,000) "
        "| first ceiling with the defaults | what it needs |",
        "| ---: | ---: | ---: | --- | --- |",
    ]
    for rate in SCALE_RATES:
        for callers in SCALE_CALLERS:
            workload = Workload(rate, owners=callers)
            before, now = (
                rows(replace(workload, legacy_owner_index=legacy), settings, region)[0].load(workload)
                for legacy in (True, False)
            )
            row, most = first_ceiling(workload, settings, region)
            ceiling = f"{row.what} ({most:,.0f} jobs/s)"
            needed = "; ".join(needs(workload, settings, region)) or "nothing"
            lines.append(f"| {rate:,} | {callers:,} | {before:,.1f} → {now:,.1f} | {ceiling} | {needed} |")
    return lines


def report(workload: Workload, settings: Settings, region: str = "other") -> list[str]:
    lines = [
        f"{workload.jobs_per_second:g} jobs/s from {workload.owners} caller(s), {workload.job_seconds:g} s each, "
        f"{workload.polls_per_job:g} polls and {workload.progress_writes_per_job} progress writes per job, "
        f"dispatch={workload.dispatch}, notify={workload.notify}"
        + (", legacy owner index" if workload.legacy_owner_index else ""),
        f"{'shared key or quota':<52} {'load':>10} {'limit':>10} {'use':>6}  {'jobs/s at most':>14}",
    ]
    for row in sorted(rows(workload, settings, region), key=lambda r: r.most_jobs_per_second(workload)):
        use = row.load(workload) / row.ceiling
        limit = f"{row.ceiling:,.0f}" + ("*" if row.cap is not None and row.cap < row.limit.value else "")
        most = row.most_jobs_per_second(workload)
        shown = f"{most:,.1f}" if most < 10 else f"{most:,.0f}"  # a fraction matters below 10
        lines.append(f"{row.what:<52} {row.load(workload):>10,.0f} {limit:>10} {use:>6.0%}  {shown:>14}")
    readers = stream_readers(workload)
    lines.append(
        f"jobs table stream: {len(readers)} of {STREAM_READERS_PER_SHARD} readers per shard ({', '.join(readers)})"
    )
    row, most = first_ceiling(workload, settings, region)
    over = workload.jobs_per_second > most
    needs = f"raise {row.cap_name}" if row.cap is not None and row.cap < row.limit.value else row.limit.remedy
    lines.append(
        f"first ceiling: {row.what} at {most:,.3g} jobs/s ({row.limit.name}; {'OVER: ' if over else ''}{needs})"
    )
    lines.append("* the deployment's own setting, below AWS's limit")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs-per-second", type=float, default=100)
    parser.add_argument("--owners", type=int, default=1)
    parser.add_argument("--job-seconds", type=float, default=60)
    parser.add_argument("--polls", type=float, default=5)
    parser.add_argument("--progress-writes", type=int, default=5)
    parser.add_argument("--dispatch", choices=DISPATCHES, default="lambda")
    parser.add_argument("--notify", choices=("none", "websocket"), default="none")
    parser.add_argument("--legacy-owner-index", action="store_true", help="the owner index before issue #18")
    parser.add_argument("--region", choices=("large", "other"), default="other")
    parser.add_argument("--scale-table", action="store_true", help="print the README's 'How far it scales' table")
    args = parser.parse_args(argv)
    if args.scale_table:
        print("\n".join(scale_table(Settings.from_cdk_json(), args.region)))
        return 0
    workload = Workload(
        args.jobs_per_second,
        args.owners,
        args.job_seconds,
        args.polls,
        args.progress_writes,
        args.dispatch,
        args.notify,
        legacy_owner_index=args.legacy_owner_index,
    )
    print("\n".join(report(workload, Settings.from_cdk_json(), args.region)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
