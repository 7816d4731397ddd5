"""Alarms that tell operators when jobs are at risk, all to one encrypted SNS topic.

The headline alarm is the API's 5XXError count; next come integration latency (p99) near
the 29 s limit, each function's errors and throttles, and any event in the dead-letter
queue (a job that failed for good outside its task). Missing data never alarms.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.config import AppConfig


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        api: apigw.RestApi,
        functions: dict[str, lambda_.IFunction],
        dead_letter_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        # CloudWatch can only publish to an encrypted topic whose key lets it; the AWS
        # managed SNS key does not, so the topic gets a customer managed key.
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description="Encrypts the async-jobs alarm topic",
            enable_key_rotation=True,
            removal_policy=config.removal,
        )
        key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        self.topic = sns.Topic(self, "AlarmTopic", master_key=key, enforce_ssl=True)
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))

        period = Duration.minutes(config.alarm_period_minutes)
        self.alarms: list[cloudwatch.Alarm] = []
        self._alarm(
            "Api5xxErrors",
            api.metric_server_error(period=period, statistic="Sum"),
            config.alarm_5xx_threshold,
            "API answered 5XX (integration failures, timeouts or function errors)",
            config,
        )
        self._alarm(
            "ApiIntegrationLatencyP99",
            api.metric_integration_latency(period=period, statistic="p99"),
            config.alarm_latency_p99_ms,
            "API integration latency p99 is approaching the 29 s integration timeout",
            config,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        )
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
        self._alarm(
            "DeadLetterQueueNotEmpty",
            dead_letter_queue.metric_approximate_number_of_messages_visible(period=period, statistic="Maximum"),
            0,
            "Worker events failed for good and were dead-lettered; inspect and replay them",
            config,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        )

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
