"""``database=postgres``: Aurora PostgreSQL Serverless v2 behind an RDS Proxy that only the
job runner reaches, with IAM authentication and TLS, in the job runner's VPC (a new one
when ``vpc=none``); cdk-nag AwsSolutions clean, on every dispatch mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from stacks.config import AppConfig, ConfigError
from stacks.database import DATABASE_USER, DRIVER_REQUIREMENTS
from stacks.layers import InstalledDistributions, pinned_requirements
from tests.infra.conftest import synth
from tests.infra.test_network import JOB_RUNNERS, resources


@pytest.fixture(scope="module", params=sorted(JOB_RUNNERS))
def database_stack(request: pytest.FixtureRequest) -> tuple[str, Template]:
    dispatch = str(request.param)
    _, template = synth({"database": "postgres", "dispatch": dispatch}, nag=True)
    return dispatch, template


def only_resource(template: Template, resource_type: str) -> tuple[str, dict[str, Any]]:
    [(logical_id, resource)] = resources(template, resource_type).items()
    return logical_id, resource


def group_id(reference: Any) -> str:
    return str(reference["Fn::GetAtt"][0])


def test_a_database_brings_its_own_vpc_without_nat(database_stack: tuple[str, Template]) -> None:
    _, template = database_stack
    assert resources(template, "AWS::EC2::NatGateway") == {}
    assert resources(template, "AWS::EC2::InternetGateway") == {}
    assert len(resources(template, "AWS::EC2::Subnet")) == 2
    # The token is signed in the function and Secrets Manager is read by the proxy (outside
    # the VPC): no interface endpoint is needed.
    endpoints = resources(template, "AWS::EC2::VPCEndpoint").values()
    assert {e["Properties"]["VpcEndpointType"] for e in endpoints} == {"Gateway"}


def test_aurora_serverless_v2_encrypted_tls_only_and_not_pausable(database_stack: tuple[str, Template]) -> None:
    _, template = database_stack
    _, cluster = only_resource(template, "AWS::RDS::DBCluster")
    properties = cluster["Properties"]
    assert properties["Engine"] == "aurora-postgresql"
    assert properties["StorageEncrypted"] is True
    scaling = properties["ServerlessV2ScalingConfiguration"]
    # Never 0: with a proxy attached the instance never pauses (Aurora User Guide,
    # "Scaling to Zero ACUs with automatic pause and resume").
    assert scaling["MinCapacity"] >= 0.5
    assert properties["MasterUsername"] == DATABASE_USER
    assert "resolve:secretsmanager" in json.dumps(properties["MasterUserPassword"])
    _, parameters = only_resource(template, "AWS::RDS::DBClusterParameterGroup")
    assert parameters["Properties"]["Parameters"]["rds.force_ssl"] == "1"  # 0 by default
    # The server ends a statement the worker stopped waiting for (the proxy cannot cancel it).
    assert parameters["Properties"]["Parameters"]["statement_timeout"] == "120000"
    _, instance = only_resource(template, "AWS::RDS::DBInstance")
    assert instance["Properties"]["DBInstanceClass"] == "db.serverless"
    assert instance["Properties"]["PubliclyAccessible"] is False


def test_the_proxy_requires_iam_and_tls_and_uses_the_clusters_secret(database_stack: tuple[str, Template]) -> None:
    _, template = database_stack
    _, proxy = only_resource(template, "AWS::RDS::DBProxy")
    properties = proxy["Properties"]
    assert properties["RequireTLS"] is True
    assert properties["EngineFamily"] == "POSTGRESQL"
    [auth] = properties["Auth"]
    assert auth["IAMAuth"] == "REQUIRED" and auth["AuthScheme"] == "SECRETS"
    attachment, _ = only_resource(template, "AWS::SecretsManager::SecretTargetAttachment")
    assert auth["SecretArn"] == {"Ref": attachment}
    _, target_group = only_resource(template, "AWS::RDS::DBProxyTargetGroup")
    # CloudFormation refuses Tags on this resource type (the stack's tags skip it).
    assert "Tags" not in target_group["Properties"]
    assert target_group["Properties"]["ConnectionPoolConfigurationInfo"]["ConnectionBorrowTimeout"] == 30


def test_only_the_job_runner_reaches_the_proxy_and_only_the_proxy_the_cluster(
    database_stack: tuple[str, Template],
) -> None:
    dispatch, template = database_stack
    _, proxy = only_resource(template, "AWS::RDS::DBProxy")
    [proxy_group] = [group_id(reference) for reference in proxy["Properties"]["VpcSecurityGroupIds"]]
    _, cluster = only_resource(template, "AWS::RDS::DBCluster")
    [cluster_group] = [group_id(reference) for reference in cluster["Properties"]["VpcSecurityGroupIds"]]
    runners = {
        logical_id: function
        for logical_id, function in resources(template, "AWS::Lambda::Function").items()
        if function["Properties"].get("Handler") == JOB_RUNNERS[dispatch]
    }
    [(runner_id, runner)] = runners.items()
    [runner_group] = [group_id(reference) for reference in runner["Properties"]["VpcConfig"]["SecurityGroupIds"]]
    ingress = [rule["Properties"] for rule in resources(template, "AWS::EC2::SecurityGroupIngress").values()]
    sources = {(group_id(rule["GroupId"]), group_id(rule["SourceSecurityGroupId"])) for rule in ingress}
    assert sources == {(proxy_group, runner_group), (cluster_group, proxy_group)}
    for group in (proxy_group, cluster_group):
        definition = template.to_json()["Resources"][group]["Properties"]
        assert "SecurityGroupIngress" not in definition  # no CIDR rules: groups only
    # Functions outside the VPC cannot reach it; other functions in it: none.
    in_vpc = [k for k, f in resources(template, "AWS::Lambda::Function").items() if "VpcConfig" in f["Properties"]]
    assert in_vpc == [runner_id]


def test_no_security_group_is_left_open_outbound(database_stack: tuple[str, Template]) -> None:
    """A group created without inline egress rules allows all outbound traffic (CloudFormation,
    AWS::EC2::SecurityGroup), even when rules to other groups are added as separate resources."""
    _, template = database_stack
    for logical_id, group in resources(template, "AWS::EC2::SecurityGroup").items():
        egress = group["Properties"].get("SecurityGroupEgress")
        assert egress, f"{logical_id} would allow all outbound traffic"
        assert all(rule.get("CidrIp") != "0.0.0.0/0" or rule["FromPort"] == 443 for rule in egress)


def test_the_job_runner_may_connect_as_the_apps_user_through_this_proxy_only(
    database_stack: tuple[str, Template],
) -> None:
    dispatch, template = database_stack
    proxy_id, _ = only_resource(template, "AWS::RDS::DBProxy")
    grants = [
        (logical_id, statement)
        for logical_id, policy in resources(template, "AWS::IAM::Policy").items()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "rds-db:connect" in json.dumps(statement["Action"])
    ]
    [(policy_id, statement)] = grants
    resource = json.dumps(statement["Resource"])
    assert proxy_id in resource and resource.endswith(f'/{DATABASE_USER}"]]}}')
    assert ":dbuser:" in resource
    [runner] = [
        function
        for function in resources(template, "AWS::Lambda::Function").values()
        if function["Properties"].get("Handler") == JOB_RUNNERS[dispatch]
    ]
    variables = runner["Properties"]["Environment"]["Variables"]
    assert variables["DATABASE_HOST"] == {"Fn::GetAtt": [proxy_id, "Endpoint"]}
    assert (variables["DATABASE_PORT"], variables["DATABASE_USER"], variables["DATABASE_NAME"]) == (
        "5432",
        DATABASE_USER,
        "jobs",
    )
    layer_id, _ = only_resource(template, "AWS::Lambda::LayerVersion")
    assert {"Ref": layer_id} in runner["Properties"]["Layers"]
    assert policy_id  # attached to the runner's role (the wiring tests check roles)


def test_prod_protects_the_database_and_dev_lets_it_go() -> None:
    _, prod = synth({"database": "postgres", "stage": "prod"})
    _, cluster = only_resource(prod, "AWS::RDS::DBCluster")
    assert cluster["Properties"]["DeletionProtection"] is True
    assert cluster["DeletionPolicy"] == "Snapshot"
    _, dev = synth({"database": "postgres", "stage": "dev"})
    _, cluster = only_resource(dev, "AWS::RDS::DBCluster")
    assert cluster["Properties"]["DeletionProtection"] is False
    assert cluster["DeletionPolicy"] == "Delete"


def test_the_postgres_log_group_exists_first_with_the_configured_retention(
    database_stack: tuple[str, Template],
) -> None:
    _, template = database_stack
    _, cluster = only_resource(template, "AWS::RDS::DBCluster")
    identifier = cluster["Properties"]["DBClusterIdentifier"]
    [(group_id_, group)] = [
        (k, v)
        for k, v in resources(template, "AWS::Logs::LogGroup").items()
        if v["Properties"].get("LogGroupName") == f"/aws/rds/cluster/{identifier}/postgresql"
    ]
    assert group["Properties"]["RetentionInDays"] == 7  # dev's log_retention_days
    assert group_id_ in cluster["DependsOn"]
    assert cluster["Properties"]["EnableCloudwatchLogsExports"] == ["postgresql"]


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"database_min_capacity": 0}, "between 0.5 and 256"),
        ({"database_min_capacity": 0.75}, "steps of 0.5"),
        ({"database_min_capacity": 4, "database_max_capacity": 2}, "must not exceed"),
        ({"database": "mysql"}, "database"),
    ],
)
def test_capacity_and_engine_are_checked_at_synth(context: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AppConfig.from_mapping(context)


def test_the_driver_layer_is_the_pinned_pure_python_copy_of_this_venv(tmp_path: Path) -> None:
    pins = pinned_requirements(DRIVER_REQUIREMENTS)
    assert pins["pg8000"] and set(pins) >= {"pg8000", "scramp", "asn1crypto"}
    assert InstalledDistributions(pins).try_bundle(str(tmp_path), None) is True
    assert (tmp_path / "python" / "pg8000" / "native.py").is_file()
    assert not list(tmp_path.rglob("*.so"))
    with pytest.raises(ConfigError, match=r"the layer pins 0\.0\.1"):
        InstalledDistributions({"pg8000": "0.0.1"}).try_bundle(str(tmp_path / "other"), None)


def test_an_alarm_tells_when_the_database_nears_its_maximum_capacity(database_stack: tuple[str, Template]) -> None:
    _, template = database_stack
    cluster_id, _ = only_resource(template, "AWS::RDS::DBCluster")
    [alarm] = [
        a["Properties"]
        for a in resources(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "ACUUtilization"
    ]
    assert alarm["Namespace"] == "AWS/RDS"
    assert alarm["Dimensions"] == [{"Name": "DBClusterIdentifier", "Value": {"Ref": cluster_id}}]
    assert (alarm["Threshold"], alarm["Statistic"]) == (90, "Maximum")
    assert alarm["AlarmActions"] and alarm["OKActions"]  # the alarm topic (tests/infra/test_wiring.py)
