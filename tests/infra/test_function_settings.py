"""Every function's environment, as synthesized, in every variant, is one its code starts
with: ``Settings.from_env`` reads it without error, no variable of ours is one the
settings do not declare (a misspelled name would otherwise just be ignored), and each
handler module, imported in a fresh interpreter with exactly that environment, loads (its
``settings.require(...)`` calls run at import). A missing or misspelled variable fails
here, not at a cold start in AWS."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from jobs.settings import Settings, declarations
from tests.infra.conftest import synth

VARIANTS: dict[str, dict[str, Any]] = {
    "lambda": {},
    "sqs": {"dispatch": "sqs"},
    "stepfunctions": {"dispatch": "stepfunctions"},
    "websocket": {"notify": "websocket"},
    "snapstart": {"api_cold_start": "snapstart", "worker_cold_start": "snapstart"},
    "prod": {"stage": "prod", "retry_after_seconds": 5},
    "vpc": {"vpc": "new", "dispatch": "sqs"},
    "database": {"database": "postgres", "dispatch": "stepfunctions"},
}
DECLARED = {declaration.env for declaration in declarations(Settings).values()}


def deploy_time_value(value: Any) -> str:
    """A Ref, GetAtt or Join stands for a name, ARN or URL CloudFormation fills in."""
    return value if isinstance(value, str) else "resolved-at-deploy-time"


LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"
# What the Lambda runtime itself adds to every environment; no AWS call happens at import.
RUNTIME = {
    "AWS_REGION": "eu-west-1",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "x",
    "AWS_SECRET_ACCESS_KEY": "x",
    "PYTHONPATH": str(LAMBDAS),
}


def function_environments(context: dict[str, Any], with_handlers: bool = False) -> dict[str, Any]:
    """Our functions' environments by logical id (with their handler, as (handler, environment))."""
    _, template = synth(context)
    environments: dict[str, Any] = {}
    for logical_id, resource in template.find_resources("AWS::Lambda::Function").items():
        variables = resource["Properties"].get("Environment", {}).get("Variables", {})
        if "APP_NAME" in variables:  # ours; CDK's own helper functions are not
            environment = {name: deploy_time_value(value) for name, value in variables.items()}
            environments[logical_id] = (
                (resource["Properties"]["Handler"], environment) if with_handlers else environment
            )
    return environments


def import_failure(handler: str, environment: dict[str, str]) -> str | None:
    """The error of importing ``handler``'s module with only ``environment``, if any (once per
    handler and environment: variants share most of their functions' environments)."""
    return _import_failure(handler, tuple(sorted(environment.items())))


@functools.cache
def _import_failure(handler: str, environment: tuple[tuple[str, str], ...]) -> str | None:
    module = handler.rsplit(".", 1)[0]
    result = subprocess.run(  # noqa: S603  a fixed interpreter and module name
        [sys.executable, "-c", f"import {module}"],
        env={**dict(environment), **RUNTIME, "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return None if result.returncode == 0 else result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_function_starts_with_its_synthesized_environment(variant: str):
    environments = function_environments(VARIANTS[variant])
    assert len(environments) >= 6  # submit, status, cancel, worker, reaper, callbacks, and the variant's own
    for logical_id, environment in environments.items():
        settings = Settings.from_env(environment)
        ours = {name for name in environment if not name.startswith("POWERTOOLS_")}
        assert ours <= DECLARED, f"{logical_id}: {sorted(ours - DECLARED)} are not settings"
        if "DISPATCH" in environment:  # the submit function: it hands jobs over the variant's way
            assert settings.dispatch == VARIANTS[variant].get("dispatch", "lambda")
    if variant == "prod":
        assert {env["RETRY_AFTER_SECONDS"] for env in environments.values()} == {"5"}  # a cdk.json choice reaches all


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_handler_loads_with_its_synthesized_environment(variant: str):
    functions = function_environments(VARIANTS[variant], with_handlers=True)
    with ThreadPoolExecutor(max_workers=2) as pool:
        failures = dict(zip(functions, pool.map(lambda item: import_failure(*item), functions.values()), strict=True))
    assert {name: error for name, error in failures.items() if error} == {}


def test_the_import_check_notices_a_setting_a_handler_requires():
    functions = function_environments({}, with_handlers=True)
    [(handler, environment)] = [item for item in functions.values() if item[0] == "jobs.handlers.submit.handler"]
    assert import_failure(handler, environment) is None
    without = {name: value for name, value in environment.items() if name != "WORKER_FUNCTION_NAME"}
    assert "worker_function_name" in str(import_failure(handler, without))


def test_the_check_notices_a_misspelled_or_missing_variable():
    [environment, *_] = function_environments({}).values()
    misspelled = {**environment, "RETRY_AFTER_SECOND": "3"}
    assert set(misspelled) - DECLARED - {n for n in misspelled if n.startswith("POWERTOOLS_")} == {"RETRY_AFTER_SECOND"}
    with pytest.raises(Exception, match="JOBS_TABLE_NAME"):
        Settings.from_env({name: value for name, value in environment.items() if name != "JOBS_TABLE_NAME"})


def test_a_construct_cannot_set_an_undeclared_or_out_of_range_setting():
    with pytest.raises(Exception, match="no such setting: retry_after"):
        Settings.variables(retry_after=3)
    with pytest.raises(Exception, match="MAX_ATTEMPTS must be between 1 and 3"):
        Settings.variables(max_attempts=4)
    assert Settings.variables(jobs_table_name="${Token[TOKEN.123]}") == {"JOBS_TABLE_NAME": "${Token[TOKEN.123]}"}
