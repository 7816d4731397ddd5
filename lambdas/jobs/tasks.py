"""THE TASK REGISTRY: plug your own long-running work in here.

A task is a plain function ``(input, progress) -> result``:

* ``input`` is the ``"input"`` object of ``POST /jobs``, already checked against the
  task's ``input_schema`` (JSON Schema) when the job was submitted, so bad input is a
  422 for the client, not a failed job.
* ``progress.report(percent, message)`` tells polling clients how far you are. Call it
  as often as you like: writes are throttled. If it raises ``JobNoLongerOwned``, let it
  propagate: another attempt owns the job now.
* ``progress.step("name", fn)`` runs ``fn()`` as one named step and returns its result;
  ``progress.wait(seconds)`` pauses. With ``dispatch=durable`` a step is checkpointed (a
  resumed job never runs a finished step again) and a wait runs nothing, so a job may
  outlive one invocation's 15 minutes; keep step results small JSON and the code between
  steps free of side effects (it runs again on each resume). Elsewhere ``step`` just calls
  ``fn()`` and ``wait`` sleeps, so the same task runs with every dispatcher.
* The return value must be strict JSON (no NaN or Infinity, no lone surrogate, no number
  beyond a double, at most 64 levels deep: ``jobs/strict_json.py``), or the job fails with
  ``ResultNotSerializable``; it becomes the job's ``result``. Up to
  ``max_inline_result_bytes`` (64 KiB) it is kept on the job; beyond, up to
  ``max_result_bytes`` (50 MiB), it is stored in S3 and clients get a presigned URL.
* Raise :class:`TaskFailed` (or any exception) to fail the job with that message; it is
  not retried, because doing the same thing again would fail the same way. Raise
  :class:`TransientTaskError` for a failure worth retrying (a flaky downstream service):
  Lambda retries the job up to the configured attempts.
* The worker's timeout (15 minutes by default) bounds each attempt; a task still running
  near the end is stopped and the attempt recorded as timed out.

To add a task: write the function below, decorate it with ``@task("name", schema)``,
and submit ``{"task": "name", "input": {...}}``. Keep heavy imports inside the function:
this module is also imported by the submit function, which only needs the names.

The six tasks below are examples: delete them and keep only yours. Nothing else uses
them (the tests and benchmarks bring their own, ``tests/support/tasks.py``); the
machinery they use is in ``jobs/registry.py``.
"""

from __future__ import annotations

import functools
import math
import time
from typing import Any

from jobs.registry import ProgressSink, TaskFailed, task  # and TransientTaskError, for retryable failures

# -- example tasks ----------------------------------------------------------------------


@task(
    "sleep",
    {
        "type": "object",
        "properties": {"seconds": {"type": "number", "minimum": 0, "maximum": 3600, "examples": [5]}},
        "required": ["seconds"],
        "additionalProperties": False,
    },
)
def sleep(input: dict[str, Any], progress: ProgressSink) -> dict[str, Any]:
    """Wait ``seconds``, reporting progress as it goes: a stand-in for slow I/O."""
    seconds = float(input["seconds"])
    started = time.monotonic()
    step = min(1.0, seconds / 100) if seconds > 0 else 0
    while (elapsed := time.monotonic() - started) < seconds:
        progress.report(100 * elapsed / seconds, f"slept {elapsed:.1f} of {seconds:g} s")
        time.sleep(min(step, seconds - elapsed))
    return {"slept_seconds": round(time.monotonic() - started, 3)}


@task(
    "pipeline",
    {
        "type": "object",
        "properties": {
            "stages": {"type": "integer", "minimum": 1, "maximum": 20},
            "stage_seconds": {"type": "number", "minimum": 0, "maximum": 600},
            "pause_seconds": {"type": "number", "minimum": 0, "maximum": 86_400},
        },
        "required": ["stages"],
        "additionalProperties": False,
    },
)
def pipeline(input: dict[str, Any], progress: ProgressSink) -> dict[str, Any]:
    """A job in steps with a pause after the first: ``stages`` steps of ``stage_seconds``
    each (stand-ins for extract, transform, load...), then ``pause_seconds`` of waiting.
    With ``dispatch=durable`` each step is checkpointed and the pause runs nothing, so the
    whole may outlast one invocation; elsewhere it runs in one attempt."""
    stages = int(input["stages"])
    seconds = float(input.get("stage_seconds", 1))
    done: list[dict[str, Any]] = []
    for number in range(1, stages + 1):
        # A step's result must be JSON (and small): it is what a resumed job gets back.
        done.append(progress.step(f"stage-{number}", functools.partial(_stage, number, seconds)))
        progress.report(100 * number / stages, f"stage {number} of {stages} done")
        if number == 1 and input.get("pause_seconds"):
            progress.wait(float(input["pause_seconds"]))
    return {"stages": done}


