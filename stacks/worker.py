"""The worker: the function that runs jobs, its retries, and where failed events end up.

Four transports (``dispatch``): asynchronous Lambda invocations (``lambda``, the
default), an SQS queue with an event source mapping (``sqs``), a Step Functions
workflow of steps (``stepfunctions``, ``stacks/workflow.py``), or one Lambda durable
execution per job (``durable``). The job logic is the same.

Failure path: the worker's event-invoke config retries an attempt that raised, crashed or
timed out; once retries are used up (or the event is older than the maximum age) Lambda
invokes the on-failure recorder, which marks the job FAILED and puts the record in an
encrypted, TLS-only dead-letter queue. The recorder's own failures go to the same queue.
"""

from __future__ import annotations

import hashlib

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from jobs.settings import Settings
from stacks.config import AppConfig
from stacks.job_store import JobStore
from stacks.layers import LAYERS_DIR, python_layer
from stacks.network import JobNetwork
from stacks.python_function import PythonFunction, acknowledge, logical_id
from stacks.workflow import JobWorkflow

DURABLE_SDK_REQUIREMENTS = LAYERS_DIR / "durable" / "requirements.txt"
# The statuses of a job's durable execution that leave the job unfinished unless the worker
# recorded it (Lambda Developer Guide, "Monitoring durable functions": the EventBridge
# event "Durable Execution Status Change" from aws.lambda, for every status).
DURABLE_FAILURE_STATUSES = ["FAILED", "TIMED_OUT", "STOPPED"]
DURABLE_WORKER_SUFFIX = "DurableWorker"
MAX_FUNCTION_NAME = 64  # Lambda API Reference, CreateFunction: FunctionName


