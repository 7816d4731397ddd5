"""One Logger and one Metrics for every function (names come from POWERTOOLS_* env vars).

No tracing SDK: Lambda's active tracing records each invocation in X-Ray by itself, and
botocore passes the trace on to every AWS call made inside Lambda (see ``jobs.clients``).
Logs carry the trace id (``xray_trace_id``, from ``_X_AMZN_TRACE_ID``), so a job's log
lines and its trace find each other. The X-Ray SDK that Powertools' Tracer wraps costs
about 100 ms of every cold start and is in maintenance mode (AWS, February 2026).
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics()