def _stage(number: int, seconds: float) -> dict[str, Any]:
    started = time.monotonic()
    time.sleep(seconds)
    return {"stage": number, "seconds": round(time.monotonic() - started, 3)}


@task(
    "fail",
    {
        "type": "object",
        "properties": {
            "message": {"type": "string", "maxLength": 500},
            "after_seconds": {"type": "number", "minimum": 0, "maximum": 60},
        },
        "additionalProperties": False,
    },
)
def fail(input: dict[str, Any], progress: ProgressSink) -> None:
    """Fail on demand (after an optional delay), to see how failures look."""
    delay = float(input.get("after_seconds", 0))
    if delay:
        progress.report(0, "about to fail")
        time.sleep(delay)
    raise TaskFailed(input.get("message", "failed on request"))


@task(
    "primes",
    {
        "type": "object",
        "properties": {"limit": {"type": "integer", "minimum": 2, "maximum": 50_000_000}},
        "required": ["limit"],
        "additionalProperties": False,
    },
)
def primes(input: dict[str, Any], progress: ProgressSink) -> dict[str, Any]:
    """Count the primes below ``limit`` with a segmented sieve: real CPU work."""
    limit = int(input["limit"])
    root = math.isqrt(limit) + 1
    base = bytearray([1]) * root
    base[0:2] = b"\x00\x00"
    for number in range(2, math.isqrt(root) + 1):
        if base[number]:
            base[number * number :: number] = bytearray(len(range(number * number, root, number)))
    small_primes = [number for number in range(root) if base[number]]
    count = sum(1 for p in small_primes if p < limit)
    segment_size = max(root, 1 << 16)
    low = root
    while low < limit:
        high = min(low + segment_size, limit)
        segment = bytearray([1]) * (high - low)
        for prime in small_primes:
            start = max(prime * prime, (low + prime - 1) // prime * prime)
            segment[start - low :: prime] = bytearray(len(range(start, high, prime)))
        count += segment.count(1)
        low = high
        progress.report(100 * low / limit, f"sieved up to {low:,}")
    return {"limit": limit, "prime_count": count}


@task(
    "report",
    {
        "type": "object",
        "properties": {"rows": {"type": "integer", "minimum": 1, "maximum": 1_000_000}},
        "required": ["rows"],
        "additionalProperties": False,
    },
)
def report(input: dict[str, Any], progress: ProgressSink) -> dict[str, Any]:
    """Build a table of ``rows`` rows: a result that can outgrow the job item (it then goes to S3)."""
    count = int(input["rows"])
    rows = []
    for number in range(count):
        rows.append({"n": number, "square": number * number})
        if number % 10_000 == 0:
            progress.report(100 * number / count, f"{number:,} of {count:,} rows")
    return {"rows": rows}


# The sample table ``sales_report`` reads: created and filled by the first job that needs it
# (under a transaction-scoped advisory lock, so concurrent first jobs fill it once).
SAMPLE_SALES_ROWS = 10_000
SAMPLE_SALES_TABLE = """
CREATE TABLE IF NOT EXISTS sample_sales (
    id integer PRIMARY KEY,
    region text NOT NULL,
    amount numeric(10, 2) NOT NULL
)"""
SAMPLE_SALES_FILL = """
INSERT INTO sample_sales (id, region, amount)
SELECT n, (ARRAY['north', 'south', 'east', 'west'])[1 + n % 4], (n % 97) + 0.5
FROM generate_series(1, :rows) AS n
ON CONFLICT (id) DO NOTHING"""


@task(
    "sales_report",
    {
        "type": "object",
        "properties": {"region": {"type": "string", "enum": ["north", "south", "east", "west"]}},
        "additionalProperties": False,
    },
)
def sales_report(input: dict[str, Any], progress: ProgressSink) -> dict[str, Any]:
    """Total the sample sales table by region (deployments with ``database=postgres``): a
    database query as the slow part. Shows the reused connection of ``jobs/database.py``."""
    from jobs.database import database  # noqa: PLC0415  only this task needs the driver

    db = database()
    progress.report(0, "preparing the sample table")
    with db.transaction():
        db.run("SELECT pg_advisory_xact_lock(hashtext('sample_sales'))")
        db.run(SAMPLE_SALES_TABLE)
        if not db.run("SELECT EXISTS (SELECT 1 FROM sample_sales)")[0][0]:
            db.run(SAMPLE_SALES_FILL, rows=SAMPLE_SALES_ROWS)
    progress.report(50, "totalling")
    rows = db.run(
        "SELECT region, count(*), sum(amount)::text FROM sample_sales"
        " WHERE CAST(:region AS text) IS NULL OR region = :region GROUP BY region ORDER BY region",
        region=input.get("region"),
    )
    return {"regions": [{"region": region, "sales": count, "total": total} for region, count, total in rows]}
