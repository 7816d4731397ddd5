"""API Gateway's account-level CloudWatch Logs role, which every API logging to CloudWatch needs.

API Gateway writes a stage's access logs (and execution logs) through one IAM role set
per account and region in its account settings (``cloudWatchRoleArn``). A fresh account
has none, and then creating a stage with access logging fails: "CloudWatch Logs role ARN
must be set in account settings to enable logging" (API Gateway Developer Guide, "Set up
CloudWatch logging for REST APIs in API Gateway" and, for WebSocket APIs, "Configure
logging for WebSocket APIs in API Gateway"; the setting is ``AWS::ApiGateway::Account``).

With ``apigateway_cloudwatch_role`` on (the default) the stack creates that role and sets
it, and every stage that logs waits for it. Both are retained when the stack is deleted:
the setting is the account's, and other APIs in the region may log through it. Turn the
setting off where the account already has a role (``make doctor`` shows it) or where
another team manages account settings.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from constructs import Construct, IConstruct

from stacks.python_function import acknowledge

# AWS's managed policy for exactly this role (CreateLogGroup/Stream, PutLogEvents, Describe*).
PUSH_TO_CLOUDWATCH_LOGS = "service-role/AmazonAPIGatewayPushToCloudWatchLogs"


class ApiGatewayAccount(Construct):
    """The account's API Gateway CloudWatch Logs role (created only when asked for)."""

    def __init__(self, scope: Construct, construct_id: str, *, create_role: bool) -> None:
        super().__init__(scope, construct_id)
        self.setting: apigw.CfnAccount | None = None
        if not create_role:
            return
        role = iam.Role(
            self,
            "CloudWatchRole",
            description="API Gateway writes access and execution logs to CloudWatch Logs (account setting)",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(PUSH_TO_CLOUDWATCH_LOGS)],
        )
        role.apply_removal_policy(RemovalPolicy.RETAIN)
        self.setting = apigw.CfnAccount(self, "Setting", cloud_watch_role_arn=role.role_arn)
        self.setting.apply_removal_policy(RemovalPolicy.RETAIN)
        acknowledge(
            role,
            f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{PUSH_TO_CLOUDWATCH_LOGS}]",
            "AWS's managed policy made for API Gateway's account-level logging role; API Gateway names the log "
            "groups itself (access logs here, execution logs per API), so no narrower resource applies.",
        )

    def follows(self, api: IConstruct) -> None:
        """Set the account setting after an API exists: on an account that never had an API
        Gateway resource, CloudFormation's AWS::ApiGateway::Account needs one to be created
        first (as CDK's own RestApi does with its cloudWatchRole)."""
        if self.setting is not None:
            self.setting.node.add_dependency(api)

    def needed_by(self, *stages: IConstruct) -> None:
        """Stages with logging are created only after the account setting is in place."""
        if self.setting is not None:
            for stage in stages:
                stage.node.add_dependency(self.setting)
