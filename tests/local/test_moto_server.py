"""The one correction local/moto_server.py makes to moto's Step Functions interpreter."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda

from local.moto_server import name_lambda_service_errors_as_aws_does


def failure_of(error: Exception) -> tuple[str, str]:
    """(error name the definition's Retry/Catch match, error in the history event)."""
    environment = SimpleNamespace(next_state_name="Process", event_history_context=SimpleNamespace(source_event_id=1))
    event: Any = StateTaskLambda._from_error(object.__new__(StateTaskLambda), environment, error)  # type: ignore[arg-type]
    return event.error_name.error_name, event.event_details["lambdaFunctionFailedEventDetails"]["error"]


def test_a_refused_invoke_is_named_as_step_functions_names_it(monkeypatch: pytest.MonkeyPatch):
    # AWS: "When Lambda hits the maximum number of invocations, the error is
    # Lambda.TooManyRequestsException" (Step Functions Developer Guide, "Handle Lambda service exceptions").
    monkeypatch.setattr(StateTaskLambda, "_from_error", StateTaskLambda._from_error)  # restored afterwards
    throttled = ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "Rate Exceeded."}}, "Invoke")
    assert failure_of(throttled) == ("Exception", "Exception")  # moto's own name: no AWS Retry matches it
    name_lambda_service_errors_as_aws_does()
    assert failure_of(throttled) == ("Lambda.TooManyRequestsException", "Lambda.TooManyRequestsException")


def test_an_empty_expression_map_is_refused_as_dynamodb_refuses_it():
    # DynamoDB: "ExpressionAttributeNames must not be empty" (ValidationException), on every
    # operation that takes expressions; moto checks GetItem only. tests/conftest.py applies
    # the correction to the in-process moto; the local runtime's server applies it too.
    import boto3
    from moto import mock_aws

    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="eu-west-1")
        dynamodb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        update: dict[str, Any] = {"TableName": "t", "Key": {"k": {"S": "a"}}, "UpdateExpression": "SET v = :v"}
        with pytest.raises(ClientError, match="ExpressionAttributeNames must not be empty"):
            dynamodb.update_item(**update, ExpressionAttributeNames={}, ExpressionAttributeValues={":v": {"N": "1"}})
        dynamodb.update_item(**update, ExpressionAttributeValues={":v": {"N": "1"}})
