"""Handlers of the test-only app: each breaks one rule of the proxy integration, or reports what it saw."""

import json
import time


def slow(event, context):
    time.sleep(3)  # longer than the 1 s integration timeout
    return {"statusCode": 200, "body": "too late"}


def malformed(event, context):
    return "not a proxy response"


def crash(event, context):
    raise RuntimeError("boom")


def echo(event, context):
    seen = {
        "event": event,
        "context": {
            "aws_request_id": context.aws_request_id,
            "function_name": context.function_name,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "remaining_ms": context.get_remaining_time_in_millis(),
        },
    }
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(seen)}
