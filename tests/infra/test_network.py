"""``vpc=new`` (``vpc=existing`` at the end): the function that runs jobs in isolated
subnets of a VPC of its own, with no NAT gateway and no route out; DynamoDB and S3 through
gateway endpoints whose policies admit this stack's table and bucket only; every other
function outside the VPC."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from stacks.config import AppConfig, ConfigError
from tests.infra.conftest import synth

JOB_RUNNERS = {
    "lambda": "jobs.handlers.worker.handler",
    "sqs": "jobs.handlers.queue_worker.handler",
    "stepfunctions": "jobs.handlers.steps.process",
}


def resources(template: Template, resource_type: str) -> dict[str, Any]:
    return dict(template.find_resources(resource_type))


@pytest.fixture(scope="module", params=sorted(JOB_RUNNERS))
def vpc_stack(request: pytest.FixtureRequest) -> tuple[str, Template]:
    dispatch = str(request.param)
    _, template = synth({"vpc": "new", "dispatch": dispatch}, nag=True)  # cdk-nag AwsSolutions clean too
    return dispatch, template


def test_no_way_out_but_the_endpoints(vpc_stack: tuple[str, Template]):
    _, template = vpc_stack
    for absent in ("AWS::EC2::NatGateway", "AWS::EC2::InternetGateway", "AWS::EC2::EIP", "AWS::EC2::Route"):
        assert resources(template, absent) == {}, absent
    subnets = resources(template, "AWS::EC2::Subnet")
    assert len(subnets) == 2  # two Availability Zones
    assert all(subnet["Properties"]["MapPublicIpOnLaunch"] is False for subnet in subnets.values())
    endpoints = resources(template, "AWS::EC2::VPCEndpoint")
    assert {e["Properties"]["VpcEndpointType"] for e in endpoints.values()} == {"Gateway"}  # free; no interface ones
    services = sorted(str(e["Properties"]["ServiceName"]) for e in endpoints.values())
    assert any("dynamodb" in service for service in services) and any(".s3" in service for service in services)
    route_tables = set(resources(template, "AWS::EC2::RouteTable"))
    for endpoint in endpoints.values():  # on the subnets' own route tables, so their traffic takes them
        assert {table["Ref"] for table in endpoint["Properties"]["RouteTableIds"]} == route_tables
    [flow_log] = resources(template, "AWS::EC2::FlowLog").values()
    assert flow_log["Properties"]["TrafficType"] == "REJECT"


def test_the_endpoint_policies_admit_this_stacks_table_and_bucket_only(vpc_stack: tuple[str, Template]):
    _, template = vpc_stack
    [jobs_table] = [
        logical_id for logical_id in resources(template, "AWS::DynamoDB::Table") if "JobsTable" in logical_id
    ]
    [bucket] = resources(template, "AWS::S3::Bucket")
    for endpoint in resources(template, "AWS::EC2::VPCEndpoint").values():
        [statement] = endpoint["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Effect"] == "Allow" and statement["Principal"] == {"AWS": "*"}
        text = str(statement["Resource"])
        if "dynamodb" in str(statement["Action"]):
            assert statement["Action"] == ["dynamodb:GetItem", "dynamodb:UpdateItem"]
            assert f"'{jobs_table}'" in text and "idempotency" not in text.lower()
        else:
            assert statement["Action"] == "s3:PutObject"
            assert f"'{bucket}'" in text and "/results/*" in text


def test_only_the_function_that_runs_jobs_is_in_the_vpc(vpc_stack: tuple[str, Template]):
    dispatch, template = vpc_stack
    subnets = set(resources(template, "AWS::EC2::Subnet"))
    [group] = resources(template, "AWS::EC2::SecurityGroup").values()
    assert group["Properties"]["SecurityGroupEgress"] == [
        {
            "CidrIp": "0.0.0.0/0",
            "Description": "HTTPS to the VPC endpoints (DynamoDB, S3; Lambda if durable)",
            "FromPort": 443,
            "IpProtocol": "tcp",
            "ToPort": 443,
        }
    ]
    in_vpc = {}
    for function in resources(template, "AWS::Lambda::Function").values():
        properties = function["Properties"]
        if "VpcConfig" in properties:
            in_vpc[properties["Handler"]] = properties["VpcConfig"]
    assert set(in_vpc) == {JOB_RUNNERS[dispatch]}
    [config] = in_vpc.values()
    assert {subnet["Ref"] for subnet in config["SubnetIds"]} == subnets
    assert len(config["SecurityGroupIds"]) == 1


def test_without_the_setting_there_is_no_vpc():
    _, template = synth({})
    assert resources(template, "AWS::EC2::VPC") == {}
    assert all("VpcConfig" not in f["Properties"] for f in resources(template, "AWS::Lambda::Function").values())


EXISTING = {
    "vpc": "existing",
    "vpc_id": "vpc-0123456789abcdef0",
    "vpc_subnet_ids": ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"],
    "vpc_security_group_id": "sg-0123456789abcdef0",
    "vpc_route_table_ids": ["rtb-0123456789abcdef0"],
}


@pytest.fixture(scope="module", params=sorted(JOB_RUNNERS))
def existing_vpc_stack(request: pytest.FixtureRequest) -> tuple[str, Template]:
    dispatch = str(request.param)
    _, template = synth({**EXISTING, "dispatch": dispatch, "database": "postgres"}, nag=True)
    return dispatch, template


def test_an_existing_vpc_is_used_by_id_and_left_as_it_is(existing_vpc_stack: tuple[str, Template]):
    dispatch, template = existing_vpc_stack
    for absent in ("AWS::EC2::VPC", "AWS::EC2::Subnet", "AWS::EC2::RouteTable", "AWS::EC2::NatGateway"):
        assert resources(template, absent) == {}, absent
    [runner] = [
        f["Properties"]
        for f in resources(template, "AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == JOB_RUNNERS[dispatch]
    ]
    assert runner["VpcConfig"] == {
        "SubnetIds": EXISTING["vpc_subnet_ids"],
        "SecurityGroupIds": [EXISTING["vpc_security_group_id"]],
    }
    # Your security group is not changed: no rule is added to it.
    for kind in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"):
        assert all(
            r["Properties"]["GroupId"] != EXISTING["vpc_security_group_id"] for r in resources(template, kind).values()
        )
    # The database's own groups and subnet group are in your VPC and subnets.
    [subnet_group] = resources(template, "AWS::RDS::DBSubnetGroup").values()
    assert subnet_group["Properties"]["SubnetIds"] == EXISTING["vpc_subnet_ids"]
    groups = resources(template, "AWS::EC2::SecurityGroup").values()
    assert {g["Properties"]["VpcId"] for g in groups} == {EXISTING["vpc_id"]}


def test_gateway_endpoints_go_on_the_named_route_tables(existing_vpc_stack: tuple[str, Template]):
    _, template = existing_vpc_stack
    endpoints = resources(template, "AWS::EC2::VPCEndpoint").values()
    assert len(endpoints) == 2
    for endpoint in endpoints:
        assert endpoint["Properties"]["VpcId"] == EXISTING["vpc_id"]
        assert endpoint["Properties"]["RouteTableIds"] == EXISTING["vpc_route_table_ids"]
        assert endpoint["Properties"]["VpcEndpointType"] == "Gateway"


def test_a_vpc_with_its_own_gateway_endpoints_gets_none_more():
    # A route table takes one gateway endpoint per service: a second one would fail the deployment.
    _, template = synth({**EXISTING, "vpc_gateway_endpoints": "existing", "vpc_route_table_ids": []})
    assert resources(template, "AWS::EC2::VPCEndpoint") == {}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"vpc_id": None}, "needs vpc_id"),
        ({"vpc_subnet_ids": []}, "needs vpc_subnet_ids"),
        ({"vpc_security_group_id": ""}, "needs vpc_security_group_id"),
        ({"vpc_route_table_ids": []}, "needs vpc_route_table_ids"),
        ({"vpc_subnet_ids": ["subnet-0aaaaaaaaaaaaaaa1"], "database": "postgres"}, "two Availability Zones"),
        ({"vpc_subnet_ids": "subnet-1"}, "must be subnet-... ids"),
        ({"vpc_id": "vpc-0123456789abcdef0,vpc-0123456789abcdef1"}, "must be one vpc-... id"),
        ({"vpc_subnet_ids": "subnet-0aaaaaaaaaaaaaaa1,subnet-0aaaaaaaaaaaaaaa1"}, "lists an id twice"),
    ],
)
def test_an_existing_vpc_needs_every_id_well_formed(changes: dict[str, Any], message: str):
    with pytest.raises(ConfigError, match=message):
        AppConfig.from_mapping({**EXISTING, **changes})


def test_ids_may_be_given_on_the_command_line_as_comma_separated_lists():
    config = AppConfig.from_mapping(
        {**EXISTING, "vpc_subnet_ids": "subnet-0aaaaaaaaaaaaaaa1, subnet-0bbbbbbbbbbbbbbb2"}
    )
    assert config.vpc_subnet_ids == EXISTING["vpc_subnet_ids"]
