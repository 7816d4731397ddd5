"""What operators see: alarms to one encrypted SNS topic, and a CloudWatch dashboard.

The headline alarm is the API's 5XXError count; next come integration latency (p99) near
the 29 s limit, the share of jobs that fail, each function's errors and throttles, and
any event in the dead-letter queue (a job that failed for good outside its task).
Missing data never alarms. The dashboard puts the same signals side by side.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.config import AppConfig
from stacks.python_function import service_name

# Jobs per period below which the failed-jobs rate does not alarm: 1 failure in 2 jobs is
# noise, not an incident.
FAILED_JOBS_MIN_COUNT = 5
API_TIMEOUT_MS = 29_000


def job_metric(
    scope: Construct, config: AppConfig, name: str, period: Duration, statistic: str = "Sum"
) -> cloudwatch.Metric:
    """One of the functions' own metrics (Powertools EMF: the app's namespace, dimension ``service``)."""
    return cloudwatch.Metric(
        namespace=config.name.pascal,
        metric_name=name,
        dimensions_map={"service": service_name(scope)},
        period=period,
        statistic=statistic,
    )


def alarm_name(scope: Construct, name_suffix: str) -> str:
    """This stack's alarm names: ``<stack name>-<name_suffix>`` (unique per account and region)."""
    return f"{Stack.of(scope).stack_name}-{name_suffix}"


