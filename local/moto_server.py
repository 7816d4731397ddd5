"""moto's server, with corrections where it is more lenient than AWS or fails silently.

1. Step Functions: how a refused Lambda invoke is named (below).
2. DynamoDB: AWS answers ``ValidationException: ExpressionAttributeNames must not be empty``
   (and the same for ``ExpressionAttributeValues``) to a request that sends an empty map;
   moto checks that on GetItem only, so a request that fails in AWS passed here.
3. Step Functions: an execution whose interpreter thread dies never stays ``RUNNING``
   (``end_executions_whose_interpreter_fails``), and definitions are parsed one at a time.
4. Logging: moto's stderr is the runtime's; the per-request lines and the interpreter's
   report of every ``Fail`` state (already in each execution's history) are left out, so
   what is left there is what went wrong in the emulator itself.

moto runs Task states with the ASL interpreter LocalStack wrote (``execute_state_machine``).
When Lambda refuses an ``Invoke`` itself (a throttle, a service error), AWS Step Functions
names the error ``Lambda.<exception>``, e.g. ``Lambda.TooManyRequestsException`` (Step
Functions Developer Guide, "Handle Lambda service exceptions"), and that is what the
workflow's ``Retry`` matches. moto's interpreter names every such error ``Exception``, so
a throttled step would fail the job instead of being retried. This module renames them as
AWS does before starting moto's own ``main``; errors the function itself raised keep their
``errorType`` as before. The handler tests apply correction 2 to their in-process moto too.

    python -m local.moto_server -H 127.0.0.1 -p 5000
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError


def name_lambda_service_errors_as_aws_does() -> None:
    from moto.stepfunctions.parser.api import HistoryEventType, LambdaFunctionFailedEventDetails  # noqa: PLC0415
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (  # noqa: PLC0415
        CustomErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent  # noqa: PLC0415
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import (  # noqa: PLC0415
        StateTaskLambda,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails  # noqa: PLC0415

    original = StateTaskLambda._from_error

    def from_error(self: Any, env: Any, ex: Exception) -> Any:
        if not isinstance(ex, ClientError):
            return original(self, env, ex)
        error = f"Lambda.{ex.response.get('Error', {}).get('Code', 'Unknown')}"
        cause = str(ex.response.get("Error", {}).get("Message", ""))
        return FailureEvent(
            env=env,
            error_name=CustomErrorName(error),
            event_type=HistoryEventType.LambdaFunctionFailed,
            event_details=EventDetails(  # type: ignore[typeddict-item]  # moto builds it so too
                lambdaFunctionFailedEventDetails=LambdaFunctionFailedEventDetails(error=error, cause=cause)
            ),
        )

    StateTaskLambda._from_error = from_error  # type: ignore[method-assign]


EXPRESSION_MAPS = ("ExpressionAttributeNames", "ExpressionAttributeValues")
DYNAMODB_EXPRESSION_ACTIONS = ("put_item", "update_item", "delete_item", "query", "scan")


def reject_empty_expression_maps_as_dynamodb_does() -> None:
    from moto.dynamodb.exceptions import MockValidationException  # noqa: PLC0415
    from moto.dynamodb.responses import DynamoHandler  # noqa: PLC0415

    def checked(action: Any) -> Any:
        def run(self: Any) -> Any:
            for name in EXPRESSION_MAPS:
                if self.body.get(name) == {}:
                    raise MockValidationException(f"{name} must not be empty")
            return action(self)

        run.checks_empty_maps = True  # type: ignore[attr-defined]
        return run

    for action in DYNAMODB_EXPRESSION_ACTIONS:
        original = getattr(DynamoHandler, action)
        if not getattr(original, "checks_empty_maps", False):
            setattr(DynamoHandler, action, checked(original))


LOG = logging.getLogger("local.moto_server")
INTERPRETER_FAILED = "States.Runtime"


def end_executions_whose_interpreter_fails() -> None:
    """moto runs each execution in a thread of its own (``ExecutionWorker._execution_logic``);
    an exception that escapes it ends the thread and, unpatched, leaves the execution
    ``RUNNING`` with whatever history it had, forever, the traceback going only to stderr.
    Here it ends ``FAILED`` with ``States.Runtime`` (AWS's name for an execution its
    interpreter cannot go on with), an ``ExecutionFailed`` event, and the traceback logged.

    moto parses the definition in that thread with ANTLR, whose Python runtime shares each
    grammar's prediction cache between parser instances without a lock (the Java runtime
    guards the same cache with ``synchronized``); parsing under a lock costs nothing, as
    the parse holds the GIL anyway, and rules out a race while many executions start."""
    from moto.stepfunctions.parser.api import (  # noqa: PLC0415
        ExecutionFailedEventDetails,
        ExecutionStatus,
        HistoryEventType,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails  # noqa: PLC0415
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker  # noqa: PLC0415

    if getattr(ExecutionWorker, "ends_failed_executions", False):
        return
    parse_lock = threading.Lock()
    parse = ExecutionWorker._get_evaluation_entrypoint
    run = ExecutionWorker._execution_logic

    def parsed_alone(self: Any) -> Any:
        with parse_lock:
            return parse(self)

    def run_or_fail(self: Any) -> None:
        try:
            run(self)  # type: ignore[no-untyped-call]
        except Exception as error:
            execution = getattr(self._execution_communication, "execution", None)
            LOG.exception("execution %s: the interpreter failed", getattr(execution, "exec_arn", "?"))
            cause = f"the local interpreter failed: {type(error).__name__}: {error}"
            if self.env is not None:
                self.env.event_manager.add_event(
                    context=self.env.event_history_context,
                    event_type=HistoryEventType.ExecutionFailed,
                    event_details=EventDetails(  # type: ignore[typeddict-item]  # moto builds it so too
                        executionFailedEventDetails=ExecutionFailedEventDetails(error=INTERPRETER_FAILED, cause=cause)
                    ),
                )
            if execution is not None:
                execution.error, execution.cause = INTERPRETER_FAILED, cause
                execution.stop_date = datetime.now(tz=UTC)
                execution.exec_status = ExecutionStatus.FAILED

    ExecutionWorker._get_evaluation_entrypoint = parsed_alone  # type: ignore[method-assign]
    ExecutionWorker._execution_logic = run_or_fail  # type: ignore[method-assign]
    ExecutionWorker.ends_failed_executions = True  # type: ignore[attr-defined]


class NotAFailState(logging.Filter):
    """Drops the interpreter's ERROR line for each state that failed as its definition says
    (``Exception=FailureEventException``): the execution's history holds it already."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Exception=FailureEventException")


def keep_stderr_for_what_went_wrong() -> None:
    logging.basicConfig(level=logging.WARNING, format="moto: %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    logging.getLogger("moto.stepfunctions.parser.asl.component.eval_component").addFilter(NotAFailState())


if __name__ == "__main__":
    from moto.server import main

    keep_stderr_for_what_went_wrong()
    name_lambda_service_errors_as_aws_does()
    reject_empty_expression_maps_as_dynamodb_does()
    end_executions_whose_interpreter_fails()
    main()
