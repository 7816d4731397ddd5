"""``jobs submit|status|wait|watch|cancel|list``: submit long-running jobs and follow them to the end.

    jobs --api-url http://127.0.0.1:3000/v1/ submit sleep --input '{"seconds": 5}' --wait
    jobs status 5f0c7a8e-...          # ASYNC_JOBS_API_URL (after app_name) may replace --api-url
    jobs wait 5f0c7a8e-... --timeout 600
    jobs watch 5f0c7a8e-...           # pushed over the stack's WebSocket if it has one, else polled
    jobs cancel 5f0c7a8e-... --wait   # a running job stops at its next progress report
    jobs list --status RUNNING        # your jobs, newest first (--all for every page)

Exit codes: 0 the job COMPLETED (result printed as JSON), 1 it FAILED (error printed),
2 a usage or API error (a finished job cannot be cancelled: 409), 3 waiting timed out,
4 the job was CANCELLED.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import uuid
from typing import Any, TextIO

from jobs_cli.app_name import api_url_variable
from jobs_cli.client import ApiError, JobsClient, Response
from jobs_cli.watch import monitor_url, over_websocket

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}
EXIT_OK, EXIT_FAILED, EXIT_ERROR, EXIT_TIMEOUT, EXIT_CANCELLED = 0, 1, 2, 3, 4
# Answers worth asking again after a pause: throttled, or the service briefly unavailable.
TRANSIENT = {429, 500, 502, 503, 504}
SUBMIT_ATTEMPTS = 4


def backoff_delays(retry_after: float, cap: float = 10.0, factor: float = 1.5) -> Any:
    """Polling delays: start at the server's Retry-After, grow by ``factor`` up to ``cap``,
    each jittered down to no less than Retry-After (so many clients do not poll in step)."""
    delay = max(retry_after, 0.1)
    while True:
        yield random.uniform(max(retry_after, 0.1), delay)  # noqa: S311  jitter, not security
        delay = min(cap, delay * factor)


def progress_bar(job: dict[str, Any], width: int = 30) -> str:
    progress = job.get("progress") or {}
    percent = int(progress.get("percent", 100 if job.get("status") == "COMPLETED" else 0))
    filled = width * percent // 100
    message = progress.get("message") or ""
    return f"[{'#' * filled}{'.' * (width - filled)}] {percent:3d}% {job.get('status', '?'):<9} {message}"[:120]


class Waiter:
    """Polls a job until it finishes, drawing a progress bar on ``out`` when it is a terminal."""

    def __init__(self, client: JobsClient, out: TextIO | None = None, sleep: Any = None) -> None:
        self._client = client
        # Looked up now, not at import: tests and tools swap sys.stderr and time.sleep.
        self._out = out or sys.stderr
        self._sleep = sleep or time.sleep
        self._live = self._out.isatty()
        self._last_line = ""

    def show(self, job: dict[str, Any]) -> None:
        """Draw the job's progress: one line redrawn on a terminal, a line per change otherwise."""
        line = progress_bar(job)
        if self._live:
            self._out.write("\r" + line.ljust(len(self._last_line)))
            if job.get("status") in TERMINAL:
                self._out.write("\n")
        elif line != self._last_line:
            self._out.write(line + "\n")
        self._out.flush()
        self._last_line = line

    def _give_up(self) -> None:
        if self._live and self._last_line:
            self._out.write("\n")

    def wait(self, job_id: str, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        delays = None
        while True:
            response = self._client.status(job_id)
            if response.status in TRANSIENT:
                delay = _retry_after(response, default=1.0)
                if time.monotonic() + delay > deadline:
                    return None
                self._sleep(delay)
                continue
            job: dict[str, Any] = _ok(response, 200).body
            self.show(job)
            if job.get("status") in TERMINAL:
                return job
            if delays is None:
                delays = backoff_delays(float(response.header("Retry-After") or 1))
            delay = next(delays)
            if time.monotonic() + delay > deadline:
                self._give_up()
                return None
            self._sleep(delay)


class Watcher(Waiter):
    """``jobs watch``: like :class:`Waiter`, but pushed over the stack's WebSocket when the
    status answer links one (``notify=websocket``); polls when it does not, or when the
    connection fails or drops early, so it always ends with the job's final state."""

    def __init__(self, client: JobsClient, out: TextIO | None = None, sleep: Any = None) -> None:
        super().__init__(client, out, sleep)
        self.transport = "polling"  # what followed the job in the end

    def watch(self, job_id: str, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        response = self._client.status(job_id)
        job: dict[str, Any] = _ok(response, 200).body
        self.show(job)
        if job.get("status") in TERMINAL:
            return job
        url = monitor_url(response)
        if url is not None:
            pushed = over_websocket(url, self._client.handshake_headers(url), deadline, self.show, TERMINAL)
            if pushed is not None:
                self.transport = "websocket"
                return pushed
        return self.wait(job_id, max(0.0, deadline - time.monotonic()))


def _retry_after(response: Response, default: float) -> float:
    try:
        return max(0.1, float(response.header("Retry-After") or default))
    except ValueError:
        return default


def submit_job(
    client: JobsClient,
    task: str,
    task_input: dict[str, Any],
    idempotency_key: str | None,
    sleep: Any = time.sleep,
    callback_url: str | None = None,
) -> dict[str, Any]:
    """Submit, retrying throttling and brief unavailability. Every attempt carries the same
    Idempotency-Key (one is made up when none is given), so a retry never creates a second job."""
    key = idempotency_key or str(uuid.uuid4())
    delays = backoff_delays(1.0)
    for attempt in range(1, SUBMIT_ATTEMPTS + 1):
        response = client.submit(task, task_input, key, callback_url)
        if response.status not in TRANSIENT or attempt == SUBMIT_ATTEMPTS:
            break
        sleep(max(_retry_after(response, default=0), next(delays)))
    return dict(_ok(response, 202).body)


def _ok(response: Response, *expected: int) -> Response:
    if response.status not in expected:
        message = response.body.get("message") if isinstance(response.body, dict) else response.body
        raise ApiError(response.status, str(message))
    return response


def list_jobs(client: JobsClient, status: str | None, limit: int, every_page: bool) -> list[dict[str, Any]]:
    """The caller's jobs, newest first: one page of up to ``limit``, or every page."""
    jobs: list[dict[str, Any]] = []
    token = None
    while True:
        body = _ok(client.list_jobs(status, limit, token), 200).body
        jobs.extend(body["jobs"])
        token = body.get("next_token")
        if not token or not every_page:
            return jobs


def _finish(client: JobsClient, job: dict[str, Any] | None) -> int:
    if job is None:
        print("timed out waiting for the job", file=sys.stderr)
        return EXIT_TIMEOUT
    if job["status"] == "COMPLETED":
        print(json.dumps(client.fetch_result(job), indent=2))
        return EXIT_OK
    if job["status"] == "CANCELLED":
        print(f"job {job['job_id']} CANCELLED", file=sys.stderr)
        return EXIT_CANCELLED
    error = job.get("error") or {}
    print(f"job {job['job_id']} FAILED: {error.get('type')}: {error.get('message')}", file=sys.stderr)
    return EXIT_FAILED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobs", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--api-url",
        default=os.environ.get(api_url_variable()),
        help=f"the API's base URL (stage included); default: ${api_url_variable()}",
    )
    parser.add_argument("--region", help="AWS region for signing (default: from the URL)")
    commands = parser.add_subparsers(dest="command", required=True)
    submit = commands.add_parser("submit", help="submit a job")
    submit.add_argument("task")
    submit.add_argument("--input", default="{}", help="the task's input as a JSON object")
    submit.add_argument("--idempotency-key", help="make retries of this submission safe (default: a fresh one)")
    submit.add_argument("--callback-url", help="https URL to POST the finished job to (signed webhook)")
    submit.add_argument("--wait", action="store_true", help="follow the job to the end with a progress bar")
    submit.add_argument("--timeout", type=float, default=3600)
    status = commands.add_parser("status", help="show a job")
    status.add_argument("job_id")
    wait = commands.add_parser("wait", help="follow a job to the end with a progress bar")
    wait.add_argument("job_id")
    wait.add_argument("--timeout", type=float, default=3600)
    watch = commands.add_parser(
        "watch", help="follow a job as it changes: WebSocket push when the stack has it, polling otherwise"
    )
    watch.add_argument("job_id")
    watch.add_argument("--timeout", type=float, default=3600)
    cancel = commands.add_parser("cancel", help="cancel a pending or running job")
    cancel.add_argument("job_id")
    cancel.add_argument("--wait", action="store_true", help="wait until a running job has stopped")
    cancel.add_argument("--timeout", type=float, default=600)
    listing = commands.add_parser("list", help="list your jobs, newest first")
    listing.add_argument("--status", help="only jobs in this status")
    listing.add_argument("--limit", type=int, default=20, help="jobs per page (1-100)")
    listing.add_argument("--all", action="store_true", help="follow every page")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    if not args.api_url:
        parser.error(f"--api-url (or {api_url_variable()}) is required")
    try:
        client = JobsClient(args.api_url, args.region)
        if args.command == "submit":
            try:
                task_input = json.loads(args.input)
            except ValueError as error:
                parser.error(f"--input is not valid JSON: {error}")
            job = submit_job(client, args.task, task_input, args.idempotency_key, callback_url=args.callback_url)
            print(job["job_id"] if args.wait else json.dumps(job, indent=2))
            if not args.wait:
                return EXIT_OK
            return _finish(client, Waiter(client).wait(job["job_id"], args.timeout))
        if args.command == "status":
            print(json.dumps(_ok(client.status(args.job_id), 200).body, indent=2))
            return EXIT_OK
        if args.command == "list":
            for job in list_jobs(client, args.status, args.limit, args.all):
                print(f"{job['job_id']}  {job['status']:<9}  {job['created_at']}  {job['task']}")
            return EXIT_OK
        if args.command == "cancel":
            job = _ok(client.cancel(args.job_id), 202).body
            if not args.wait:
                print(json.dumps(job, indent=2))
                return EXIT_OK
        follow = Watcher(client).watch if args.command == "watch" else Waiter(client).wait
        return _finish(client, follow(args.job_id, args.timeout))
    except ApiError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:  # our reader went away (`jobs ... | head`): not the API's fault
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return EXIT_OK
    except OSError as error:
        print(f"error: cannot reach {args.api_url}: {error}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
