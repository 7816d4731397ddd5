"""No secret and no stack trace in any answer, nor in any log line at INFO or below.

Every handler runs at INFO with a request that carries a SigV4 signature and a session
token; the captured log lines are JSON (Powertools) and are read one by one.
"""

import json

import pytest

from jobs import registry
from jobs.handlers import cancel, on_failure, reaper, status
from tests.events import LambdaContext, cancel_event, list_event, status_event, submit_event
from tests.handlers.test_on_failure import invocation_record
from tests.handlers.test_worker import run_worker

pytestmark = pytest.mark.usefixtures("aws")

SIGNATURE = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLESESSIONTOKENxyz"
SECRETS = (SIGNATURE, SESSION_TOKEN, "AWS_SECRET_ACCESS_KEY", "testing")  # "testing": the test env's secret key
SIGNED = {
    "Authorization": f"AWS4-HMAC-SHA256 Credential=AKIA/20261124/eu-west-1/execute-api/aws4_request, "
    f"SignedHeaders=host;x-amz-date, Signature={SIGNATURE}",
    "X-Amz-Security-Token": SESSION_TOKEN,
}


def test_a_whole_life_cycle_logs_no_secret_and_no_trace_at_info(info_logs, monkeypatch):
    from jobs.handlers import submit

    def buggy(task_input, progress):
        raise KeyError("missing")  # an unexpected error inside a task

    monkeypatch.setitem(registry.REGISTRY, "fail", registry.TaskDefinition("fail", buggy, {"type": "object"}, ""))
    answers = []
    for task in ("sleep", "fail"):
        event = submit_event({"task": task, "input": {"seconds": 0}}, headers=SIGNED)
        answers.append(submit.handler(event, LambdaContext(function_name="submit")))
    ok, broken = (json.loads(a["body"])["job_id"] for a in answers)
    run_worker(ok)
    run_worker(broken)
    for event in (status_event(ok, headers=SIGNED), list_event(headers=SIGNED), status_event(broken, headers=SIGNED)):
        answers.append(status.handler(event, LambdaContext(function_name="status")))
    answers.append(cancel.handler(cancel_event(ok, headers=SIGNED), LambdaContext(function_name="cancel")))
    on_failure.handler(invocation_record(ok), LambdaContext(function_name="on-failure"))
    reaper.handler({"source": "aws.events"}, LambdaContext(function_name="reaper"))

    for answer in answers:
        for secret in SECRETS:
            assert secret not in answer["body"]
        assert "Traceback" not in answer["body"]
    assert json.loads(answers[4]["body"])["error"] == {"type": "KeyError", "message": "'missing'"}

    lines = [line for line in info_logs.getvalue().splitlines() if line.startswith("{")]
    logged = [json.loads(line) for line in lines]
    assert any(entry.get("level") == "INFO" for entry in logged)  # INFO was really on
    for line, entry in zip(lines, logged, strict=True):
        for secret in SECRETS:
            assert secret not in line, f"secret in a log line: {line[:200]}"
        if entry.get("level") in ("DEBUG", "INFO"):
            assert "Traceback" not in line and "exception" not in entry, line[:200]
