"""cdk-nag's AwsSolutions pack and cfn-lint pass on the synthesized template."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sqs as sqs
from cdk_nag import AwsSolutionsChecks

from tests.infra.conftest import synth


@pytest.mark.parametrize(
    "context",
    [
        {"stage": "dev"},
        {"stage": "prod", "alarm_email": "ops@example.com", "worker_reserved_concurrency": "10"},
        {"stage": "prod", "removal_policy": "destroy", "waf_enabled": "false"},
        {"stage": "dev", "dispatch": "sqs"},
        {"stage": "prod", "dispatch": "sqs"},
        {"stage": "prod", "callback_max_attempts": "10", "callback_timeout_seconds": "60"},
        {"stage": "dev", "dispatch": "stepfunctions"},
        {"stage": "prod", "dispatch": "stepfunctions"},
    ],
)
def test_aws_solutions_checks_pass_with_acknowledged_findings_only(context):
    synth(context, nag=True)  # raises on any unacknowledged finding


@pytest.mark.parametrize("notify", ["none", "websocket"])
@pytest.mark.parametrize("dispatch", ["lambda", "sqs", "stepfunctions"])
def test_every_variant_combination_synthesizes_clean_and_least_privileged(dispatch: str, notify: str):
    _, template = synth({"stage": "prod", "dispatch": dispatch, "notify": notify}, nag=True)
    # No wildcard action anywhere; "*" resources only for telemetry and log delivery (X-Ray,
    # CloudWatch Logs) and DynamoDB's ListStreams, none of which reach data.
    wildcard_ok = ("xray:", "logs:")
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert all("*" not in action for action in actions), statement
            if statement["Resource"] == "*":
                assert all(a.startswith(wildcard_ok) or a == "dynamodb:ListStreams" for a in actions), statement


def test_aws_solutions_checks_do_fail_on_a_real_finding():
    app = cdk.App()
    stack = cdk.Stack(app, "Careless")
    sqs.Queue(stack, "PlainQueue", encryption=sqs.QueueEncryption.UNENCRYPTED)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(RuntimeError, match="AwsSolutions-SQS2"):
        app.synth()


@pytest.mark.parametrize(
    "context",
    [
        {"stage": "dev"},
        {"stage": "prod"},
        {"stage": "prod", "dispatch": "sqs"},
        {"stage": "prod", "dispatch": "stepfunctions"},
    ],
)
def test_cfn_lint_finds_no_errors(tmp_path: Path, context: dict[str, str]):
    _, template = synth(context)
    template_file = tmp_path / "template.json"
    template_file.write_text(json.dumps(template.to_json()))
    result = subprocess.run(  # noqa: S603  fixed arguments
        [str(Path(sys.executable).parent / "cfn-lint"), "--format", "json", str(template_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    # Exit code: a bit field of 2 errors, 4 warnings, 8 informational; 1 means cfn-lint itself failed.
    assert result.returncode != 1, result.stderr
    findings = json.loads(result.stdout or "[]")
    assert bool(result.returncode & 2) == any(f["Level"] == "Error" for f in findings)
    errors = [f for f in findings if f["Level"] == "Error"]
    assert errors == [], errors
