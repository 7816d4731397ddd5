"""``dispatch=stepfunctions``: a Standard state machine runs each job as steps.

    Prepare ─► ready? ─► Process ─► processed? ─► Finalise ─► Done
       │          ├► NotRun │           ├► Stopped    │
       │          └► Failed │           └► Failed     │
       └────────────────────┴─────────────────────────┴─► <step>Failed ─► RecordFailure ─► Failed

Each step is a Lambda function (``jobs.handlers.steps``) with its own timeout. A task
that fails is recorded by its step, which answers FAILED (→ Failed). Process, the long
one, is retried on ``TransientTaskError`` and ``TimedOut`` with backoff
(``worker_retry_attempts``); every step is retried on Lambda's own service errors. Any
other error is caught, the failing step's name attached, and RecordFailure marks the job
FAILED with that step's error. Built with CDK's Step Functions constructs: the definition
is generated, never hand-written JSON.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, Fn, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from stacks.config import THROTTLE_MAX_DELAY_SECONDS, THROTTLE_RETRY_ATTEMPTS, AppConfig
from stacks.job_store import JobStore
from stacks.network import JobNetwork
from stacks.python_function import PythonFunction, acknowledge, acknowledge_invoke_wildcard, log_group

# Seconds a short step (prepare, finalise, record the failure) may run.
SHORT_STEP_SECONDS = 30
# Retried on every step: Lambda's own transient errors (the CDK default list, made explicit),
# and, with worker_cold_start=snapstart, a version Lambda is still (re)initialising: one not
# invoked for 14 days goes inactive and answers SnapStartNotReadyException until it is
# active again (Lambda Developer Guide, "Troubleshooting SnapStart errors").
LAMBDA_SERVICE_ERRORS = [
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.SnapStartNotReadyException",
    "Lambda.SnapStartTimeoutException",
]
# A throttled Invoke (the function at its reserved or the account's concurrency) means "not
# yet", not "failed": a burst of executions waits its turn for minutes, with a capped
# backoff (stacks/config.py: THROTTLE_*), instead of failing jobs after six quick retries.
THROTTLED = ["Lambda.TooManyRequestsException"]
# Retried on Process: what the other dispatchers retry too. Lambda reports a raised
# exception as its class name (errorType): jobs.registry.TransientTaskError and
# jobs.steps.TimedOut; States.Timeout is the task state's own timeout. A process that dies
# (killed, out of memory) or outlives the function's timeout answers Runtime.ExitError,
# Runtime.OutOfMemory or Sandbox.Timedout (Lambda Developer Guide, "Troubleshoot invocation
# issues"), names Step Functions passes on; an answer without an error type is reported
# Lambda.Unknown ("Handle Lambda service exceptions"). So a crashed attempt is retried as
# Lambda's asynchronous retries would retry the worker.
RETRYABLE_TASK_ERRORS = [
    "TransientTaskError",
    "TimedOut",
    "States.Timeout",
    "Runtime.ExitError",
    "Runtime.OutOfMemory",
    "Sandbox.Timedout",
    "Lambda.Unknown",
]
PROCESS_RETRY_INTERVAL_SECONDS = 5


def vended_log_group_name(scope: Construct) -> str:
    """A name under ``/aws/vendedlogs/``: for log groups named so, Step Functions' log delivery
    needs no entry in the account's CloudWatch Logs resource policy, which is capped at 5,120
    characters and would otherwise grow with every state machine (Step Functions Developer
    Guide, "Logging using CloudWatch Logs"; CloudWatch Logs User Guide, "Enabling logging
    from AWS services"). The stack id's UUID makes it unique per stack instance, so a
    retained group never blocks deploying the stack again after ``cdk destroy``."""
    stack_uuid = Fn.select(2, Fn.split("/", Aws.STACK_ID))
    return f"/aws/vendedlogs/states/{Stack.of(scope).stack_name}-jobs-{stack_uuid}"


class JobWorkflow(Construct):
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
        super().__init__(scope, construct_id)
        self._config, self._store, self._environment = config, store, environment
        self._network = network  # the process step's, which runs the task
        self._build_step_functions()
        self._build_state_machine(self._build_definition())

    def _build_step_functions(self) -> None:
        """One function per step; the process step is the worker and takes its settings."""
        config = self._config
        self.prepare = self._step_function(
            "Prepare", "prepare", "Workflow step: claims the job", SHORT_STEP_SECONDS, 256
        ).function
        process_function = self._step_function(
            "Process",
            "process",
            "Workflow step: runs the job's task",
            config.worker_timeout_seconds,
            config.worker_memory_mb,
            # The step that runs the task is the worker: the same cap protects what it calls
            # (a throttled invoke is retried as Lambda.TooManyRequestsException).
            reserved=config.worker_reserved_concurrency,
            # The step that runs the task is the worker: worker_cold_start is its choice too.
            cold_start=config.worker_cold_start,
            provisioned=config.worker_provisioned_concurrency,
            network=self._network,
        )
        self.process, self.process_invoked = process_function.function, process_function.invoked
        self._store.grant_results(self.process, "s3:PutObject")
        self.finalise = self._step_function(
            "Finalise", "finalise", "Workflow step: records the result", SHORT_STEP_SECONDS, 256
        ).function
        self.record_failure = self._step_function(
            "RecordFailure",
            "record_failure",
            "Workflow step: records the failing step's error",
            SHORT_STEP_SECONDS,
            256,
        ).function

    def _step_function(
        self,
        name: str,
        handler: str,
        description: str,
        timeout: int,
        memory: int,
        reserved: int | None = None,
        cold_start: str = "none",
        provisioned: int = 0,
        network: JobNetwork | None = None,
    ) -> PythonFunction:
        function = PythonFunction(
            self,
            f"{name}Step",
            config=self._config,
            handler=f"jobs.handlers.steps.{handler}",
            description=description,
            environment=self._environment,
            timeout=Duration.seconds(timeout),
            memory_size=memory,
            reserved_concurrency=reserved,
            cold_start=cold_start,
            provisioned_concurrency=provisioned,
            network=network,
        )
        self._store.grant_jobs(function.function, "dynamodb:GetItem", "dynamodb:UpdateItem")
        return function

    def _invoke(self, name: str, function: lambda_.IFunction, timeout: int, **payload: str) -> tasks.LambdaInvoke:
        """A Task state invoking ``function`` with the job id, the execution's name and
        ``payload`` (state paths), retrying Lambda's own errors and throttles explicitly."""
        step = tasks.LambdaInvoke(
            self,
            name,
            lambda_function=function,
            payload=sfn.TaskInput.from_object(
                {
                    "job_id": sfn.JsonPath.string_at("$.job_id"),
                    "execution": sfn.JsonPath.string_at("$$.Execution.Name"),
                    **{key: sfn.JsonPath.string_at(path) for key, path in payload.items()},
                }
            ),
            payload_response_only=True,
            result_path=f"$.{name.lower()}",
            task_timeout=sfn.Timeout.duration(Duration.seconds(timeout + 30)),
            retry_on_service_exceptions=False,  # declared below, explicitly
        )
        step.add_retry(
            errors=LAMBDA_SERVICE_ERRORS,
            interval=Duration.seconds(2),
            max_attempts=6,
            backoff_rate=2,
            jitter_strategy=sfn.JitterType.FULL,
        )
        step.add_retry(
            errors=THROTTLED,
            interval=Duration.seconds(2),
            max_attempts=THROTTLE_RETRY_ATTEMPTS,
            backoff_rate=2,
            max_delay=Duration.seconds(THROTTLE_MAX_DELAY_SECONDS),
            jitter_strategy=sfn.JitterType.FULL,
        )
        return step

    def _build_definition(self) -> sfn.IChainable:
        """Prepare → Process → Finalise; a step's error is recorded by RecordFailure."""
        config = self._config
        record = self._invoke(
            "RecordFailure", self.record_failure, SHORT_STEP_SECONDS, step="$.step", failure="$.failure"
        )
        record.add_retry(errors=["States.ALL"], interval=Duration.seconds(5), max_attempts=3, backoff_rate=2)
        job_failed = sfn.Fail(self, "Failed", error="JobFailed", cause="the job failed; its error is on the job")
        failed = record.next(job_failed)

        def on_error(step: tasks.LambdaInvoke, name: str) -> None:
            mark = sfn.Pass(self, f"{name}Failed", result=sfn.Result.from_string(name.lower()), result_path="$.step")
            step.add_catch(mark.next(failed), errors=["States.ALL"], result_path="$.failure")

        prepare = self._invoke("Prepare", self.prepare, SHORT_STEP_SECONDS, correlation_id="$.correlation_id")
        process = self._invoke("Process", self.process_invoked, config.worker_timeout_seconds)
        process.add_retry(
            errors=RETRYABLE_TASK_ERRORS,
            interval=Duration.seconds(PROCESS_RETRY_INTERVAL_SECONDS),
            max_attempts=config.worker_retry_attempts,
            backoff_rate=2,
            jitter_strategy=sfn.JitterType.FULL,
        )
        finalise = self._invoke("Finalise", self.finalise, SHORT_STEP_SECONDS, result="$.process.result")
        for step, name in ((prepare, "Prepare"), (process, "Process"), (finalise, "Finalise")):
            on_error(step, name)

        return prepare.next(
            sfn.Choice(self, "Ready?")
            .when(sfn.Condition.string_equals("$.prepare.outcome", "FAILED"), job_failed)
            .when(
                sfn.Condition.string_equals("$.prepare.outcome", "READY"),
                process.next(
                    sfn.Choice(self, "Processed?")
                    .when(sfn.Condition.string_equals("$.process.outcome", "FAILED"), job_failed)
                    .when(
                        sfn.Condition.string_equals("$.process.outcome", "PROCESSED"),
                        finalise.next(sfn.Succeed(self, "Done")),
                    )
                    .otherwise(sfn.Succeed(self, "Stopped", comment="cancelled, or no longer this execution's"))
                ),
            )
            .otherwise(sfn.Succeed(self, "NotRun", comment="finished, cancelled or owned elsewhere already"))
        )

    def _build_state_machine(self, definition: sfn.IChainable) -> None:
        config = self._config
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            timeout=Duration.seconds(config.workflow_timeout_seconds),
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=log_group(self, "Logs", config, name=vended_log_group_name(self)),
                level=sfn.LogLevel.ALL,
                include_execution_data=False,  # job inputs and results stay out of the logs
            ),
            removal_policy=config.removal,
        )
        for function in (self.prepare, self.process, self.finalise, self.record_failure):
            acknowledge_invoke_wildcard(self.state_machine, function)
        acknowledge(
            self.state_machine,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray and CloudWatch Logs delivery actions of Step Functions support no resource-level permissions.",
        )
