"""Local throughput: submit N jobs over HTTP and wait until every one has COMPLETED.

Prints jobs submitted per second, submit latency p50/p99 (client-side, signed request to
202), jobs completed per second (first submit to last completion), and checks each job
finished exactly once. The figures measure the local runtime on this machine (moto,
one process per sandbox), not AWS: use them to compare changes, not to size production.

    python -m bench.throughput [--jobs 500] [--clients 16]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# Heavy imports stay inside main(): spawned sandboxes re-import this module (see cold_start).

CONTEXT = {  # room for the burst: the stage throttle would otherwise (rightly) answer 429
    "api_throttle_rate_limit": 10_000,
    "api_throttle_burst_limit": 5_000,
}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--clients", type=int, default=16, help="concurrent submitting clients")
    args = parser.parse_args(argv)
    from botocore.credentials import Credentials  # noqa: PLC0415

    from jobs_cli.client import JobsClient  # noqa: PLC0415
    from local.server import LocalRuntime  # noqa: PLC0415
    from local.synth import ROOT, synthesize  # noqa: PLC0415
    from tests.support import TEST_TASKS  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as out:
        quiet = {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}  # keep the figures readable
        cdk_out = synthesize(ROOT / "app.py", Path(out), CONTEXT)
        runtime = LocalRuntime(cdk_out, port=0, extra_environment=quiet, preload=TEST_TASKS).start()
        try:
            assert runtime.lambdas is not None
            client = JobsClient(runtime.api_url, credentials=Credentials("BENCH", "local"))
            # Warm the sandboxes first so the run measures steady state, not first imports.
            with ThreadPoolExecutor(max_workers=args.clients) as pool:
                list(pool.map(lambda _: client.submit("sleep", {"seconds": 0}), range(args.clients * 2)))
            runtime.lambdas.wait_idle(120)

            def submit(index: int) -> tuple[str, float]:
                started = time.monotonic()
                response = client.submit("sleep", {"seconds": 0})
                if response.status != 202:
                    raise SystemExit(f"submit {index} answered {response.status}: {response.body}")
                return str(response.body["job_id"]), (time.monotonic() - started) * 1000

            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=args.clients) as pool:
                submitted = list(pool.map(submit, range(args.jobs)))
            submit_seconds = time.monotonic() - started
            if not runtime.lambdas.wait_idle(600):
                raise SystemExit("jobs still running after 600 s")
            done_seconds = time.monotonic() - started

            table = runtime.aws_client("dynamodb")
            statuses: dict[str, tuple[str, int]] = {}
            for page in table.get_paginator("scan").paginate(TableName=next(iter(runtime.template.tables))):
                for item in page["Items"]:
                    if "status" in item:
                        statuses[item["job_id"]["S"]] = (item["status"]["S"], int(item["attempts"]["N"]))
            job_ids = [job_id for job_id, _ in submitted]
            finished_once = sum(statuses.get(job_id) == ("COMPLETED", 1) for job_id in job_ids)
            latencies = [ms for _, ms in submitted]
            print(f"jobs                 {args.jobs} (sleep 0 s), {args.clients} concurrent clients")
            print(f"submitted            {args.jobs / submit_seconds:7.1f} jobs/s")
            p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
            print(f"submit latency       p50 {p50:6.1f} ms   p99 {p99:6.1f} ms")
            print(f"completed            {args.jobs / done_seconds:7.1f} jobs/s ({done_seconds:.1f} s for all)")
            print(f"finished exactly once {finished_once}/{args.jobs}")
            if finished_once != args.jobs:
                raise SystemExit("some jobs did not finish exactly once")
        finally:
            runtime.stop()


if __name__ == "__main__":
    main()
