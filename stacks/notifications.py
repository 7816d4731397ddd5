"""``notify=websocket``: an API Gateway WebSocket API that pushes job changes to subscribers.

A client connects to ``wss://<api>/<stage>?job_id=<id>``, signed with SigV4 (``$connect``
is IAM-authorised; the connect function checks the caller owns the job). Every change to
the job reaches it from the jobs table's stream through the push function; the connection
is closed once the job has finished. Connections live in their own table with a TTL, so
one whose ``$disconnect`` never came expires by itself; the push function forgets those
API Gateway reports gone.
"""

from __future__ import annotations

import json

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from constructs import Construct

from jobs.settings import Settings
from stacks.api_account import ApiGatewayAccount
from stacks.config import AppConfig
from stacks.job_store import JobStore
from stacks.python_function import PythonFunction, acknowledge, log_group, logical_id

JOB_CONNECTIONS_INDEX = "job-connections"  # lambdas/jobs/connections.py queries it
# One JSON line per connect, disconnect and message, as the REST API logs its requests.
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "connectionId": "$context.connectionId",
    "eventType": "$context.eventType",
    "routeKey": "$context.routeKey",
    "ip": "$context.identity.sourceIp",
    "user": "$context.identity.userArn",
    "requestTime": "$context.requestTime",
    "status": "$context.status",
    "integrationLatency": "$context.integrationLatency",
    "error": "$context.error.message",
}


class JobNotifications(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        store: JobStore,
        environment: dict[str, str],
        account: ApiGatewayAccount,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._build_connections_table()
        self._environment = {
            **environment,
            **Settings.variables(connections_table_name=self.connections_table.table_name),
        }
        self.connect_function = self._function("Connect", "connect", "WebSocket $connect: subscribes to one job", {})
        self.disconnect_function = self._function("Disconnect", "disconnect", "WebSocket $disconnect", {})
        self._build_websocket_api(account)
        self._build_push(store)

    def _build_connections_table(self) -> None:
        """Who listens to which job: one item per connection, found by job through an index."""
        config = self._config
        self.connections_table = dynamodb.Table(
            self,
            "ConnectionsTable",
            partition_key=dynamodb.Attribute(name="connection_id", type=dynamodb.AttributeType.STRING),
            time_to_live_attribute="expires_at",
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=config.removal,
        )
        self.connections_table.add_global_secondary_index(
            index_name=JOB_CONNECTIONS_INDEX,
            partition_key=dynamodb.Attribute(name="job_id", type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.KEYS_ONLY,
        )

    def _function(self, name: str, handler: str, description: str, extra: dict[str, str]) -> lambda_.Function:
        return PythonFunction(
            self,
            name,
            config=self._config,
            handler=f"jobs.handlers.websocket.{handler}",
            description=description,
            environment={**self._environment, **extra},
            timeout=Duration.seconds(30),
            memory_size=256,
        ).function

    def _build_websocket_api(self, account: ApiGatewayAccount) -> None:
        """The WebSocket API (IAM on $connect) and its stage: throttling, access logs."""
        config = self._config
        self.api = apigwv2.WebSocketApi(
            self,
            "WebSocketApi",
            api_name=f"{Stack.of(self).stack_name}-websocket",
            description=f"Pushes job changes to subscribers ({config.app_name})",
            connect_route_options=apigwv2.WebSocketRouteOptions(
                integration=integrations.WebSocketLambdaIntegration("Connect", self.connect_function),
                authorizer=authorizers.WebSocketIamAuthorizer(),
            ),
            disconnect_route_options=apigwv2.WebSocketRouteOptions(
                integration=integrations.WebSocketLambdaIntegration("Disconnect", self.disconnect_function),
            ),
        )
        self.stage = apigwv2.WebSocketStage(
            self,
            "Stage",
            web_socket_api=self.api,
            stage_name=config.api_stage_name,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=config.api_throttle_rate_limit, burst_limit=config.api_throttle_burst_limit
            ),
        )
        access_logs = log_group(self, "AccessLogs", config)
        account.needed_by(self.stage)  # access logs need the account's role, as the REST API's do
        cfn_stage = self.stage.node.default_child
        assert isinstance(cfn_stage, apigwv2.CfnStage)
        # The L2 stage takes access logs only through an interface Python cannot easily implement.
        cfn_stage.access_log_settings = apigwv2.CfnStage.AccessLogSettingsProperty(
            destination_arn=access_logs.log_group_arn, format=json.dumps(ACCESS_LOG_FORMAT)
        )
        acknowledge(
            self.api,
            "AwsSolutions-APIG4",
            "API Gateway authorizes WebSocket APIs on $connect only (IAM here); $disconnect carries no request "
            "of the client's and cannot take an authorizer.",
        )

    def _build_push(self, store: JobStore) -> None:
        """The function that reads the jobs table's stream and pushes each change to its subscribers."""
        config = self._config
        self.push_function = self._function(
            "Push",
            "push",
            "Pushes each job change to the job's WebSocket subscribers",
            Settings.variables(websocket_callback_url=self.stage.callback_url),
        )
        self.push_function.add_event_source(
            event_sources.DynamoEventSource(
                store.jobs_table,
                starting_position=lambda_.StartingPosition.LATEST,
                batch_size=100,
                max_batching_window=Duration.millis(0),
                bisect_batch_on_error=True,
                retry_attempts=2,
                # A stale push is worth nothing (clients poll as well): give up after a minute, no DLQ.
                max_record_age=Duration.seconds(60),
                report_batch_item_failures=False,
                filters=[lambda_.FilterCriteria.filter({"eventName": ["MODIFY"]})],
            )
        )
        # Item actions only, on the table and the one index; not Table.grant_read_write_data's list.
        self._grant_connections(self.connect_function, "dynamodb:PutItem")
        store.grant_jobs(self.connect_function, "dynamodb:GetItem")
        self._grant_connections(self.disconnect_function, "dynamodb:DeleteItem")
        self._grant_connections(self.push_function, "dynamodb:DeleteItem")
        self._grant_connections(self.push_function, "dynamodb:Query", index=JOB_CONNECTIONS_INDEX)
        store.grant_results(self.push_function, "s3:GetObject")
        self.stage.grant_management_api_access(self.push_function)
        acknowledge(
            self.push_function,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:"
            f"<{logical_id(self.api)}>/{config.api_stage_name}/*/@connections/*]",
            "Connection ids exist only at run time; the scope is this API's stage and its @connections.",
        )

    def functions(self) -> dict[str, lambda_.IFunction]:
        """The functions, by name (for alarms)."""
        return {"Connect": self.connect_function, "Disconnect": self.disconnect_function, "Push": self.push_function}

    @property
    def url(self) -> str:
        """``wss://`` URL of the stage; clients add ``?job_id=<id>``."""
        return self.stage.url

    def _grant_connections(self, grantee: iam.IGrantable, action: str, index: str | None = None) -> None:
        """One action on the connections table, or on one of its indexes."""
        arn = self.connections_table.table_arn
        iam.Grant.add_to_principal(
            grantee=grantee, actions=[action], resource_arns=[f"{arn}/index/{index}" if index else arn]
        )
