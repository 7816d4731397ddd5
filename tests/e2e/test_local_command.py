"""``python -m local`` (what ``make run`` starts): clear errors instead of tracebacks."""

from __future__ import annotations

import socket

import pytest

from local.__main__ import main

pytestmark = pytest.mark.e2e


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
    assert main(["--cdk-out", str(tmp_path), "--stack", "AsyncJobs-dev"]) == 2
    assert "AsyncJobs-dev.template.json not found; synthesize first" in capsys.readouterr().err


def test_a_stepfunctions_stack_is_refused_with_the_reason(tmp_path, capsys):
    from tests.conftest import synthesize_app

    out = synthesize_app(tmp_path / "cdk.out", dispatch="stepfunctions")
    assert main(["--cdk-out", str(out), "--port", "0"]) == 2
    error = capsys.readouterr().err
    assert "dispatch=stepfunctions" in error and "does not emulate" in error
