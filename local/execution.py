"""One job's Step Functions execution, locally: its status and a summary of its history.

``dispatch=stepfunctions`` starts one execution per job, named after the job. ``make run``
prints this command with its endpoint and state machine filled in:

    python -m local.execution --endpoint http://127.0.0.1:PORT --state-machine ARN JOB_ID

(In AWS, the console's execution page, or ``aws stepfunctions get-execution-history``.)
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import boto3

from local.server import LOCAL_CREDENTIALS
from local.template import REGION

# What each kind of event says, beside its type: the state, or the error and its cause.
DETAIL_KEYS = {
    "stateEnteredEventDetails": ("name",),
    "stateExitedEventDetails": ("name",),
    "lambdaFunctionFailedEventDetails": ("error", "cause"),
    "lambdaFunctionTimedOutEventDetails": ("error", "cause"),
    "executionFailedEventDetails": ("error", "cause"),
}


def execution_arn(state_machine_arn: str, job_id: str) -> str:
    return state_machine_arn.replace(":stateMachine:", ":execution:") + f":{job_id}"


def summary(execution: Any, events: Any) -> list[str]:
    """The execution's status line (DescribeExecution), then one line per history event."""
    lines = [
        f"{execution['name']}: {execution['status']}" + (f" ({execution['error']})" if "error" in execution else "")
    ]
    started = events[0]["timestamp"] if events else None
    for event in events:
        offset = (event["timestamp"] - started).total_seconds() if started else 0.0
        details = [
            str(event[key][field])[:160]
            for key, fields in DETAIL_KEYS.items()
            if key in event
            for field in fields
            if field in event[key]
        ]
        lines.append(f"  +{offset:7.2f} s  {event['type']:<28} {' '.join(details)}".rstrip())
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.execution", description=__doc__)
    parser.add_argument("--endpoint", required=True, help="the local runtime's AWS endpoint (make run prints it)")
    parser.add_argument("--state-machine", required=True, help="the job workflow's ARN (make run prints it)")
    parser.add_argument("--json", action="store_true", help="print DescribeExecution and the history as JSON")
    parser.add_argument("job_id")
    args = parser.parse_args(argv)
    client = boto3.client(
        "stepfunctions",
        endpoint_url=args.endpoint,
        region_name=REGION,
        aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],  # the local runtime checks no signature
        aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    arn = execution_arn(args.state_machine, args.job_id)
    try:
        execution = client.describe_execution(executionArn=arn)
    except client.exceptions.ExecutionDoesNotExist:
        print(f"error: no execution for job {args.job_id}", file=sys.stderr)
        return 1
    events = client.get_execution_history(executionArn=arn)["events"]
    if args.json:
        print(json.dumps({"execution": execution, "events": events}, default=str, indent=2))
    else:
        print("\n".join(summary(execution, events)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
