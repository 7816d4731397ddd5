"""The stuck-job reaper: a scheduled function that ends jobs no worker will finish.

An EventBridge rule runs it every ``reaper_interval_minutes``. It queries the jobs
table's sparse ``active-jobs`` index for jobs past their deadline
(``AppConfig.stuck_after_seconds``) and records them FAILED (or CANCELLED); see
``lambdas/jobs/reaper.py``.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.config import AppConfig
from stacks.job_store import ACTIVE_INDEX, JobStore
from stacks.python_function import PythonFunction


class Reaper(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        store: JobStore,
        environment: dict[str, str],
        dead_letter_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = PythonFunction(
            self,
            "Reaper",
            config=config,
            handler="jobs.handlers.reaper.handler",
            description="Ends jobs left PENDING or RUNNING past their deadline (scheduled)",
            environment=environment,
            timeout=Duration.minutes(2),
            memory_size=256,
        ).function
        store.grant_query_index(self.function, ACTIVE_INDEX)
        store.grant_jobs(self.function, "dynamodb:UpdateItem")

        self.schedule = events.Rule(
            self,
            "Schedule",
            description="Runs the stuck-job reaper",
            schedule=events.Schedule.rate(Duration.minutes(config.reaper_interval_minutes)),
            targets=[
                targets.LambdaFunction(
                    self.function,
                    # A missed run is harmless (the next one catches up), so retry briefly
                    # and keep failed deliveries where operators already look.
                    retry_attempts=2,
                    max_event_age=Duration.minutes(config.reaper_interval_minutes),
                    dead_letter_queue=dead_letter_queue,
                )
            ],
        )
