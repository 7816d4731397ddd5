"""The corrections local/moto_server.py makes to moto."""

from __future__ import annotations

import json
import logging
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

from local.moto_server import (
    INTERPRETER_FAILED,
    NotAFailState,
    end_executions_whose_interpreter_fails,
    name_lambda_service_errors_as_aws_does,
)


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


PASS_MACHINE = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})


@pytest.fixture
def interpreter(monkeypatch: pytest.MonkeyPatch) -> Any:
    """In-process moto with its ASL interpreter on, the worker's methods restored afterwards.
    Returns a function that runs one execution of PASS_MACHINE to its end (or ``wait`` s)."""
    import boto3
    from moto import mock_aws

    for name in ("_get_evaluation_entrypoint", "_execution_logic"):
        monkeypatch.setattr(ExecutionWorker, name, getattr(ExecutionWorker, name))
    monkeypatch.setattr(ExecutionWorker, "ends_failed_executions", False, raising=False)

    def run(wait: float = 10) -> tuple[dict[str, Any], list[str]]:
        with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
            sfn = boto3.client("stepfunctions", region_name="eu-west-1")
            machine = sfn.create_state_machine(
                name="m", definition=PASS_MACHINE, roleArn="arn:aws:iam::123456789012:role/r"
            )["stateMachineArn"]
            arn = sfn.start_execution(stateMachineArn=machine, name="job")["executionArn"]
            deadline = time.monotonic() + wait
            while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            history: list[str] = [event["type"] for event in sfn.get_execution_history(executionArn=arn)["events"]]
            return dict(described), history

    return run


def test_an_execution_runs_to_its_end_with_the_correction(interpreter: Any):
    end_executions_whose_interpreter_fails()
    described, history = interpreter()
    assert described["status"] == "SUCCEEDED"
    assert history[0] == "ExecutionStarted" and history[-1] == "ExecutionSucceeded"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # moto as it is
@pytest.mark.parametrize("where", ["parse", "evaluation"])
def test_an_execution_whose_interpreter_fails_ends_failed_not_running(
    interpreter: Any, monkeypatch: pytest.MonkeyPatch, where: str
):
    from moto.stepfunctions.parser.asl.component.program.program import Program

    parse = AmazonStateLanguageParser.parse

    def broken(*args: Any, **kwargs: Any) -> Any:
        if where == "parse" and threading.current_thread() is threading.main_thread():
            return parse(*args, **kwargs)  # CreateStateMachine validates the definition
        raise RuntimeError("interpreter bug")

    if where == "parse":
        monkeypatch.setattr(AmazonStateLanguageParser, "parse", broken)
    else:
        monkeypatch.setattr(Program, "eval", broken)
    described, _ = interpreter(wait=1)
    assert described["status"] == "RUNNING"  # moto as it is: the thread died, the execution never ends

    end_executions_whose_interpreter_fails()
    described, history = interpreter()
    assert described["status"] == "FAILED"
    assert described["error"] == INTERPRETER_FAILED
    assert "RuntimeError: interpreter bug" in described["cause"]
    # Parsing comes before the history starts; a failure later ends the history it began.
    assert history == ([] if where == "parse" else ["ExecutionStarted", "ExecutionFailed"])


def test_definitions_are_parsed_one_at_a_time(monkeypatch: pytest.MonkeyPatch):
    # ANTLR's Python runtime shares a grammar's prediction cache between parsers, unlocked.
    for name in ("_get_evaluation_entrypoint", "_execution_logic"):
        monkeypatch.setattr(ExecutionWorker, name, getattr(ExecutionWorker, name))
    monkeypatch.setattr(ExecutionWorker, "ends_failed_executions", False, raising=False)
    inside, most = [0], [0]
    guard = threading.Lock()

    def parse(_definition: str) -> Any:
        with guard:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.02)
        with guard:
            inside[0] -= 1
        return [None]

    monkeypatch.setattr(AmazonStateLanguageParser, "parse", parse)
    details = SimpleNamespace(state_machine_details=SimpleNamespace(definition="{}"))
    worker = SimpleNamespace(_evaluation_details=details)

    def parse_in_threads() -> int:
        most[0] = 0
        threads = [
            threading.Thread(target=ExecutionWorker._get_evaluation_entrypoint, args=(worker,)) for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return most[0]

    assert parse_in_threads() > 1  # unpatched, the threads parse at once
    end_executions_whose_interpreter_fails()
    assert parse_in_threads() == 1


def test_only_the_failures_of_fail_states_are_left_out_of_the_log():
    def record(message: str, *args: Any) -> logging.LogRecord:
        return logging.LogRecord("eval_component", logging.ERROR, __file__, 1, message, args, None)

    keep = NotAFailState()
    assert not keep.filter(record("%s at '%s'", "Exception=FailureEventException, Error=JobFailed", "StateFail"))
    assert keep.filter(record("%s at '%s'", "Exception=KeyError, Details=['x']", "StateTask"))
