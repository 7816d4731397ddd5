"""dispatch=durable: the worker as a Lambda durable function, asserted on the template
against what AWS documents (Lambda Developer Guide, "Lambda durable functions": DurableConfig,
qualified invocation, the execution role's permissions, status-change events)."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from aws_cdk.assertions import Match, Template

from stacks.config import AppConfig, ConfigError, default_context
from stacks.layers import InstalledDistributions, pinned_requirements
from stacks.python_function import LAMBDAS_DIR
from stacks.worker import DURABLE_SDK_REQUIREMENTS, durable_worker_name
from tests.infra.conftest import function_id, only, synth
from tests.support import EXISTING_VPC

DURABLE_WORKER = "jobs.handlers.durable_worker.handler"


@pytest.fixture(scope="module")
def durable() -> Template:
    # nag: every AwsSolutions finding answered (synth raises otherwise)
    _, template = synth({"dispatch": "durable", "durable_execution_timeout_seconds": 7200}, nag=True)
    return template


def statements_of(template: Template, function: str) -> list[dict[str, Any]]:
    role = template.to_json()["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    return [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_the_worker_is_a_durable_function_with_the_configured_timeout_and_retention(durable: Template) -> None:
    worker = durable.to_json()["Resources"][function_id(durable, DURABLE_WORKER)]["Properties"]
    # CloudFormation AWS::Lambda::Function DurableConfig: ExecutionTimeout (s), RetentionPeriodInDays.
    assert worker["DurableConfig"] == {"ExecutionTimeout": 7200, "RetentionPeriodInDays": 14}
    assert worker["Runtime"] == "python3.14"  # a runtime durable functions support (python3.13, python3.14)
    layers = worker["Layers"]
    assert len(layers) == 2 and {"Ref": Match.any_value()} != layers[1]  # Powertools, then the SDK's own layer
    sdk = only(durable, "AWS::Lambda::LayerVersion")[0]
    assert layers[1] == {"Ref": sdk}


def test_the_role_has_the_documented_checkpoint_permissions(durable: Template) -> None:
    worker = function_id(durable, DURABLE_WORKER)
    role = durable.to_json()["Resources"][worker]["Properties"]["Role"]["Fn::GetAtt"][0]
    policies = durable.to_json()["Resources"][role]["Properties"]["ManagedPolicyArns"]
    # AWSLambdaBasicDurableExecutionRolePolicy: logs + lambda:CheckpointDurableExecution and
    # lambda:GetDurableExecutionState (AWS Managed Policy Reference).
    assert policies == [
        {
            "Fn::Join": [
                "",
                [
                    "arn:",
                    {"Ref": "AWS::Partition"},
                    ":iam::aws:policy/service-role/AWSLambdaBasicDurableExecutionRolePolicy",
                ],
            ]
        }
    ]


def test_submit_starts_executions_through_the_live_alias_only(durable: Template) -> None:
    resources = durable.to_json()["Resources"]
    worker = function_id(durable, DURABLE_WORKER)
    alias_id, alias = only(durable, "AWS::Lambda::Alias", {"FunctionName": {"Ref": worker}})
    assert alias["Properties"]["Name"] == "live"
    version_id = alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
    # An execution resumes on the version that started it: a replaced version stays.
    assert resources[version_id]["DeletionPolicy"] == "Retain"
    submit = function_id(durable, "jobs.handlers.submit.handler")
    variables = resources[submit]["Properties"]["Environment"]["Variables"]
    assert variables["DISPATCH"] == "durable"
    # Durable functions take qualified names only (Lambda Developer Guide, "Invoking durable Lambda functions").
    assert "live" in str(variables["WORKER_FUNCTION_NAME"])
    invokes = [s for s in statements_of(durable, submit) if s["Action"] == "lambda:InvokeFunction"]
    assert [s["Resource"] for s in invokes] == [{"Ref": alias_id}]
    # No event-invoke config: Lambda applies neither retries nor destinations to durable executions.
    assert not durable.find_resources(
        "AWS::Lambda::EventInvokeConfig", {"Properties": {"FunctionName": {"Ref": worker}}}
    )


def test_submit_and_cancel_call_the_durable_apis_with_the_workers_boto3(durable: Template) -> None:
    # The runtime's boto3 may predate the durable-execution APIs (its version depends on the
    # runtime and the Region): submit names the execution, cancel stops it, with the layer's.
    resources = durable.to_json()["Resources"]
    [layer_id] = durable.find_resources("AWS::Lambda::LayerVersion")
    for handler in (DURABLE_WORKER, "jobs.handlers.submit.handler", "jobs.handlers.cancel.handler"):
        layers = resources[function_id(durable, handler)]["Properties"]["Layers"]
        assert {"Ref": layer_id} in layers, handler
    status = resources[function_id(durable, "jobs.handlers.status.handler")]["Properties"]["Layers"]
    assert {"Ref": layer_id} not in status  # it calls no durable API: no layer to load
    # The layer's botocore (the pinned one, installed here) knows both calls.
    lambda_model = botocore.session.get_session().get_service_model("lambda")
    assert "StopDurableExecution" in lambda_model.operation_names
    invoke = lambda_model.operation_model("Invoke").input_shape
    assert invoke is not None and "DurableExecutionName" in invoke.members
    assert importlib.metadata.version("botocore") == pinned_requirements(DURABLE_SDK_REQUIREMENTS)["botocore"]


def test_the_durable_workers_name_is_the_stacks_and_fits_lambdas_limit() -> None:
    assert durable_worker_name("AsyncJobs-prod") == "AsyncJobs-prod-DurableWorker"
    long_a, long_b = "A" * 60 + "-one", "A" * 60 + "-two"
    assert len(durable_worker_name(long_a)) == 64 and durable_worker_name(long_a) != durable_worker_name(long_b)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", durable_worker_name("x" * 128))


def test_a_retained_version_costs_little_of_the_code_storage_quota(tmp_path: Path) -> None:
    # Replaced versions are kept (above) and nothing deletes them (docs/operations.md): each
    # holds the lambdas/ package, so it must stay small against Lambda's 75 GB of function
    # and layer storage per region (Lambda Developer Guide, "Lambda quotas").
    package = Path(shutil.make_archive(str(tmp_path / "lambdas"), "zip", LAMBDAS_DIR))
    assert package.stat().st_size < 1024 * 1024


def test_unfinished_executions_reach_the_recorder_from_lambdas_status_change_events(durable: Template) -> None:
    worker = function_id(durable, DURABLE_WORKER)
    recorder = function_id(durable, "jobs.handlers.on_failure.handler")
    _, rule = only(durable, "AWS::Events::Rule", {"EventPattern": Match.object_like({"source": ["aws.lambda"]})})
    assert rule["Properties"]["EventPattern"] == {
        "source": ["aws.lambda"],
        "detail-type": ["Durable Execution Status Change"],
        "detail": {
            "status": ["FAILED", "TIMED_OUT", "STOPPED"],
            "durableExecutionArn": [{"prefix": {"Fn::Join": ["", [{"Fn::GetAtt": [worker, "Arn"]}, ":"]]}}],
        },
    }
    [target] = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [recorder, "Arn"]}
    assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    # EventBridge may invoke the recorder (a resource policy for events.amazonaws.com).
    only(
        durable,
        "AWS::Lambda::Permission",
        {"Principal": "events.amazonaws.com", "FunctionName": {"Fn::GetAtt": [recorder, "Arn"]}},
    )


def test_cancel_may_stop_the_workers_executions_and_nothing_else(durable: Template) -> None:
    worker = function_id(durable, DURABLE_WORKER)
    cancel = function_id(durable, "jobs.handlers.cancel.handler")
    stops = [s for s in statements_of(durable, cancel) if s["Action"] == "lambda:StopDurableExecution"]
    # Executions are sub-resources of a version: <function>:<version>/durable-execution/...
    assert stops == [
        {
            "Action": "lambda:StopDurableExecution",
            "Effect": "Allow",
            "Resource": {"Fn::Join": ["", [{"Fn::GetAtt": [worker, "Arn"]}, ":*"]]},
        }
    ]
    variables = durable.to_json()["Resources"][cancel]["Properties"]["Environment"]["Variables"]
    assert variables["DISPATCH"] == "durable"


def test_switching_to_durable_replaces_the_worker_rather_than_updating_it(durable: Template) -> None:
    # Durability can only be enabled when a function is created: a new logical id makes
    # CloudFormation create the durable worker and delete the old one.
    _, plain = synth({"dispatch": "lambda"})
    assert function_id(durable, DURABLE_WORKER) not in plain.to_json()["Resources"]


def test_the_layer_holds_every_distribution_its_packages_require() -> None:
    pins = {name.lower() for name in pinned_requirements(DURABLE_SDK_REQUIREMENTS)}
    for name in pins:
        for requirement in importlib.metadata.requires(name) or []:
            if "extra ==" in requirement:
                continue
            required = re.match(r"[A-Za-z0-9_.-]+", requirement)
            assert required is not None and required.group(0).lower() in pins, f"{name} needs {requirement}"


def test_the_other_dispatchers_have_no_durable_pieces(template: Template) -> None:
    for function in template.find_resources("AWS::Lambda::Function").values():
        assert "DurableConfig" not in function["Properties"]
    assert "lambda:StopDurableExecution" not in str(template.to_json())


def test_the_sdk_layer_is_the_pinned_pure_python_copy_of_this_venv(tmp_path: Path) -> None:
    pins = pinned_requirements(DURABLE_SDK_REQUIREMENTS)
    assert set(pins) >= {"aws-durable-execution-sdk-python", "boto3", "botocore"}
    assert InstalledDistributions(pins).try_bundle(str(tmp_path), None) is True
    assert (tmp_path / "python" / "aws_durable_execution_sdk_python" / "execution.py").is_file()
    # The boto3 the SDK needs ships with it, whatever the runtime's own is.
    assert (tmp_path / "python" / "botocore" / "data" / "lambda").is_dir()
    assert not list(tmp_path.rglob("*.so"))


def durable_config(**overrides: Any) -> AppConfig:
    return AppConfig.from_mapping({**default_context(), "stage": "dev", "dispatch": "durable", **overrides})


def test_the_reaper_waits_for_the_executions_own_timeout() -> None:
    config = durable_config(durable_execution_timeout_seconds=7200)
    assert config.stuck_after_seconds == 7200 + config.reaper_slack_seconds


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"worker_cold_start": "snapstart"}, "worker_cold_start must be none or provisioned"),
        ({"max_inline_result_bytes": 200 * 1024}, "max_inline_result_bytes must be at most"),
        ({"durable_execution_timeout_seconds": 31_622_401}, "durable_execution_timeout_seconds"),
        ({"durable_retention_days": 91}, "durable_retention_days"),
        ({"vpc_lambda_endpoint": "maybe"}, "vpc_lambda_endpoint"),
        ({"vpc_lambda_endpoint": "existing"}, "is for vpc=existing"),
    ],
)
def test_settings_durable_functions_cannot_take_are_refused_at_synth(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        durable_config(**overrides)


def lambda_endpoints(template: Template) -> dict[str, Any]:
    return {
        logical_id: endpoint
        for logical_id, endpoint in template.find_resources("AWS::EC2::VPCEndpoint").items()
        if "lambda" in str(endpoint["Properties"]["ServiceName"])
    }


@pytest.mark.parametrize("variant", [{"vpc": "new"}, {"database": "postgres"}])
def test_in_a_vpc_the_checkpoint_calls_reach_lambda_through_an_interface_endpoint(variant: dict[str, str]) -> None:
    # Isolated subnets route nowhere but to endpoints, and the SDK calls the Lambda API from
    # inside the function: without this, every checkpoint would time out.
    _, template = synth({"dispatch": "durable", **variant}, nag=True)
    [endpoint] = lambda_endpoints(template).values()
    properties = endpoint["Properties"]
    assert properties["VpcEndpointType"] == "Interface" and properties["PrivateDnsEnabled"] is True
    assert properties["ServiceName"] == {"Fn::Join": ["", ["com.amazonaws.", {"Ref": "AWS::Region"}, ".lambda"]]}
    assert len(properties["SubnetIds"]) == 2  # the job subnets, one per Availability Zone
    worker = function_id(template, DURABLE_WORKER)
    [statement] = properties["PolicyDocument"]["Statement"]
    assert statement["Action"] == ["lambda:CheckpointDurableExecution", "lambda:GetDurableExecutionState"]
    role = template.to_json()["Resources"][worker]["Properties"]["Role"]  # the worker's role alone
    assert statement["Principal"] == {"AWS": role}
    # Lambda authorizes a checkpoint against the execution's ARN (<function>:<version>/
    # durable-execution/...): the worker's own executions, named without referring to it.
    name = template.to_json()["Resources"][worker]["Properties"]["FunctionName"]
    assert name == durable_worker_name("AsyncJobs")  # the stack tests/infra/conftest.synth builds
    [*_, tail] = statement["Resource"]["Fn::Join"][1]
    assert tail == f":function:{name}:*/durable-execution/*"
    # Its own VPC: the endpoint answers for Lambda's regional name; the worker needs no setting.
    assert (
        "AWS_ENDPOINT_URL_LAMBDA"
        not in template.to_json()["Resources"][worker]["Properties"]["Environment"]["Variables"]
    )
    # Reachable on 443 from the worker's security group, from nothing else.
    [group] = properties["SecurityGroupIds"]
    group_id = group["Fn::GetAtt"][0]
    ingress = [
        rule["Properties"]
        for rule in template.find_resources("AWS::EC2::SecurityGroupIngress").values()
        if rule["Properties"]["GroupId"] == {"Fn::GetAtt": [group_id, "GroupId"]}
    ]
    worker_groups = template.to_json()["Resources"][worker]["Properties"]["VpcConfig"]["SecurityGroupIds"]
    assert ingress == [
        {
            "IpProtocol": "tcp",
            "FromPort": 443,
            "ToPort": 443,
            "Description": "HTTPS from the job-running function",
            "GroupId": {"Fn::GetAtt": [group_id, "GroupId"]},
            "SourceSecurityGroupId": worker_groups[0],
        }
    ]
    assert "SecurityGroupIngress" not in template.to_json()["Resources"][group_id]["Properties"]


def test_in_an_existing_vpc_only_the_worker_is_pointed_at_the_endpoint() -> None:
    # Private DNS would take Lambda's name over for the whole VPC, cutting off whatever else
    # there calls Lambda through its NAT: the endpoint keeps its own name instead.
    _, created = synth({"dispatch": "durable", **EXISTING_VPC}, nag=True)
    [endpoint] = lambda_endpoints(created).values()
    assert endpoint["Properties"]["PrivateDnsEnabled"] is False
    endpoint_id = next(iter(lambda_endpoints(created)))
    worker = function_id(created, DURABLE_WORKER)
    variables = created.to_json()["Resources"][worker]["Properties"]["Environment"]["Variables"]
    # boto3 reads AWS_ENDPOINT_URL_LAMBDA; DnsEntries are "<zone id>:<name>", the regional name first.
    assert variables["AWS_ENDPOINT_URL_LAMBDA"] == {
        "Fn::Join": [
            "",
            [
                "https://",
                {
                    "Fn::Select": [
                        1,
                        {"Fn::Split": [":", {"Fn::Select": [0, {"Fn::GetAtt": [endpoint_id, "DnsEntries"]}]}]},
                    ]
                },
            ],
        ]
    }
    submit = function_id(created, "jobs.handlers.submit.handler")
    assert (
        "AWS_ENDPOINT_URL_LAMBDA"
        not in created.to_json()["Resources"][submit]["Properties"]["Environment"]["Variables"]
    )


def test_an_existing_vpc_may_bring_its_own_lambda_endpoint() -> None:
    _, brought = synth({"dispatch": "durable", **EXISTING_VPC, "vpc_lambda_endpoint": "existing"}, nag=True)
    assert lambda_endpoints(brought) == {}
    with pytest.raises(ConfigError, match="vpc_lambda_endpoint=existing is for vpc=existing"):
        durable_config(vpc="new", vpc_lambda_endpoint="existing")


def test_the_other_dispatchers_in_a_vpc_build_no_lambda_endpoint() -> None:
    _, template = synth({"vpc": "new"})
    assert lambda_endpoints(template) == {}
