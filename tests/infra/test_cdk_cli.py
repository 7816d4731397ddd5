"""`cdk synth` through the pinned CDK CLI, exactly as `make synth` / `make deploy` run it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from stacks.config import AppConfig

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "node_modules" / ".bin" / "cdk"


def cdk_synth(out: Path, *options: str) -> None:
    """``cdk synth`` through the pinned CLI into ``out``; fails the test on a non-zero exit."""
    result = subprocess.run(  # noqa: S603  fixed arguments
        [str(CLI), "synth", "--quiet", "--no-notices", "--output", str(out), *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, "CDK_DISABLE_VERSION_CHECK": "1", "CDK_DISABLE_CLI_TELEMETRY": "true"},
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.skipif(not CLI.exists() or not shutil.which("node"), reason="run `make install` for the CDK CLI")
def test_cdk_synth_produces_the_stack_with_a_clean_validation_report(tmp_path: Path):
    cdk_synth(tmp_path, "-c", "stage=prod", "-c", "alarm_email=ops@example.com")
    stack = AppConfig.from_mapping({"stage": "prod"}).stack_name  # the stage names the stack
    template = json.loads((tmp_path / f"{stack}.template.json").read_text())
    types = {resource["Type"] for resource in template["Resources"].values()}
    assert {
        "AWS::ApiGateway::RestApi",
        "AWS::DynamoDB::Table",
        "AWS::Lambda::Function",
        "AWS::Lambda::EventInvokeConfig",
        "AWS::SQS::Queue",
        "AWS::SNS::Topic",
        "AWS::SNS::Subscription",  # the -c override reached the app
        "AWS::CloudWatch::Alarm",
        "AWS::WAFv2::WebACL",  # the prod preset (from cdk.json's stages) turned WAF on
    } <= types
    report = json.loads((tmp_path / "validation-report.json").read_text())
    assert report["pluginReports"] == []  # cdk-nag found nothing unacknowledged


@pytest.mark.skipif(not CLI.exists() or not shutil.which("node"), reason="run `make install` for the CDK CLI")
@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (("-c", "dispatch=sqs"), {"AWS::Lambda::EventSourceMapping", "AWS::SecretsManager::Secret"}),
        (
            ("-c", "dispatch=stepfunctions", "-c", "notify=websocket"),
            {"AWS::StepFunctions::StateMachine", "AWS::ApiGatewayV2::Api", "AWS::ApiGatewayV2::Stage"},
        ),
    ],
)
def test_each_variant_synthesizes_from_the_command_line(tmp_path: Path, options: tuple[str, ...], expected: set[str]):
    cdk_synth(tmp_path, *options)
    template = json.loads((tmp_path / f"{AppConfig.from_mapping({}).stack_name}.template.json").read_text())
    assert expected <= {resource["Type"] for resource in template["Resources"].values()}
    assert json.loads((tmp_path / "validation-report.json").read_text())["pluginReports"] == []
