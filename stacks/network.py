"""The worker's network (``vpc=new``): a VPC of its own, no NAT gateway, VPC endpoints only.

The function that runs jobs (the worker, the queue worker or the workflow's process step)
runs in two isolated private subnets, in two Availability Zones. Isolated subnets have no
route to the internet: everything the worker calls on AWS goes through a VPC endpoint.
It calls two services itself, DynamoDB (the jobs table) and S3 (large results), so two
gateway endpoints are enough, and they are free (Amazon VPC User Guide, "Gateway
endpoints": "There is no additional charge for using gateway endpoints"). Logs, traces,
retries and destinations are the Lambda service's own traffic, outside the VPC. Each
endpoint's policy admits this stack's table and bucket only. The API functions stay
outside the VPC: they reach only AWS APIs and gain nothing from it.
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.config import AppConfig
from stacks.job_store import RESULTS_PREFIX, JobStore
from stacks.python_function import log_group

AVAILABILITY_ZONES = 2


class JobNetwork(Construct):
    """``vpc``, ``subnets`` and ``security_group`` for the function that runs jobs."""

    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig, store: JobStore) -> None:
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=AVAILABILITY_ZONES,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="Jobs", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24)
            ],
        )
        # What was refused, for troubleshooting a blocked call (AwsSolutions-VPC7).
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(log_group(self, "FlowLogs", config)),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )
        self.subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        self.security_group = ec2.SecurityGroup(
            self,
            "WorkerSecurityGroup",
            vpc=self.vpc,
            description="The job-running function: HTTPS out only (isolated subnets route to the endpoints alone)",
            allow_all_outbound=False,
        )
        self.security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to the gateway endpoints (DynamoDB, S3)"
        )
        self._build_gateway_endpoints(store)

    def _build_gateway_endpoints(self, store: JobStore) -> None:
        """DynamoDB and S3, each admitting only what this stack's worker uses."""
        dynamodb = self.vpc.add_gateway_endpoint("DynamoDbEndpoint", service=ec2.GatewayVpcEndpointAwsService.DYNAMODB)
        dynamodb.add_to_policy(
            iam.PolicyStatement(
                principals=[iam.AnyPrincipal()],
                actions=["dynamodb:GetItem", "dynamodb:UpdateItem"],
                resources=[store.jobs_table.table_arn],
            )
        )
        s3 = self.vpc.add_gateway_endpoint("S3Endpoint", service=ec2.GatewayVpcEndpointAwsService.S3)
        s3.add_to_policy(
            iam.PolicyStatement(
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=[store.results_bucket.arn_for_objects(f"{RESULTS_PREFIX}*")],
            )
        )
