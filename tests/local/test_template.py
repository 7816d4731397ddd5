"""Reading the template: scheduled EventBridge rules become local schedules."""

from __future__ import annotations

import json
from pathlib import Path

from local.template import load


def write_template(cdk_out: Path, rules: dict[str, dict]) -> None:
    function = {
        "Type": "AWS::Lambda::Function",
        "Metadata": {"aws:asset:path": "asset.code"},
        "Properties": {"Handler": "handlers.reap", "Runtime": "python3.14"},
    }
    resources = {"ReaperFn": function, **{k: {"Type": "AWS::Events::Rule", "Properties": v} for k, v in rules.items()}}
    (cdk_out / "asset.code").mkdir()
    (cdk_out / "AsyncJobs.template.json").write_text(json.dumps({"Resources": resources}))


def test_rate_rules_targeting_functions_are_scheduled(tmp_path: Path):
    target = [{"Arn": {"Fn::GetAtt": ["ReaperFn", "Arn"]}, "Id": "Target0"}]
    write_template(
        tmp_path,
        {
            "EveryFive": {"ScheduleExpression": "rate(5 minutes)", "State": "ENABLED", "Targets": target},
            "Hourly": {"ScheduleExpression": "rate(1 hour)", "Targets": target},
            "Nightly": {"ScheduleExpression": "cron(0 3 * * ? *)", "Targets": target},  # not emulated
            "Off": {"ScheduleExpression": "rate(1 minute)", "State": "DISABLED", "Targets": target},
            "Elsewhere": {"ScheduleExpression": "rate(1 day)", "Targets": [{"Arn": "arn:aws:sqs:x", "Id": "q"}]},
        },
    )
    schedules = {s.logical_id: s for s in load(tmp_path).schedules}
    assert set(schedules) == {"EveryFive", "Hourly", "Elsewhere"}
    assert (schedules["EveryFive"].interval_seconds, schedules["EveryFive"].functions) == (300, ["ReaperFn"])
    assert schedules["Hourly"].interval_seconds == 3600
    assert schedules["Elsewhere"].functions == []  # only function targets are invoked locally
    assert schedules["EveryFive"].arn.endswith(":rule/EveryFive")


def test_sqs_event_source_mappings_are_read(tmp_path: Path):
    write_template(tmp_path, {})
    template_file = tmp_path / "AsyncJobs.template.json"
    template = json.loads(template_file.read_text())
    template["Resources"]["JobsQueue"] = {"Type": "AWS::SQS::Queue", "Properties": {}}
    template["Resources"]["Mapping"] = {
        "Type": "AWS::Lambda::EventSourceMapping",
        "Properties": {
            "EventSourceArn": {"Fn::GetAtt": ["JobsQueue", "Arn"]},
            "FunctionName": {"Ref": "ReaperFn"},
            "BatchSize": 1,
            "ScalingConfig": {"MaximumConcurrency": 4},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    }
    template_file.write_text(json.dumps(template))
    [mapping] = load(tmp_path).queue_mappings
    assert (mapping.queue, mapping.function, mapping.batch_size, mapping.max_concurrency) == (
        "JobsQueue",
        "ReaperFn",
        1,
        4,
    )
    assert mapping.report_batch_item_failures
