"""One Logger, Tracer and Metrics for every function (names come from POWERTOOLS_* env vars)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()
