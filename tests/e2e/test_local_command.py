"""``python -m local`` (what ``make run`` starts): clear errors instead of tracebacks."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from jobs_cli import main as cli
from local import execution
from local.__main__ import main
from tests.conftest import synthesize_app

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


@contextmanager
def served(cdk_out: Path, environment: dict[str, str]) -> Iterator[str]:
    """``python -m local`` (what ``make run`` starts) on ``cdk_out``, in ``environment``: its
    banner, once it is serving; stopped with Ctrl-C afterwards."""
    server = subprocess.Popen(  # noqa: S603  our own interpreter and module
        [sys.executable, "-m", "local", "--cdk-out", str(cdk_out), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**environment, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "lambdas")])},
    )
    try:
        assert server.stdout is not None
        banner = []
        for line in server.stdout:
            banner.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        yield "".join(banner)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)


def test_port_in_use_is_a_clear_error(cdk_out, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--cdk-out", str(cdk_out), "--port", str(port)]) == 1
    assert capsys.readouterr().err == (f"error: port {port} is already in use; free it or run with PORT=<other port>\n")


def test_missing_synthesis_is_a_clear_error(tmp_path, capsys):
    assert main(["--cdk-out", str(tmp_path)]) == 2
    assert "expected one stack template in" in capsys.readouterr().err
    assert main(["--cdk-out", str(tmp_path), "--stack", "Elsewhere-dev"]) == 2
    assert "Elsewhere-dev.template.json not found; synthesize first" in capsys.readouterr().err


def test_a_stepfunctions_stack_is_served_and_a_job_runs_through_its_workflow(tmp_path, capsys):
    # What `make run CDK_ARGS="-c dispatch=stepfunctions"` starts, then `jobs submit ... --wait`
    # (with the tests' short worker timeout, so a 1 s job).
    out = synthesize_app(tmp_path / "cdk.out", dispatch="stepfunctions")
    with served(out, dict(os.environ)) as text:
        url = re.search(r"API:\s+(\S+)", text)
        execution_command = re.search(r"--endpoint (\S+) \\\n\s+--state-machine (\S+) <job_id>", text)
        assert url and execution_command, text
        assert ".venv/bin/jobs submit sleep --input '{\"seconds\": 5}' --wait" in text  # the first task, its example
        assert cli.main(["--api-url", url.group(1), "submit", "sleep", "--input", '{"seconds": 1}', "--wait"]) == 0
        printed = capsys.readouterr().out
        slept = re.search(r'"slept_seconds": ([0-9.]+)', printed)  # the result: it completed
        assert slept and 1 <= float(slept.group(1)) < 2, printed
        [job_id] = set(re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", printed))
        endpoint, machine = execution_command.groups()
        assert execution.main(["--endpoint", endpoint, "--state-machine", machine, job_id]) == 0
        history = capsys.readouterr().out
        assert history.startswith(f"{job_id}: SUCCEEDED")
        assert [line.split()[-1] for line in history.splitlines() if "TaskStateEntered" in line] == [
            "Prepare",
            "Process",
            "Finalise",
        ]
        assert execution.main(["--endpoint", endpoint, "--state-machine", machine, str(uuid.uuid4())]) == 1


def test_a_durable_stack_is_served_without_aws_credentials_and_runs_a_job_in_steps(tmp_path, capsys):
    # What `make run CDK_ARGS="-c dispatch=durable"` starts on a laptop with no AWS account:
    # nothing in its environment names a credential. The app's own `pipeline` example, in
    # steps and a pause longer than the tests' 4 s per invocation.
    out = synthesize_app(tmp_path / "cdk.out", dispatch="durable")
    environment = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    with served(out, environment) as banner:
        url = re.search(r"API:\s+(\S+)", banner)
        assert url, banner
        job = '{"stages": 3, "stage_seconds": 1.5, "pause_seconds": 2}'
        assert cli.main(["--api-url", url.group(1), "submit", "pipeline", "--input", job, "--wait"]) == 0
        printed = capsys.readouterr().out
        stages = [int(n) for n in re.findall(r'"stage": (\d+)', printed)]  # the result: it completed
        assert stages == [1, 2, 3], printed
