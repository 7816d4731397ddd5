"""Test-wide environment: fake AWS credentials and the functions' settings.

Set before any handler or boto3 client is imported, so nothing can reach real AWS: the
handler tests run against moto, the infrastructure tests only synthesize.
"""

from __future__ import annotations

import os

TEST_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_REGION": "eu-west-1",
    "JOBS_TABLE_NAME": "jobs",
    "IDEMPOTENCY_TABLE_NAME": "idempotency",
    "WORKER_FUNCTION_NAME": "worker",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/dead-letters",
    "MAX_ATTEMPTS": "3",
    "RETRY_AFTER_SECONDS": "2",
    "MAX_REQUEST_BYTES": "4096",
    "MAX_RESULT_BYTES": "2048",
    "PROGRESS_MIN_INTERVAL_MS": "0",
    "TIMEOUT_MARGIN_SECONDS": "1",
    "POWERTOOLS_SERVICE_NAME": "async-jobs",
    "POWERTOOLS_METRICS_NAMESPACE": "AsyncJobs",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "1",
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
}
for name in [n for n in os.environ if n.startswith("AWS_") and n not in TEST_ENVIRONMENT]:
    del os.environ[name]  # no profile, endpoint or credential of the developer's leaks in
os.environ.update(TEST_ENVIRONMENT)

import moto  # noqa: E402,F401  (imported before any boto3 client so moto can intercept them)
