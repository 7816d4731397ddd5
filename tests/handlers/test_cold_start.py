"""What a cold start loads: no tracing SDK, one DynamoDB client, nothing for other paths.

Each handler module is imported in a fresh interpreter with the environment Lambda gives a
deployed function with active tracing: ``AWS_LAMBDA_FUNCTION_NAME`` and a trace header in
``_X_AMZN_TRACE_ID`` (and no ``POWERTOOLS_TRACE_DISABLED``: nothing here sets it). The
figures themselves are bench/cold_start.py's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TEST_ENVIRONMENT

LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"
HANDLERS = sorted(p.stem for p in (LAMBDAS / "jobs" / "handlers").glob("*.py") if p.stem != "__init__")
TRACE_HEADER = "Root=1-67891233-abcdef012345678912345678;Parent=53995c3f42cd8ad8;Sampled=1"

PROBE = """
import json, sys
import jobs.handlers.{module}
from jobs import clients
print(json.dumps({{
    "xray": sorted(m for m in sys.modules if m.startswith("aws_xray_sdk")),
    "clients": clients.created(),
    "validation": "fastjsonschema" in sys.modules,
    "callbacks": "jobs.callbacks" in sys.modules,
}}))
"""


def cold_start(module: str) -> dict[str, object]:
    environment = dict(TEST_ENVIRONMENT) | {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(LAMBDAS),
        "AWS_LAMBDA_FUNCTION_NAME": module,
        "_X_AMZN_TRACE_ID": TRACE_HEADER,
        "DISPATCH": "lambda",
    }
    assert "POWERTOOLS_TRACE_DISABLED" not in environment
    probe = subprocess.run(  # noqa: S603  our own interpreter and probe
        [sys.executable, "-c", PROBE.format(module=module)],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    return dict(json.loads(probe.stdout.splitlines()[-1]))


def test_every_handler_is_probed():
    assert {"submit", "status", "cancel", "worker", "queue_worker", "steps", "callbacks", "websocket"} <= set(HANDLERS)


@pytest.mark.parametrize("module", HANDLERS)
def test_no_handler_loads_the_xray_sdk_and_only_dynamodb_is_a_client_at_import(module: str):
    loaded = cold_start(module)
    assert loaded["xray"] == []
    # Every function reads the jobs table; anything else is created on the first call that needs it.
    assert loaded["clients"] == ["dynamodb"]


@pytest.mark.parametrize("module", ["status", "cancel", "worker"])
def test_functions_that_never_validate_input_or_call_back_do_not_load_either(module: str):
    loaded = cold_start(module)
    assert loaded["validation"] is False
    assert loaded["callbacks"] is False


def test_the_functions_use_low_level_clients_only():
    # The resource interface is feature-frozen and loads its own models at cold start.
    sources = {p: p.read_text() for p in LAMBDAS.rglob("*.py")}
    assert [p.name for p, text in sources.items() if "boto3.resource(" in text or "boto3.client(" in text] == [
        "clients.py"
    ]
    assert not [p.name for p, text in sources.items() if "boto3.dynamodb.conditions" in text]
