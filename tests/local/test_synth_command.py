"""``python -m local.synth`` (what ``make run`` synthesizes with): ``-c`` pairs reach the app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local.synth import main, parse_context
from stacks.config import AppConfig


def test_context_pairs_are_parsed_like_the_cdk_cli():
    assert parse_context(["dispatch=sqs", "notify=websocket", "alarm_email=a=b@example.com"]) == {
        "dispatch": "sqs",
        "notify": "websocket",
        "alarm_email": "a=b@example.com",
    }
    with pytest.raises(ValueError, match="name=value"):
        parse_context(["dispatch"])


def test_a_variant_is_synthesized_for_make_run(tmp_path: Path):
    assert main(["--out", str(tmp_path), "-c", "notify=websocket"]) == 0
    template = json.loads((tmp_path / f"{AppConfig.from_mapping({}).stack_name}.template.json").read_text())
    assert any(r["Type"] == "AWS::ApiGatewayV2::Api" for r in template["Resources"].values())


def test_a_bad_setting_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["--out", str(tmp_path), "-c", "dispatch=carrier-pigeon"]) == 2
    assert "dispatch" in capsys.readouterr().err