def durable_worker_name(stack_name: str) -> str:
    """The durable worker's function name: the stack's, so unique per account and region, and
    known before the function exists (``JobNetwork.reach_lambda``'s endpoint policy names its
    executions, and with ``vpc=existing`` the function refers to that endpoint in turn).
    Lambda takes 64 characters at most; a longer stack name is shortened, with a hash of it."""
    name = f"{stack_name}-{DURABLE_WORKER_SUFFIX}"
    if len(name) <= MAX_FUNCTION_NAME:
        return name
    digest = hashlib.sha256(stack_name.encode()).hexdigest()[:8]
    keep = MAX_FUNCTION_NAME - len(DURABLE_WORKER_SUFFIX) - len(digest) - 2
    return f"{stack_name[:keep]}-{digest}-{DURABLE_WORKER_SUFFIX}"


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

        self.durable_function_name: str | None = None  # set with dispatch=durable
        self.sdk_layers: tuple[lambda_.ILayerVersion, ...] = ()
        self.jobs_queue: sqs.Queue | None = None
        self.recorder: lambda_.IFunction | None = None
        self.workflow: JobWorkflow | None = None
        if config.dispatch == "sqs":
            self._queue_worker(config, store, environment)
        elif config.dispatch == "durable":
            self._durable_worker(config, store, environment)
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

    @property
    def durable(self) -> bool:
        """``dispatch=durable``: the worker is a durable function."""
        return self.durable_function_name is not None

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
        # With worker_cold_start (always with durable), the alias's qualified name (<function>:live).
        return Settings.variables(
            dispatch="durable" if self.durable else "lambda", worker_function_name=self.invoked.function_name
        )

    def cancel_environment(self) -> dict[str, str]:
        """What the cancel function needs to know (``dispatch=durable``: it stops executions)."""
        return Settings.variables(dispatch="durable") if self.durable else {}

    def grant_cancel(self, cancel: PythonFunction) -> None:
        """``dispatch=durable``: let the cancel function stop the worker's executions, which are
        sub-resources of its versions (``<function>:<version>/durable-execution/...``; Lambda
        Developer Guide, "Fine-tuning the Resources and Conditions sections of policies")."""
        if not self.durable:
            return
        cancel.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["lambda:StopDurableExecution"],
                resources=[f"{self.function.function_arn}:*"],
            )
        )
        acknowledge(
            cancel,
            f"AwsSolutions-IAM5[Resource::<{logical_id(self.function)}.Arn>:*]",
            "A job's durable execution is a sub-resource of the worker's version that started it, "
            "unknown until then: the cancel function may stop executions of this function only.",
        )

    def grant_dispatch(self, submit: PythonFunction) -> None:
        """Let the submit function hand jobs over, and nothing more."""
        if self.jobs_queue is not None:
            self.jobs_queue.grant_send_messages(submit.function)
        elif self.workflow is not None:
            self.workflow.state_machine.grant_start_execution(submit.function)
        else:
            self.invoked.grant_invoke(submit.function)
            if self.invoked is self.function:  # an alias's grant names the alias alone
                submit.acknowledge_invoke_wildcard(self.function)

    def _worker_function(
        self,
        config: AppConfig,
        environment: dict[str, str],
        handler: str,
        description: str,
        durable: lambda_.DurableConfig | None = None,
        layers: tuple[lambda_.ILayerVersion, ...] = (),
        construct_id: str = "Worker",
        function_name: str | None = None,
    ) -> PythonFunction:
        return PythonFunction(
            self,
            construct_id,
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
            durable=durable,
            layers=layers,
            function_name=function_name,
        )

    def _on_failure_recorder(self, config: AppConfig, store: JobStore, environment: dict[str, str]) -> None:
        """The function that records the jobs a worker never finished, then dead-letters the event."""
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

    def _async_worker(self, config: AppConfig, store: JobStore, environment: dict[str, str]) -> None:
        """``dispatch=lambda``: asynchronous invocations, Lambda's retries, an on-failure recorder."""
        self._on_failure_recorder(config, store, environment)
        assert self.recorder is not None
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

    def _durable_worker(self, config: AppConfig, store: JobStore, environment: dict[str, str]) -> None:
        """``dispatch=durable``: one durable execution per job, started by an asynchronous invoke
        of the ``live`` alias; its failures recorded from Lambda's status-change events.

        Lambda neither retries a durable execution that failed, timed out or was stopped, nor
        sends it to an on-failure destination (Lambda Developer Guide, "Retries for Lambda
        durable functions", "Invoking durable Lambda functions"): an EventBridge rule hands
        those statuses of this function's executions to the on-failure recorder instead,
        retrying and dead-lettering what the recorder cannot take. CDK gives the function's
        role AWS's AWSLambdaBasicDurableExecutionRolePolicy (logs, and the checkpoint calls
        the SDK makes)."""
        self.durable_function_name = durable_worker_name(Stack.of(self).stack_name)
        self._on_failure_recorder(config, store, environment)
        assert self.recorder is not None
        sdk = python_layer(
            self, "DurableSdk", DURABLE_SDK_REQUIREMENTS, "The AWS durable execution SDK and its boto3 (pure Python)"
        )
        # The submit and cancel functions call the durable-execution APIs too (the invoke's
        # DurableExecutionName, StopDurableExecution): the same boto3, not the runtime's,
        # whose version depends on runtime and Region (Lambda Developer Guide, "Supported
        # runtimes for durable functions").
        self.sdk_layers = (sdk,)
        worker = self._worker_function(
            config,
            environment,
            "jobs.handlers.durable_worker.handler",
            "Runs one long-running job per durable execution, in checkpointed steps",
            durable=lambda_.DurableConfig(
                execution_timeout=Duration.seconds(config.durable_execution_timeout_seconds),
                retention_period=Duration.days(config.durable_retention_days),
            ),
            layers=(sdk,),
            # Durability is set only when a function is created (Lambda Developer Guide,
            # "Configure Lambda durable functions"): a function of its own, so that switching
            # dispatch replaces the worker instead of updating it in place.
            construct_id="DurableWorker",
            function_name=self.durable_function_name,
        )
        self.function, self.invoked = worker.function, worker.invoked
        rule = events.Rule(
            self,
            "UnfinishedExecutions",
            description="A job's durable execution failed, timed out or was stopped: record the job",
            event_pattern=events.EventPattern(
                source=["aws.lambda"],
                detail_type=["Durable Execution Status Change"],
                detail={
                    "status": DURABLE_FAILURE_STATUSES,
                    # <function>:<version>/durable-execution/<name>/<id>: always version-qualified
                    # (Lambda API Reference, the DurableExecutionArn pattern), so this function's only.
                    "durableExecutionArn": [{"prefix": f"{self.function.function_arn}:"}],
                },
            ),
        )
        rule.add_target(
            targets.LambdaFunction(
                self.recorder,
                dead_letter_queue=self.dead_letter_queue,
                retry_attempts=8,
                max_event_age=Duration.hours(24),
            )
        )
        acknowledge(
            worker,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaBasicDurableExecutionRolePolicy]",
            "AWS's own policy for durable functions: the logs of AWSLambdaBasicExecutionRole plus "
            "lambda:CheckpointDurableExecution and lambda:GetDurableExecutionState, which the SDK calls "
            "with the checkpoint token of an execution this function is running (Lambda Developer Guide, "
            "'Security and permissions for Lambda durable functions').",
        )

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
