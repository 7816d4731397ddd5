"""One name: ``app_name`` in cdk.json renames everything the template names after the app
(stack, tags, descriptions, metrics namespace, WAF and dashboard names, alarm names,
callback headers), in every variant."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from jobs.naming import AppName
from local.synth import ROOT, synthesize
from stacks.config import AppConfig, ConfigError

OLD_NAME = re.compile(r"async[-_ ]?jobs", re.IGNORECASE)
VARIANTS = {
    "sqs-waf-prod": {"dispatch": "sqs", "stage": "prod", "waf_enabled": "true", "alarm_email": "ops@example.com"},
    "stepfunctions-websocket": {"dispatch": "stepfunctions", "notify": "websocket"},
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_a_renamed_app_leaves_no_trace_of_the_old_name(tmp_path: Path, variant: str):
    context = {"app_name": "acme-reports", **VARIANTS[variant]}
    synthesize(ROOT / "app.py", tmp_path, context)
    stage = context.get("stage", "dev")
    [template_file] = tmp_path.glob("*.template.json")
    assert template_file.name == f"AcmeReports-{stage}.template.json"
    text = template_file.read_text()
    assert not OLD_NAME.findall(text), sorted(
        {text[max(0, m.start() - 60) : m.end() + 20] for m in OLD_NAME.finditer(text)}
    )
    template = json.loads(text)
    functions = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    env = [
        f["Environment"]["Variables"] for f in functions if "APP_NAME" in f.get("Environment", {}).get("Variables", {})
    ]
    assert env and all(e["APP_NAME"] == "acme-reports" for e in env)
    assert {e["POWERTOOLS_METRICS_NAMESPACE"] for e in env} == {"AcmeReports"}
    assert "AcmeReports" in text and "acme-reports" in text and "X-Acme-Reports-Signature" in text


def test_different_names_never_name_the_same_stack():
    # "acme-2go" would be Acme2go like "acme2go": refused, so the pascal form stays one-to-one.
    names = ["acme2go", "acme-go2", "acme-go", "acmego", "a-b-c", "ab-c", "abc"]
    assert len({AppName(name).pascal for name in names}) == len(names)


def test_the_derived_forms():
    name = AppName("acme-reports")
    assert (name.pascal, name.header, name.env_prefix, name.api_url_variable) == (
        "AcmeReports",
        "Acme-Reports",
        "ACME_REPORTS",
        "ACME_REPORTS_API_URL",
    )
    assert AppConfig.from_mapping({"app_name": "acme-reports", "stage": "prod"}).stack_name == "AcmeReports-prod"


@pytest.mark.parametrize(
    "bad", ["", "Acme", "acme_reports", "-acme", "acme-", "acme--reports", "1acme", "acme-2go", "a" * 33]
)
def test_a_name_that_cannot_name_everything_is_refused(bad: str):
    with pytest.raises(ConfigError, match="app_name"):
        AppConfig.from_mapping({"app_name": bad})
