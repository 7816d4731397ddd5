"""The one way this app builds a Lambda function, so every function gets the same basics.

Same runtime and architecture (arm64: cheaper per GB-second), Powertools from its public
AWS-managed layer (nothing to bundle, no Docker), active X-Ray tracing, and a log group of
its own with the configured retention. The code asset is the ``lambdas/`` folder as is.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from aws_cdk import (
    Acknowledgment,
    Aws,
    CfnElement,
    CfnMapping,
    CfnRule,
    CfnRuleAssertion,
    Duration,
    Fn,
    RemovalPolicy,
    Stack,
    Token,
    Validations,
    region_info,
)
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct, IConstruct

from jobs.settings import Settings
from stacks.config import AppConfig, ConfigError

if TYPE_CHECKING:
    from stacks.network import JobNetwork

LAMBDAS_DIR = Path(__file__).resolve().parent.parent / "lambdas"
RUNTIME = lambda_.Runtime.PYTHON_3_14
POWERTOOLS_LAYER_NAME = "AWSLambdaPowertoolsPythonV3-python314-arm64"
# The account that publishes the public Powertools layers, per partition. Only the commercial
# one ("aws") has them in every region at the version this app pins; China and GovCloud
# publish from other accounts, in some regions, at other versions (Powertools docs,
# "Lambda Layer"). Looked up with Fn::FindInMap, so CloudFormation refuses a deployment in
# another partition before it creates anything, naming the mapping.
POWERTOOLS_PUBLISHERS = {"aws": "017000801446"}
# The alias callers invoke when a function has a cold-start option (``api_cold_start``).
LIVE_ALIAS = "live"
# Commercial regions without Lambda SnapStart (Lambda Developer Guide, "Improving startup
# performance with Lambda SnapStart", Supported Regions: Asia Pacific (New Zealand) and
# Asia Pacific (Taipei)).
SNAPSTART_UNSUPPORTED_REGIONS = frozenset({"ap-southeast-6", "ap-east-2"})


def service_name(scope: Construct) -> str:
    """Powertools' ``service``: the stack's name, unique per account and region. It is the
    dimension of every metric the functions emit, so one stage's alarms never count another
    stage's (or another copy's) jobs."""
    return Stack.of(scope).stack_name


def powertools_layer(scope: Construct, version: int) -> lambda_.ILayerVersion:
    """The Powertools layer in the stack's own region (one per stack, shared by functions)."""
    stack = Stack.of(scope)
    existing = stack.node.try_find_child("PowertoolsLayer")
    if existing is not None:
        return existing  # type: ignore[return-value]
    partition = None if Token.is_unresolved(stack.region) else region_info.RegionInfo.get(stack.region).partition
    if partition is not None and partition not in POWERTOOLS_PUBLISHERS:
        raise ConfigError(
            f"the public Powertools layer is not published in the {partition!r} partition at the version "
            "this app uses; deploy to a commercial AWS region, or add the layer yourself (stacks/python_function.py)"
        )
    publishers = CfnMapping(
        stack,
        "PowertoolsLayerPublisher",
        mapping={name: {"account": id_} for name, id_ in POWERTOOLS_PUBLISHERS.items()},
    )
    account = publishers.find_in_map(stack.partition, "account")
    arn = f"arn:{stack.partition}:lambda:{stack.region}:{account}:layer:{POWERTOOLS_LAYER_NAME}:{version}"
    return lambda_.LayerVersion.from_layer_version_arn(stack, "PowertoolsLayer", arn)


