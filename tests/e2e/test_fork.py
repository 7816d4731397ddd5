"""A starter template in fact: a fork renamed with one setting (``app_name``), its example
tasks deleted and one task of its own added, passes what ``make test`` runs (lint, type
checks, the in-process tests that read what a fork changes) and serves and runs its task in
the local runtime.

The in-process tests it runs again are all but ``tests/handlers``: those drive the handlers
with the tests' own tasks, table names and settings (``tests/support``, ``TEST_ENVIRONMENT``),
none of which a fork changes, so they pass in a fork exactly as here (the guard below keeps
them from reading the app's tasks, its name or its settings). Running them again would
double the suite's longest part for no new proof.

The fork is a copy of this checkout in a temporary folder (without .git, .venv or
node_modules: the CDK CLI tests skip there), using this checkout's virtualenv."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.credentials import Credentials

from jobs_cli.client import JobsClient
from local.banner import try_lines
from local.server import LocalRuntime
from local.synth import synthesize
from tests.conftest import LOCAL_TEST_CONTEXT
from tests.e2e.test_jobs_e2e import submit, wait

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv", "node_modules", "cdk.out*", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", ".coverage"
)
# The whole of the fork's lambdas/jobs/tasks.py: one task of its own, no example left.
FORK_TASKS = '''"""Acme's long-running work."""

from __future__ import annotations

from typing import Any

from jobs.registry import ProgressSink, task

TEXT = {
    "type": "object",
    "properties": {"text": {"type": "string", "maxLength": 10000}},
    "required": ["text"],
    "additionalProperties": False,
}


@task("word-count", TEXT)
def word_count(input: dict[str, Any], progress: ProgressSink) -> dict[str, int]:
    """Count the words of ``text``."""
    progress.report(50, "counting")
    return {"words": len(input["text"].split())}
'''


@pytest.fixture(scope="module")
def fork(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("fork") / "acme-reports"
    shutil.copytree(ROOT, copy, ignore=NOT_COPIED)
    cdk_json = json.loads((copy / "cdk.json").read_text())
    cdk_json["context"]["settings"]["app_name"] = "acme-reports"  # the one setting that renames it
    (copy / "cdk.json").write_text(json.dumps(cdk_json, indent=2) + "\n")
    (copy / "lambdas" / "jobs" / "tasks.py").write_text(FORK_TASKS)
    return copy


def run(fork: Path, *command: str, timeout: float) -> str:
    result = subprocess.run(  # noqa: S603  fixed commands
        command, cwd=fork, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, (
        f"{' '.join(command)} failed in the fork:\n{result.stdout[-4000:]}{result.stderr[-3000:]}"
    )
    return result.stdout


def test_the_fork_passes_lint_and_type_checks(fork: Path):
    run(fork, str(VENV_BIN / "ruff"), "check", ".", timeout=120)
    run(fork, str(VENV_BIN / "ruff"), "format", "--check", ".", timeout=120)
    run(fork, str(VENV_BIN / "mypy"), "lambdas/jobs", "tests/support", timeout=600)


# What a fork changes (its tasks, its name) reaches no test under here: see the docstring.
NOT_FORK_SENSITIVE = "tests/handlers"


# How a test would reach what a fork changes: the app's tasks module, its settings, its name,
# its OpenAPI document, or a synthesis of the app (the stack's table definitions, read by
# construct id and renamed to the tests' tables, are the one use allowed: a fork keeps them).
READS_WHAT_A_FORK_CHANGES = re.compile(
    r"jobs\.tasks|from jobs import tasks|load_tasks|APP_TASKS_MODULE"
    r"|cdk\.json|default_context|app_name|openapi\.json|synthesi[sz]e"
)


def test_the_tests_a_fork_need_not_run_again_read_nothing_a_fork_changes():
    modules = sorted((ROOT / NOT_FORK_SENSITIVE).rglob("*.py"))
    assert len(modules) > 10
    for module in modules:
        found = READS_WHAT_A_FORK_CHANGES.search(module.read_text())
        assert found is None, f"{module.relative_to(ROOT)} reads {found.group(0)!r}: run it in the fork test too"


def test_the_forks_in_process_suite_passes(fork: Path):
    run(fork, sys.executable, "-m", "stacks.openapi", "docs/openapi.json", timeout=120)  # as make test does
    assert "word-count" in (fork / "docs" / "openapi.json").read_text()
    # On one worker per core, as make test runs it.
    out = run(
        fork,
        sys.executable,
        "-m",
        "pytest",
        "-m",
        "not e2e",
        f"--ignore={NOT_FORK_SENSITIVE}",
        "-n",
        "2",
        "--dist",
        "loadfile",
        "-q",
        "-x",
        "-p",
        "no:cacheprovider",
        timeout=1800,
    )
    assert " passed" in out and " failed" not in out


@pytest.fixture(scope="module")
def fork_runtime(fork: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    out = synthesize(fork / "app.py", tmp_path_factory.mktemp("cdk.out.fork"), LOCAL_TEST_CONTEXT)
    assert [path.name for path in out.glob("*.template.json")] == ["AcmeReports-dev.template.json"]
    runtime = LocalRuntime(out, port=0, retry_base_delay=0.2).start()  # the fork's own tasks: nothing preloaded
    yield runtime
    runtime.stop()


def test_the_fork_serves_and_runs_its_own_task(fork_runtime: LocalRuntime):
    client = JobsClient(fork_runtime.api_url, credentials=Credentials("ACME", "secret"))
    job = wait(client, submit(client, "word-count", {"text": "one two three"}))
    assert (job["status"], job["result"]) == ("COMPLETED", {"words": 3})
    refused = client.submit("sleep", {"seconds": 1})  # the examples are gone
    assert refused.status == 422 and "registered tasks: word-count" in refused.body["message"]
    assert fork_runtime.template.app_name == "acme-reports"


def test_the_forks_banner_suggests_its_own_task_and_the_suggestion_runs(fork: Path, fork_runtime: LocalRuntime):
    run(fork, sys.executable, "-m", "stacks.openapi", "docs/openapi.json", timeout=120)  # as make run does
    banner = try_lines(fork_runtime.api_url, "ACME_REPORTS_API_URL", fork / "docs" / "openapi.json")
    suggested = re.search(r"jobs submit (\S+) --input '(.*)' --wait", banner)
    assert suggested and suggested.group(1) == "word-count", banner
    assert "sleep" not in banner
    client = JobsClient(fork_runtime.api_url, credentials=Credentials("ACME", "secret"))
    job = wait(client, submit(client, suggested.group(1), json.loads(suggested.group(2))))
    assert job["status"] == "COMPLETED", job
