"""The tasks the tests and benchmarks run, installed in place of the app's own.

The app's tasks (``lambdas/jobs/tasks.py``) are examples a fork deletes; nothing here may
depend on them. Importing this module installs these tasks in the registry instead:
``tests/conftest.py`` imports it for the in-process tests, and the local runtime's
sandboxes import it before each handler (``LocalRuntime(preload=tests.support.TEST_TASKS)``),
so a handler's ``load_tasks()`` finds these. The names and inputs are the ones the tests use.
"""

from __future__ import annotations

import functools
import math
import os
import signal
import time
from typing import Any

from jobs.registry import REGISTRY, ProgressSink, TaskFailed, load_tasks, task


def install() -> None:  # noqa: PLR0915  one registration after another
    """Replace the app's tasks with the ones below (the app's module imported first, so
    that a handler's later ``load_tasks()`` does not register them again)."""
    load_tasks()
    REGISTRY.clear()

    @task("sleep", _object({"seconds": {"type": "number", "minimum": 0, "maximum": 3600}}, required=["seconds"]))
    def sleep(input: dict[str, Any], progress: ProgressSink) -> dict[str, Any]:
        """Wait ``seconds``, reporting progress about every 10 ms (or each second)."""
        seconds, started = float(input["seconds"]), time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            progress.report(100 * elapsed / seconds, f"slept {elapsed:.1f} of {seconds:g} s")
            time.sleep(min(1.0, seconds / 100, seconds - elapsed))
        return {"slept_seconds": round(time.monotonic() - started, 3)}

    @task(
        "fail",
        _object({"message": {"type": "string", "maxLength": 500}, "after_seconds": {"type": "number", "minimum": 0}}),
    )
    def fail(input: dict[str, Any], progress: ProgressSink) -> None:
        """Fail with ``message``, after ``after_seconds`` if given."""
        if input.get("after_seconds"):
            progress.report(0, "about to fail")
            time.sleep(float(input["after_seconds"]))
        raise TaskFailed(input.get("message", "failed on request"))

    @task("primes", _object({"limit": {"type": "integer", "minimum": 2, "maximum": 50_000_000}}, required=["limit"]))
    def primes(input: dict[str, Any], progress: ProgressSink) -> dict[str, Any]:
        """Count the primes below ``limit`` with a sieve over odd numbers only: CPU work."""
        limit = int(input["limit"])
        odd = bytearray([1]) * (limit // 2)  # odd[i] stands for 2i + 1
        odd[0] = 0  # 1 is not prime
        for i in range(1, (math.isqrt(limit - 1) - 1) // 2 + 1):
            if odd[i]:
                start = (2 * i + 1) ** 2 // 2
                odd[start :: 2 * i + 1] = bytes(len(range(start, len(odd), 2 * i + 1)))
                progress.report(100 * i / len(odd))
        return {"limit": limit, "prime_count": odd.count(1) + (1 if limit > 2 else 0)}

    @task("report", _object({"rows": {"type": "integer", "minimum": 1, "maximum": 1_000_000}}, required=["rows"]))
    def report(input: dict[str, Any], progress: ProgressSink) -> dict[str, Any]:
        """``rows`` rows of squares: a result that outgrows the job item when large."""
        progress.report(0, "building")
        return {"rows": [{"n": number, "square": number * number} for number in range(int(input["rows"]))]}

    @task("echo", {"type": "object"})
    def echo(input: dict[str, Any], progress: ProgressSink) -> dict[str, Any]:
        """Return the input: a task only the tests have, to show whose tasks run."""
        return {"echo": input}

    @task(
        "stages",
        _object(
            {
                "stages": {"type": "integer", "minimum": 1, "maximum": 10},
                "stage_seconds": {"type": "number", "minimum": 0, "maximum": 60},
                "wait_seconds": {"type": "number", "minimum": 0, "maximum": 3600},
                "journal": {"type": "string", "maxLength": 500},
                "crash_in": {"type": "string", "maxLength": 50},
            },
            required=["stages"],
        ),
    )
    def stages(input: dict[str, Any], progress: ProgressSink) -> dict[str, Any]:
        """``stages`` steps of ``stage_seconds`` each, a wait of ``wait_seconds`` after the
        first; each step notes its start and end in the file ``journal``. The process dies
        inside the step ``crash_in`` while the file ``<journal>.crash`` exists (it is removed
        first, so the step's next run goes through)."""
        journal = input.get("journal")

        def note(line: str) -> None:
            if journal:
                with open(journal, "a") as file:
                    file.write(line + "\n")

        def stage(name: str, number: int) -> int:
            note(f"start {name}")
            if journal and input.get("crash_in") == name and os.path.exists(journal + ".crash"):
                os.unlink(journal + ".crash")
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(float(input.get("stage_seconds", 0)))
            note(f"done {name}")
            return number

        done = []
        for number in range(1, int(input["stages"]) + 1):
            done.append(progress.step(f"stage-{number}", functools.partial(stage, f"stage-{number}", number)))
            progress.report(100 * number / int(input["stages"]), f"stage {number} done")
            if number == 1 and input.get("wait_seconds"):
                progress.wait(float(input["wait_seconds"]))
        return {"stages": done}

    @task("whoami", _object({}))
    def whoami(input: dict[str, Any], progress: ProgressSink) -> dict[str, Any]:
        """``database=postgres``: whose this environment's connection is, and its server backend
        (the local proxy's front knows which backends it opened for a TLS client)."""
        from jobs.database import database

        [[pid, user]] = database().run("SELECT pg_backend_pid(), current_user")
        return {"backend_pid": pid, "user": user}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    return {**schema, "required": required} if required else schema


install()
