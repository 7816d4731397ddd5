"""``vpc=new``: the function that runs jobs in isolated subnets of a VPC of its own, with no
NAT gateway and no route out; DynamoDB and S3 through gateway endpoints whose policies
admit this stack's table and bucket only; every other function outside the VPC."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

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
            "Description": "HTTPS to the gateway endpoints (DynamoDB, S3)",
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
