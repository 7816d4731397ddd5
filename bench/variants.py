"""Latency of each variant in the local runtime: how long until work starts, or news arrives.

* ``dispatch=lambda``, ``dispatch=sqs`` and ``dispatch=stepfunctions`` (moto's ASL
  interpreter: StartExecution, then the Prepare step claims the job): submit (202
  received) → the job seen RUNNING, polling ``GET /jobs/{id}`` every 10 ms.
* ``notify=websocket``: the job's COMPLETED write (its ``updated_at``) → the pushed
  document received by a subscriber.
* ``callback_url``: the COMPLETED write → the signed POST received on loopback.

Each figure is the median and the worst of ``--jobs`` sequential jobs (``sleep`` 0.2 s,
warm sandboxes). They measure the local emulation on this machine, where the SQS
mapping's long poll and the stream's reads are local loops: compare variants with them,
not AWS (docs/variants.md's table gives AWS's typical figures).

    python -m bench.variants [--jobs 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# Heavy imports stay inside the functions: spawned sandboxes re-import this module.

QUIET = {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}
CONTEXT = {"progress_min_interval_ms": "100", "api_throttle_rate_limit": "1000", "api_throttle_burst_limit": "1000"}


def _seconds_since(iso_timestamp: str) -> float:
    return time.time() - datetime.fromisoformat(iso_timestamp.replace("Z", "+00:00")).timestamp()


def _runtime(context: dict[str, str], out: Path) -> Any:
    from local.server import LocalRuntime  # noqa: PLC0415
    from local.synth import ROOT, synthesize  # noqa: PLC0415
    from tests.support import TEST_TASKS  # noqa: PLC0415

    cdk_out = synthesize(ROOT / "app.py", out, {**CONTEXT, **context})
    return LocalRuntime(cdk_out, port=0, extra_environment=QUIET, preload=TEST_TASKS).start()


def _client(runtime: Any) -> Any:
    from botocore.credentials import Credentials  # noqa: PLC0415

    from jobs_cli.client import JobsClient  # noqa: PLC0415

    return JobsClient(runtime.api_url, credentials=Credentials("BENCH", "local"))


def start_latency(dispatch: str, jobs: int, out: Path) -> list[float]:
    runtime = _runtime({"dispatch": dispatch}, out)
    try:
        client = _client(runtime)
        figures = []
        for index in range(jobs + 2):  # the first two warm the sandboxes
            job_id = client.submit("sleep", {"seconds": 0.2}).body["job_id"]
            submitted = time.monotonic()
            while client.status(job_id).body["status"] == "PENDING":
                time.sleep(0.01)
            if index >= 2:
                figures.append(time.monotonic() - submitted)
            while client.status(job_id).body["status"] == "RUNNING":
                time.sleep(0.05)
        return figures
    finally:
        runtime.stop()


def push_latency(jobs: int, out: Path) -> list[float]:
    from websockets.sync.client import connect  # noqa: PLC0415

    runtime = _runtime({"notify": "websocket"}, out)
    try:
        client = _client(runtime)
        figures = []
        for index in range(jobs + 2):
            job_id = client.submit("sleep", {"seconds": 0.2}).body["job_id"]
            url = f"{runtime.websocket_url}?job_id={job_id}"
            with connect(url, additional_headers=client.handshake_headers(url)) as socket:
                for message in socket:
                    job = json.loads(message)
                    if job["status"] == "COMPLETED":
                        if index >= 2:
                            figures.append(_seconds_since(job["updated_at"]))
                        break
        return figures
    finally:
        runtime.stop()


def callback_latency(jobs: int, out: Path) -> list[float]:
    arrivals: list[tuple[float, dict[str, Any]]] = []
    arrived = threading.Condition()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with arrived:
                arrivals.append((time.time(), json.loads(body)))
                arrived.notify_all()
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    runtime = _runtime({}, out)
    try:
        client = _client(runtime)
        figures = []
        for index in range(jobs + 2):
            client.submit("sleep", {"seconds": 0.2}, callback_url=url)
            expected = index + 1
            with arrived:
                arrived.wait_for(lambda: len(arrivals) >= expected, timeout=30)  # noqa: B023  used at once
            received_at, job = arrivals[-1]
            if index >= 2:
                finished = datetime.fromisoformat(job["updated_at"].replace("Z", "+00:00")).timestamp()
                figures.append(received_at - finished)
        return figures
    finally:
        runtime.stop()
        server.shutdown()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        root = Path(work)
        results = {
            "dispatch=lambda: submit → RUNNING": start_latency("lambda", args.jobs, root / "lambda"),
            "dispatch=sqs: submit → RUNNING": start_latency("sqs", args.jobs, root / "sqs"),
            "dispatch=stepfunctions: submit → RUNNING": start_latency("stepfunctions", args.jobs, root / "sfn"),
            "notify=websocket: COMPLETED → pushed": push_latency(args.jobs, root / "websocket"),
            "callback_url: COMPLETED → POST received": callback_latency(args.jobs, root / "callback"),
        }
    print(f"{'variant (local runtime)':<44} {'median':>8} {'worst':>8}   ({args.jobs} jobs each)")
    for name, figures in results.items():
        print(f"{name:<44} {statistics.median(figures) * 1000:>6.0f} ms {max(figures) * 1000:>5.0f} ms")


if __name__ == "__main__":
    main()
