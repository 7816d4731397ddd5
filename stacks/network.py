"""The worker's network (``vpc=new`` or ``vpc=existing``): private subnets, no NAT gateway,
VPC endpoints only.

The function that runs jobs (the worker, the queue worker or the workflow's process step)
runs in two isolated private subnets, in two Availability Zones. Isolated subnets have no
route to the internet: everything the worker calls on AWS goes through a VPC endpoint.
It calls two services itself, DynamoDB (the jobs table) and S3 (large results), so two
gateway endpoints are enough, and they are free (Amazon VPC User Guide, "Gateway
endpoints": "There is no additional charge for using gateway endpoints"). With
``dispatch=durable`` it calls a third, Lambda's checkpoint API (the durable SDK, from
inside the function): an interface endpoint with private DNS, which is billed per hour and
per GB (:meth:`JobNetwork.reach_lambda`). Logs, traces,
retries and destinations are the Lambda service's own traffic, outside the VPC. Each
endpoint's policy admits this stack's table and bucket only. The API functions stay
outside the VPC: they reach only AWS APIs and gain nothing from it.

``vpc=existing`` uses your VPC, subnets and security group by id (``cdk.json``; nothing is
looked up, so synth needs no credentials). Its gateway endpoints are created on the route
tables you name (``vpc_route_table_ids``), or, with ``vpc_gateway_endpoints=existing``,
left to the ones your VPC already has (a route table takes one gateway endpoint per
service). Your security group is used as it is: it must let the worker out on 443 (and
to the database proxy on 5432 with ``database=postgres``); nothing here changes it.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Fn, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from stacks.config import AppConfig
from stacks.job_store import RESULTS_PREFIX, JobStore
from stacks.python_function import log_group

AVAILABILITY_ZONES = 2


def durable_executions_arn(stack: Stack, function_name: str) -> str:
    """Every durable execution of ``function_name``, of any version. Lambda authorizes the
    checkpoint calls against the execution's ARN, ``arn:aws:lambda:<region>:<account>:function:
    <name>:<qualifier>/durable-execution/<execution name>/<execution id>``, whose qualifier is
    always ``$LATEST`` or a version number (Lambda Developer Guide, "Security and permissions
    for Lambda durable functions"); ``function/*`` or the bare function ARN never matches it."""
    return stack.format_arn(
        service="lambda",
        resource="function",
        resource_name=f"{function_name}:*/durable-execution/*",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


class JobNetwork(Construct):
    """``vpc``, ``subnets`` and ``security_group`` for the function that runs jobs."""

    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig, store: JobStore) -> None:
        super().__init__(scope, construct_id)
        self.vpc: ec2.IVpc
        self.subnets: ec2.SubnetSelection
        self.security_group: ec2.ISecurityGroup
        existing = config.network == "existing"
        route_table_ids = self._use_existing(config) if existing else self._build_vpc(config)
        if route_table_ids:
            self._build_gateway_endpoints(store, route_table_ids)

    def _build_vpc(self, config: AppConfig) -> list[str]:
        """``vpc=new``: two isolated subnets and a worker security group allowing HTTPS out."""
        vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=AVAILABILITY_ZONES,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="Jobs", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24)
            ],
        )
        # What was refused, for troubleshooting a blocked call (AwsSolutions-VPC7).
        vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(log_group(self, "FlowLogs", config)),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )
        self.vpc = vpc
        self.subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        security_group = ec2.SecurityGroup(
            self,
            "WorkerSecurityGroup",
            vpc=vpc,
            description="The job-running function: HTTPS out only (isolated subnets route to the endpoints alone)",
            allow_all_outbound=False,
        )
        security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to the VPC endpoints (DynamoDB, S3; Lambda if durable)"
        )
        self.security_group = security_group
        return [subnet.route_table.route_table_id for subnet in vpc.isolated_subnets]

    def _use_existing(self, config: AppConfig) -> list[str]:
        """``vpc=existing``: the ids from cdk.json, imported as they are."""
        assert config.vpc_id is not None and config.vpc_security_group_id is not None  # config.py checks
        # Availability Zones are not needed (subnets are given by id), and not looked up.
        self.vpc = ec2.Vpc.from_vpc_attributes(self, "Vpc", vpc_id=config.vpc_id, availability_zones=Fn.get_azs())
        self.subnets = ec2.SubnetSelection(
            subnets=[
                ec2.Subnet.from_subnet_id(self, f"Subnet{index}", subnet_id)
                for index, subnet_id in enumerate(config.vpc_subnet_ids)
            ]
        )
        self.security_group = ec2.SecurityGroup.from_security_group_id(
            self, "WorkerSecurityGroup", config.vpc_security_group_id, mutable=False
        )
        return config.vpc_route_table_ids if config.vpc_gateway_endpoints == "create" else []

    def reach_lambda(self, worker: lambda_.Function, worker_name: str, config: AppConfig) -> None:
        """``dispatch=durable``: the durable SDK checkpoints each step through the Lambda API
        (``lambda:CheckpointDurableExecution``, ``lambda:GetDurableExecutionState``), from
        inside the function, so from these subnets: a Lambda interface endpoint (AWS Lambda
        Developer Guide, "Connecting inbound interface VPC endpoints for Lambda"), reachable
        on 443 from the worker's security group only, its policy admitting the worker's role's
        checkpoint calls on its own executions only.

        ``vpc=new``: the VPC is the worker's alone, so the endpoint answers for Lambda's
        regional name (private DNS). ``vpc=existing``: private DNS would take that name over
        for the whole VPC, cutting off everything else there that calls Lambda, so the
        endpoint keeps its own name and only the worker is pointed at it
        (``AWS_ENDPOINT_URL_LAMBDA``, which boto3 reads); with ``vpc_lambda_endpoint=existing``
        your VPC's own endpoint serves the worker as it is."""
        existing = config.network == "existing"
        if existing and config.vpc_lambda_endpoint == "existing":
            return
        group = ec2.SecurityGroup(
            self,
            "LambdaEndpointSecurityGroup",
            vpc=self.vpc,
            description="The Lambda interface endpoint: HTTPS in from the job-running function only",
            allow_all_outbound=False,
        )
        group.add_ingress_rule(self.security_group, ec2.Port.tcp(443), "HTTPS from the job-running function")
        endpoint = ec2.InterfaceVpcEndpoint(
            self,
            "LambdaEndpoint",
            vpc=self.vpc,
            service=ec2.InterfaceVpcEndpointAwsService.LAMBDA_,
            subnets=self.subnets,
            security_groups=[group],
            private_dns_enabled=not existing,
            open=False,  # no rule for the whole VPC's range: the worker's group alone
        )
        assert worker.role is not None
        endpoint.add_to_policy(
            iam.PolicyStatement(
                # The role, and the function by the name chosen for it, never by reference:
                # with vpc=existing the worker's environment names this endpoint.
                principals=[iam.ArnPrincipal(worker.role.role_arn)],
                actions=["lambda:CheckpointDurableExecution", "lambda:GetDurableExecutionState"],
                resources=[durable_executions_arn(Stack.of(self), worker_name)],
            )
        )
        if existing:
            # DnsEntries: "<hosted zone id>:<name>", the endpoint's regional name first.
            name = Fn.select(1, Fn.split(":", Fn.select(0, endpoint.vpc_endpoint_dns_entries)))
            worker.add_environment("AWS_ENDPOINT_URL_LAMBDA", f"https://{name}")

    def _build_gateway_endpoints(self, store: JobStore, route_table_ids: list[str]) -> None:
        """DynamoDB and S3 on ``route_table_ids``, each admitting only what this stack's worker uses."""
        self._gateway_endpoint(
            "DynamoDbEndpoint",
            ec2.GatewayVpcEndpointAwsService.DYNAMODB,
            route_table_ids,
            iam.PolicyStatement(
                principals=[iam.AnyPrincipal()],
                actions=["dynamodb:GetItem", "dynamodb:UpdateItem"],
                resources=[store.jobs_table.table_arn],
            ),
        )
        self._gateway_endpoint(
            "S3Endpoint",
            ec2.GatewayVpcEndpointAwsService.S3,
            route_table_ids,
            iam.PolicyStatement(
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=[store.results_bucket.arn_for_objects(f"{RESULTS_PREFIX}*")],
            ),
        )

    def _gateway_endpoint(
        self,
        construct_id: str,
        service: ec2.GatewayVpcEndpointAwsService,
        route_table_ids: list[str],
        statement: iam.PolicyStatement,
    ) -> None:
        ec2.CfnVPCEndpoint(
            self,
            construct_id,
            vpc_id=self.vpc.vpc_id,
            service_name=service.name,
            vpc_endpoint_type="Gateway",
            route_table_ids=route_table_ids,
            policy_document=iam.PolicyDocument(statements=[statement]),
        )
