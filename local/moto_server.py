"""moto's server, with two corrections where it is more lenient than AWS.

1. Step Functions: how a refused Lambda invoke is named (below).
2. DynamoDB: AWS answers ``ValidationException: ExpressionAttributeNames must not be empty``
   (and the same for ``ExpressionAttributeValues``) to a request that sends an empty map;
   moto checks that on GetItem only, so a request that fails in AWS passed here.

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


if __name__ == "__main__":
    from moto.server import main

    name_lambda_service_errors_as_aws_does()
    reject_empty_expression_maps_as_dynamodb_does()
    main()