class PythonFunction(Construct):
    """A Lambda function running ``handler`` (``module.function``) from ``lambdas/``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        handler: str,
        description: str,
        environment: dict[str, str],
        timeout: Duration,
        memory_size: int,
        reserved_concurrency: int | None = None,
        cold_start: str = "none",
        provisioned_concurrency: int = 0,
        network: JobNetwork | None = None,
        durable: lambda_.DurableConfig | None = None,
        layers: tuple[lambda_.ILayerVersion, ...] = (),
        function_name: str | None = None,
    ) -> None:
        """``cold_start``: ``none`` (callers invoke the function), ``snapstart`` or
        ``provisioned`` (callers invoke the ``live`` alias of the published version, restored
        from a SnapStart snapshot or kept warm by ``provisioned_concurrency`` environments);
        ``network``: the VPC subnets and security group to run in (``vpc``), if any;
        ``durable``: a durable function, invoked through its ``live`` alias (durable
        functions take only qualified names); ``layers``: beside Powertools;
        ``function_name``: a name chosen here, for a policy that must name the function
        without referring to it (CloudFormation generates one otherwise)."""
        super().__init__(scope, construct_id)
        region = Stack.of(self).region
        if cold_start == "snapstart" and not Token.is_unresolved(region) and region in SNAPSTART_UNSUPPORTED_REGIONS:
            raise ConfigError(
                f"Lambda SnapStart is not available in {region}: choose provisioned or none for "
                "api_cold_start and worker_cold_start"
            )
        if cold_start == "snapstart":
            refuse_snapstart_where_unavailable(self)
        self.log_group = log_group(self, "Logs", config)
        published = cold_start != "none" or durable is not None
        # A durable execution is pinned to the version that started it and resumes on it,
        # hours or days later (Lambda Developer Guide, "Invoking durable Lambda functions"):
        # a replaced version must outlive the executions still running on it.
        replaced_version = RemovalPolicy.RETAIN if durable is not None else RemovalPolicy.DESTROY
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=function_name,
            description=description,
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=handler,
            code=lambda_.Code.from_asset(
                str(LAMBDAS_DIR),
                exclude=["**/__pycache__", "**/*.pyc", "**/.mypy_cache", "**/.pytest_cache"],
            ),
            layers=[powertools_layer(self, config.powertools_layer_version), *layers],
            timeout=timeout,
            memory_size=memory_size,
            reserved_concurrent_executions=reserved_concurrency,
            tracing=lambda_.Tracing.ACTIVE,
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if cold_start == "snapstart" else None,
            # A replaced version is deleted once the alias has moved on: each SnapStart version
            # is billed for its cached snapshot while it exists (Lambda pricing, "SnapStart").
            current_version_options=lambda_.VersionOptions(removal_policy=replaced_version) if published else None,
            durable_config=durable,
            log_group=self.log_group,
            vpc=network.vpc if network else None,
            vpc_subnets=network.subnets if network else None,
            security_groups=[network.security_group] if network else None,
            environment={
                "POWERTOOLS_SERVICE_NAME": service_name(self),
                # The app's name (AsyncJobs), shared by its stages; ``service`` tells them apart.
                "POWERTOOLS_METRICS_NAMESPACE": config.name.pascal,
                **Settings.variables(app=config.name),
                "POWERTOOLS_LOG_LEVEL": config.log_level.upper(),
                **environment,
            },
        )
        # What callers (API Gateway) invoke: the function itself, or its alias.
        self.invoked: lambda_.IFunction = self.function
        if published:
            self.invoked = lambda_.Alias(
                self,
                "Live",
                alias_name=LIVE_ALIAS,
                version=self.function.current_version,
                provisioned_concurrent_executions=provisioned_concurrency if cold_start == "provisioned" else None,
            )
        acknowledge(
            self,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray's PutTraceSegments and PutTelemetryRecords support no resource-level permissions.",
        )
        if network is not None:
            acknowledge(
                self,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSLambdaVPCAccessExecutionRole]",
                "Lambda's own policy for a function in a VPC: the network-interface actions it needs to attach "
                "the function to its subnets (Lambda Developer Guide, 'Giving Lambda functions access to a VPC').",
            )

    def acknowledge_invoke_wildcard(self, target: lambda_.IFunction) -> None:
        """Accept cdk-nag's finding for grant_invoke's ``<arn>:*`` (versions and aliases of ``target``)."""
        acknowledge_invoke_wildcard(self, target)


def refuse_snapstart_where_unavailable(scope: Construct) -> None:
    """A stack deployed to any region (no ``env``) learns its region only in CloudFormation:
    a template rule refuses the regions without SnapStart before anything is created."""
    stack = Stack.of(scope)
    if stack.node.try_find_child("SnapStartRegion") is not None:
        return
    CfnRule(
        stack,
        "SnapStartRegion",
        assertions=[
            CfnRuleAssertion(
                assert_=Fn.condition_not(Fn.condition_contains(sorted(SNAPSTART_UNSUPPORTED_REGIONS), Aws.REGION)),
                assert_description="Lambda SnapStart is not available in this region: choose provisioned or none "
                "for api_cold_start and worker_cold_start",
            )
        ],
    )


def acknowledge_invoke_wildcard(scope: Construct, target: lambda_.IFunction) -> None:
    """Accept, on ``scope``, cdk-nag's finding for invoking ``target``'s ``<arn>:*`` (its
    versions and aliases), which every grant to invoke a function includes."""
    acknowledge(
        scope,
        f"AwsSolutions-IAM5[Resource::<{logical_id(target)}.Arn>:*]",
        "Invoking one function also covers its versions and aliases (<arn>:*); nothing else.",
    )


def logical_id(construct: IConstruct) -> str:
    """The template's logical id of an L2 construct's resource (cdk-nag findings name it)."""
    resource = construct.node.default_child
    assert isinstance(resource, CfnElement)
    return Stack.of(construct).get_logical_id(resource)


def acknowledge(scope: Construct, rule: str, reason: str) -> None:
    """Accept a cdk-nag finding on ``scope`` (and its children), with the reason on record."""
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


def log_group(scope: Construct, construct_id: str, config: AppConfig, name: str | None = None) -> logs.LogGroup:
    """A log group with the configured retention and removal policy (``name``: CloudFormation names it)."""
    group = logs.LogGroup(scope, construct_id, log_group_name=name, removal_policy=config.removal)
    # The L2 takes retention as an enum of named periods; the setting is a day count that
    # config.py has already checked against the values CloudWatch Logs accepts.
    cfn = group.node.default_child
    assert isinstance(cfn, logs.CfnLogGroup)
    cfn.retention_in_days = config.log_retention_days
    return group