def alarm_arn(scope: Construct, name_suffix: str) -> str:
    """ARN of this stack's alarm(s) named ``alarm_name(scope, name_suffix)`` (``*`` for all)."""
    stack = Stack.of(scope)
    return f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:{alarm_name(scope, name_suffix)}"


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        api: apigw.RestApi,
        routes: list[tuple[str, str]],
        functions: dict[str, lambda_.IFunction],
        dead_letter_queue: sqs.IQueue,
        state_machine: sfn.StateMachine | None = None,
        provisioned: dict[str, lambda_.IFunction] | None = None,
        database: rds.DatabaseCluster | None = None,
    ) -> None:
        """``routes``: (HTTP method, resource path) of each API method, for per-route graphs;
        ``state_machine``: the job workflow (``dispatch=stepfunctions``), if any;
        ``database``: the Aurora cluster (``database=postgres``), if any;
        ``provisioned``: the aliases with provisioned concurrency, by function, if any."""
        super().__init__(scope, construct_id)
        self._build_topic(config)
        period = Duration.minutes(config.alarm_period_minutes)
        self.alarms: list[cloudwatch.Alarm] = []
        self._build_api_alarms(config, api, period)
        self._build_function_alarms(config, functions, period)
        self._build_job_alarms(config, dead_letter_queue, state_machine, period)
        if database is not None:
            self._build_database_alarms(config, database, period)
        self.dashboard = self._dashboard(config, api, routes, functions, dead_letter_queue, provisioned or {})

    def _build_topic(self, config: AppConfig) -> None:
        """The encrypted SNS topic every alarm notifies (and the e-mail subscription, if any)."""
        # CloudWatch can only publish to an encrypted topic whose key lets it; the AWS
        # managed SNS key does not, so the topic gets a customer managed key.
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"Encrypts the {config.app_name} alarm topic",
            enable_key_rotation=True,
            removal_policy=config.removal,
        )
        key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        self.topic = sns.Topic(self, "AlarmTopic", master_key=key, enforce_ssl=True)
        # A topic policy replaces SNS's default policy, and enforce_ssl's is a lone Deny: without
        # this Allow no alarm could publish ("... is not authorized to perform: SNS:Publish ...
        # because no resource-based policy allows"; AWS re:Post Knowledge Center,
        # "cloudwatch-receive-sns-for-alarm-trigger"). Scoped to this stack's alarms, whose
        # names all start with the stack's name (_alarm), in this account (confused deputy).
        stack = Stack.of(self)
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisStacksAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": alarm_arn(self, "*")},
                },
            )
        )
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))

    def _build_api_alarms(self, config: AppConfig, api: apigw.RestApi, period: Duration) -> None:
        """5XX answers first: what a client of the 504 problem feels. Then latency near the cut-off."""
        # Stage metrics: AWS publishes API Gateway's per-stage figures under ApiName + Stage.
        stage = api.deployment_stage
        self._alarm(
            "Api5xxErrors",
            stage.metric_server_error(period=period, statistic="Sum"),
            config.alarm_5xx_threshold,
            "API answered 5XX (integration failures, timeouts or function errors)",
            config,
        )
        self._alarm(
            "ApiIntegrationLatencyP99",
            stage.metric_integration_latency(period=period, statistic="p99"),
            config.alarm_latency_p99_ms,
            "API integration latency p99 is approaching the 29 s integration timeout",
            config,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        )

    def _build_function_alarms(
        self, config: AppConfig, functions: dict[str, lambda_.IFunction], period: Duration
    ) -> None:
        """Errors and throttles of every function."""
        for name, function in functions.items():
            self._alarm(
                f"{name}Errors",
                function.metric_errors(period=period, statistic="Sum"),
                config.alarm_function_errors_threshold,
                f"{name} function invocations are failing",
                config,
            )
            self._alarm(
                f"{name}Throttles",
                function.metric_throttles(period=period, statistic="Sum"),
                config.alarm_function_throttles_threshold,
                f"{name} function invocations are being throttled",
                config,
            )

    def _build_job_alarms(
        self,
        config: AppConfig,
        dead_letter_queue: sqs.IQueue,
        state_machine: sfn.StateMachine | None,
        period: Duration,
    ) -> None:
        """Jobs failing, events dead-lettered, workflow executions that never recorded their end."""
        completed, failed = (
            job_metric(self, config, "JobsCompleted", period),
            job_metric(self, config, "JobsFailed", period),
        )
        self._alarm(
            "FailedJobsRate",
            cloudwatch.MathExpression(
                expression=f"IF(completed + failed >= {FAILED_JOBS_MIN_COUNT}, 100 * failed / (completed + failed), 0)",
                using_metrics={"completed": completed, "failed": failed},
                label="failed jobs (%)",
                period=period,
            ),
            config.alarm_failed_jobs_percent,
            f"At least {config.alarm_failed_jobs_percent}% of finished jobs failed "
            f"(of at least {FAILED_JOBS_MIN_COUNT} in a period)",
            config,
        )
        self._alarm(
            "DeadLetterQueueNotEmpty",
            dead_letter_queue.metric_approximate_number_of_messages_visible(period=period, statistic="Maximum"),
            0,
            "Worker events failed for good and were dead-lettered; inspect and replay them",
            config,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        )

        if state_machine is not None:
            # A failed execution is usually just a failed job (FailedJobsRate covers that);
            # one that timed out or was aborted never recorded its end: the reaper will.
            self._alarm(
                "WorkflowExecutionsTimedOutOrAborted",
                cloudwatch.MathExpression(
                    expression="timedout + aborted",
                    using_metrics={
                        "timedout": state_machine.metric_timed_out(period=period, statistic="Sum"),
                        "aborted": state_machine.metric_aborted(period=period, statistic="Sum"),
                    },
                    label="executions timed out or aborted",
                    period=period,
                ),
                1,
                "Job workflow executions timed out or were aborted; their jobs end FAILED by the reaper",
                config,
            )

    def _build_database_alarms(self, config: AppConfig, database: rds.DatabaseCluster, period: Duration) -> None:
        """The database near its maximum capacity: queries slow down, then jobs time out.
        ``ACUUtilization`` is the capacity in use as a percentage of the cluster's maximum,
        per cluster (``DBClusterIdentifier``) in AWS/RDS (Aurora User Guide, "Important
        Amazon CloudWatch metrics for Aurora Serverless v2")."""
        self._alarm(
            "DatabaseNearMaximumCapacity",
            database.metric("ACUUtilization", period=period, statistic="Maximum"),
            config.alarm_database_capacity_percent,
            f"The database used at least {config.alarm_database_capacity_percent}% of its maximum capacity "
            f"({config.database_max_capacity:g} ACUs): raise database_max_capacity or make the queries cheaper",
            config,
        )

    def _dashboard(
        self,
        config: AppConfig,
        api: apigw.RestApi,
        routes: list[tuple[str, str]],
        functions: dict[str, lambda_.IFunction],
        dead_letter_queue: sqs.IQueue,
        provisioned: dict[str, lambda_.IFunction],
    ) -> cloudwatch.Dashboard:
        period = Duration.minutes(1)
        stage = api.deployment_stage.stage_name

        def route_metric(name: str, method: str, resource: str) -> cloudwatch.Metric:
            # Per-method metrics: the stage has detailed metrics on (metrics_enabled).
            return cloudwatch.Metric(
                namespace="AWS/ApiGateway",
                metric_name=name,
                dimensions_map={"ApiName": api.rest_api_name, "Method": method, "Resource": resource, "Stage": stage},
                period=period,
                statistic="Sum",
                label=f"{method} {resource}",
            )

        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=Stack.of(self).stack_name)
        dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=f"# {config.app_name}\nRequests and errors by route, latency against API Gateway's 29 s "
                "cut-off, jobs by outcome, job duration against the worker timeout, dead letters, throttles.",
                width=24,
                height=2,
            )
        )
        dashboard.add_widgets(
            *[
                cloudwatch.GraphWidget(
                    title=title,
                    left=[route_metric(metric, method, resource) for method, resource in routes],
                    width=8,
                )
                for title, metric in (
                    ("Requests by route", "Count"),
                    ("4XX by route", "4XXError"),
                    ("5XX by route", "5XXError"),
                )
            ]
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Integration latency (ms) against the 29 s cut-off",
                left=[
                    api.deployment_stage.metric_integration_latency(period=period, statistic="p50", label="p50"),
                    api.deployment_stage.metric_integration_latency(period=period, statistic="p99", label="p99"),
                ],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=API_TIMEOUT_MS, label="29 s: 504")],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Jobs by outcome",
                left=[
                    job_metric(self, config, name, period)
                    for name in ("JobsSubmitted", "JobsCompleted", "JobsFailed", "JobsCancelled", "JobsReaped")
                ],
                stacked=False,
                width=12,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Job duration (ms) against the worker timeout",
                left=[
                    job_metric(self, config, "JobDuration", period, "p50"),
                    job_metric(self, config, "JobDuration", period, "p99"),
                    job_metric(self, config, "JobDuration", period, "Maximum"),
                ],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(value=config.worker_timeout_seconds * 1000, label="worker timeout")
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Dead-letter queue depth",
                left=[dead_letter_queue.metric_approximate_number_of_messages_visible(period=period)],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Throttles",
                left=[
                    function.metric_throttles(period=period, statistic="Sum", label=name)
                    for name, function in functions.items()
                ],
                width=8,
            ),
        )
        if provisioned:
            # Published per alias only (dimensions FunctionName + Resource): how much of what
            # is paid for is used, and how many requests still started cold (spilled over).
            dashboard.add_widgets(
                *[
                    cloudwatch.GraphWidget(
                        title=title,
                        left=[
                            alias.metric(metric, period=period, statistic=statistic, label=name)
                            for name, alias in provisioned.items()
                        ],
                        width=12,
                    )
                    for title, metric, statistic in (
                        (
                            "Provisioned concurrency used (max, fraction)",
                            "ProvisionedConcurrencyUtilization",
                            "Maximum",
                        ),
                        ("Invocations beyond it (cold starts)", "ProvisionedConcurrencySpilloverInvocations", "Sum"),
                    )
                ]
            )
        dashboard.add_widgets(cloudwatch.AlarmStatusWidget(alarms=list(self.alarms), title="Alarms", width=24))
        return dashboard

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        threshold: int,
        description: str,
        config: AppConfig,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_name=alarm_name(self, construct_id),  # what the topic policy allows
            metric=metric,
            threshold=threshold,
            evaluation_periods=config.alarm_evaluation_periods,
            comparison_operator=comparison,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(actions.SnsAction(self.topic))
        alarm.add_ok_action(actions.SnsAction(self.topic))
        self.alarms.append(alarm)
