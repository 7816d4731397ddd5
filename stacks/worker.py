"""The worker: the function that runs jobs, its retries, and where failed events end up.

Three transports (``dispatch``): asynchronous Lambda invocations (``lambda``, the
default), an SQS queue with an event source mapping (``sqs``), or a Step Functions
workflow of steps (``stepfunctions``, ``stacks/workflow.py``). The job logic is the same.

Failure path: the worker's event-invoke config retries an attempt that raised, crashed or
timed out; once retries are used up (or the event is older than the maximum age) Lambda
invokes the on-failure recorder, which marks the job FAILED and puts the record in an
encrypted, TLS-only dead-letter queue. The recorder's own failures go to the same queue.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from jobs.settings import Settings
from stacks.config import AppConfig
from stacks.job_store import JobStore
from stacks.network import JobNetwork
from stacks.python_function import PythonFunction, acknowledge
from stacks.workflow import JobWorkflow


class Worker(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        store: JobStore,
        environment: dict[str, str],
        network: JobNetwork | None = None,
    ) -> None:
        """``network``: where the function that runs jobs runs (``vpc``), if anywhere."""
        super().__init__(scope, construct_id)
        self._network = network
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
            removal_policy=config.removal,
        )
        acknowledge(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is the dead-letter queue; it needs none of its own.",
        )

        self.jobs_queue: sqs.Queue | None = None
        self.recorder: lambda_.IFunction | None = None
        self.workflow: JobWorkflow | None = None
        if config.dispatch == "sqs":
            self._queue_worker(config, store, environment)
        elif config.dispatch == "stepfunctions":
            self.workflow = JobWorkflow(
                self, "Workflow", config=config, store=store, environment=environment, network=network
            )
            self.function = self.workflow.process
            self.invoked = self.workflow.process_invoked
        else:
            self._async_worker(config, store, environment)
        store.grant_jobs(self.function, "dynamodb:GetItem", "dynamodb:UpdateItem")
        store.grant_results(self.function, "s3:PutObject")

    def step_functions(self) -> dict[str, lambda_.IFunction]:
        """``dispatch=stepfunctions``: the workflow's other step functions, by name (for alarms)."""
        if self.workflow is None:
            return {}
        workflow = self.workflow
        return {"Prepare": workflow.prepare, "Finalise": workflow.finalise, "RecordFailure": workflow.record_failure}

    def dispatch_environment(self) -> dict[str, str]:
        """What the submit function needs to know to hand a job over."""
        if self.jobs_queue is not None:
            return Settings.variables(dispatch="sqs", jobs_queue_url=self.jobs_queue.queue_url)
        if self.workflow is not None:
            return Settings.variables(
                dispatch="stepfunctions", state_machine_arn=self.workflow.state_machine.state_machine_arn
            )
        # With worker_cold_start, the alias's qualified name (<function>:live).
        return Settings.variables(dispatch="lambda", worker_function_name=self.invoked.function_name)

    def grant_dispatch(self, submit: PythonFunction) -> None:
        """Let the submit function hand jobs over, and nothing more."""
        if self.jobs_queue is not None:
            self.jobs_queue.grant_send_messages(submit.function)
        elif self.workflow is not None:
            self.workflow.state_machine.grant_start_execution(submit.function)
        else:
            self.invoked.grant_invoke(submit.function)
            submit.acknowledge_invoke_wildcard(self.function)

    def _worker_function(
        self, config: AppConfig, environment: dict[str, str], handler: str, description: str
    ) -> PythonFunction:
        return PythonFunction(
            self,
            "Worker",
            config=config,
            handler=handler,
            description=description,
            environment=environment,
            timeout=Duration.seconds(config.worker_timeout_seconds),
            memory_size=config.worker_memory_mb,
            reserved_concurrency=config.worker_reserved_concurrency,
            cold_start=config.worker_cold_start,
            provisioned_concurrency=config.worker_provisioned_concurrency,
            network=self._network,
        )

    def _async_worker(self, config: AppConfig, store: JobStore, environment: dict[str, str]) -> None:
        """``dispatch=lambda``: asynchronous invocations, Lambda's retries, an on-failure recorder."""
        self.recorder = PythonFunction(
            self,
            "OnFailure",
            config=config,
            handler="jobs.handlers.on_failure.handler",
            description="Records jobs whose worker events failed for good, then dead-letters the events",
            environment={**environment, **Settings.variables(dead_letter_queue_url=self.dead_letter_queue.queue_url)},
            timeout=Duration.seconds(30),
            memory_size=256,
        ).function
        self.recorder.configure_async_invoke(
            retry_attempts=2,
            max_event_age=Duration.hours(6),
            on_failure=destinations.SqsDestination(self.dead_letter_queue),
        )
        self.dead_letter_queue.grant_send_messages(self.recorder)
        store.grant_jobs(self.recorder, "dynamodb:UpdateItem")

        worker = self._worker_function(
            config, environment, "jobs.handlers.worker.handler", "Runs one long-running job per asynchronous invocation"
        )
        self.function = worker.function
        self.invoked = worker.invoked
        # On what the submit function invokes: Lambda applies an alias's own event-invoke
        # config to its invocations, not the function's (Lambda API Reference,
        # PutFunctionEventInvokeConfig, Qualifier).
        self.invoked.configure_async_invoke(
            retry_attempts=config.worker_retry_attempts,
            max_event_age=Duration.seconds(config.worker_max_event_age_seconds),
            on_failure=destinations.LambdaDestination(self.recorder, response_only=False),
        )
        worker.acknowledge_invoke_wildcard(self.recorder)  # the destination invokes the recorder

    def _queue_worker(self, config: AppConfig, store: JobStore, environment: dict[str, str]) -> None:
        """``dispatch=sqs``: the jobs queue, consumed through an event source mapping.

        Visibility timeout six times the function timeout (AWS's guidance for SQS event
        sources, so a message is not redelivered while a retried batch may still run);
        redrive to the dead-letter queue after ``max_attempts`` receives; messages kept long
        enough for every attempt (``AppConfig.queue_retention_seconds``)."""
        self.jobs_queue = sqs.Queue(
            self,
            "JobsQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(config.queue_visibility_timeout_seconds),
            retention_period=Duration.seconds(config.queue_retention_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letter_queue, max_receive_count=config.max_attempts),
            removal_policy=config.removal,
        )
        worker = self._worker_function(
            config,
            environment,
            "jobs.handlers.queue_worker.handler",
            "Runs the long-running jobs of the queue messages it receives",
        )
        self.function, self.invoked = worker.function, worker.invoked
        self.invoked.add_event_source(
            event_sources.SqsEventSource(
                self.jobs_queue,
                batch_size=config.worker_batch_size,
                max_concurrency=config.worker_max_concurrency,
                report_batch_item_failures=True,
            )
        )
