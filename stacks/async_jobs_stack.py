"""The one stack: composes the job store, worker, API and monitoring constructs."""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, Annotations, CfnOutput, Stack, Tags, Validations
from constructs import Construct

from jobs.settings import Settings
from stacks.api import JobsApi
from stacks.api_account import ApiGatewayAccount
from stacks.callbacks import Callbacks
from stacks.config import AppConfig
from stacks.database import JobDatabase
from stacks.firewall import ApiFirewall
from stacks.job_store import JobStore
from stacks.monitoring import Monitoring
from stacks.network import JobNetwork
from stacks.notifications import JobNotifications
from stacks.reaper import Reaper
from stacks.worker import Worker


def timeout_margin_seconds(worker_timeout_seconds: int) -> int:
    """Seconds the worker keeps in hand when a task overruns, enough for its final writes:
    10 s for long timeouts, less (down to 1 s) for short ones."""
    return max(1, min(10, worker_timeout_seconds // 6))


class AsyncJobsStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # CloudFormation's AWS::RDS::DBProxyTargetGroup takes no Tags (CDK would add them).
        untaggable = ["AWS::RDS::DBProxyTargetGroup"]
        Tags.of(self).add("app", config.app_name, exclude_resource_types=untaggable)
        Tags.of(self).add("stage", config.stage, exclude_resource_types=untaggable)

        self.store = JobStore(self, "JobStore", config=config)
        # What every function gets: the values chosen in cdk.json and the ones derived from
        # them. Each construct adds the variables of the resources it owns.
        environment = {
            **config.tuning.environment(),
            **self.store.environment(),
            **Settings.variables(
                job_retention_seconds=config.job_retention_days * 86_400,
                max_attempts=config.max_attempts,
                timeout_margin_seconds=timeout_margin_seconds(config.worker_timeout_seconds),
                stuck_after_seconds=config.stuck_after_seconds,
            ),
        }
        # vpc (or database): the function that runs jobs in a VPC, reaching AWS through endpoints.
        self.network = (
            JobNetwork(self, "Network", config=config, store=self.store) if config.network != "none" else None
        )
        self.database = (
            JobDatabase(self, "Database", config=config, network=self.network)
            if config.database == "postgres" and self.network is not None
            else None
        )
        self.worker = Worker(
            self, "Worker", config=config, store=self.store, environment=environment, network=self.network
        )
        if self.database is not None:
            self.database.connect(self.worker.function)
        if self.network is not None and self.worker.durable_function_name is not None:
            self.network.reach_lambda(self.worker.function, self.worker.durable_function_name, config)
        self.notifications: JobNotifications | None = None
        api_environment = environment
        account = ApiGatewayAccount(self, "ApiGatewayAccount", create_role=config.apigateway_cloudwatch_role)
        if config.notify == "websocket":
            self.notifications = JobNotifications(
                self, "Notifications", config=config, store=self.store, environment=environment, account=account
            )
            # The API's answers point clients at the WebSocket (a Link header, rel="monitor").
            api_environment = {**environment, **Settings.variables(websocket_url=self.notifications.url)}
        self.api = JobsApi(
            self,
            "Api",
            config=config,
            store=self.store,
            worker=self.worker,
            environment=api_environment,
            account=account,
        )
        if config.waf_enabled:
            ApiFirewall(self, "Firewall", config=config, stage=self.api.rest_api.deployment_stage)
        self.reaper = Reaper(
            self,
            "Reaper",
            config=config,
            store=self.store,
            environment=environment,
            dead_letter_queue=self.worker.dead_letter_queue,
        )
        self.callbacks = Callbacks(
            self,
            "Callbacks",
            config=config,
            store=self.store,
            environment=environment,
            dead_letter_queue=self.worker.dead_letter_queue,
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            config=config,
            api=self.api.rest_api,
            routes=self.api.routes,
            functions={
                "Submit": self.api.submit_function,
                "Status": self.api.status_function,
                "Cancel": self.api.cancel_function,
                "Worker": self.worker.function,
                **({"OnFailure": self.worker.recorder} if self.worker.recorder is not None else {}),
                "Reaper": self.reaper.function,
                "Callbacks": self.callbacks.function,
                **self.worker.step_functions(),
                **(self.notifications.functions() if self.notifications is not None else {}),
            },
            dead_letter_queue=self.worker.dead_letter_queue,
            state_machine=self.worker.workflow.state_machine if self.worker.workflow is not None else None,
            database=self.database.cluster if self.database is not None else None,
            provisioned={
                **(self.api.invoked if config.api_cold_start == "provisioned" else {}),
                **({"Worker": self.worker.invoked} if config.worker_cold_start == "provisioned" else {}),
            },
        )

        self._build_outputs(config)
        self._suppress_accepted_findings()

    def _build_outputs(self, config: AppConfig) -> None:
        """What a deployment prints: the API's URL and what an operator or a client needs next."""
        if config.stage == "prod" and not config.alarm_email:
            Annotations.of(self).add_warning_v2(
                "app:no-alarm-email",
                "No alarm_email: alarms reach the SNS topic but nobody is told. Deploy with -c alarm_email=...",
            )
        CfnOutput(self, "ApiUrl", value=self.api.rest_api.url, description="Base URL of the jobs API")
        CfnOutput(self, "JobsTableName", value=self.store.jobs_table.table_name)
        CfnOutput(self, "AlarmTopicArn", value=self.monitoring.topic.topic_arn)
        CfnOutput(self, "DeadLetterQueueUrl", value=self.worker.dead_letter_queue.queue_url)
        if self.notifications is not None:
            CfnOutput(self, "WebSocketUrl", value=self.notifications.url, description="wss:// URL; add ?job_id=<id>")
        if self.database is not None:
            CfnOutput(self, "DatabaseProxyEndpoint", value=self.database.proxy.endpoint)
            CfnOutput(
                self,
                "DatabaseSecretArn",
                value=self.database.cluster.secret.secret_arn if self.database.cluster.secret else "",
                description="The master user's password (read by the proxy only; for migrations and psql)",
            )
        if self.worker.workflow is not None:
            CfnOutput(self, "StateMachineArn", value=self.worker.workflow.state_machine.state_machine_arn)
        CfnOutput(
            self,
            "CallbackSecretArn",
            value=self.callbacks.signing_secret.secret_arn,
            description=f"Secrets Manager secret that signs webhook callbacks (X-{config.name.header}-Signature)",
        )

    def _suppress_accepted_findings(self) -> None:
        """cdk-nag AwsSolutions findings this design accepts, each with its reason."""
        Validations.of(self).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
                reason="AWSLambdaBasicExecutionRole only lets each function write its own logs.",
            )
        )
