"""Runtime configuration of the Lambda functions, read from environment variables once.

The CDK stack (``stacks/config.py``) is the one place where these values are chosen; it
passes them to every function as environment variables. A missing or malformed value
fails the cold start with a clear message instead of failing the first request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobs.naming import AppName

if TYPE_CHECKING:
    from jobs.callbacks import CallbackPolicy


class ConfigurationError(RuntimeError):
    """An environment variable is missing or out of range."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as error:
        raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from error
    if not minimum <= value <= maximum:
        raise ConfigurationError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name) or default
    if value not in choices:
        raise ConfigurationError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").lower()
    if raw == "":
        return default
    if raw not in {"true", "false"}:
        raise ConfigurationError(f"{name} must be true or false, got {raw!r}")
    return raw == "true"


def _app_name(env: Mapping[str, str], name: str) -> AppName:
    try:
        return AppName(_required(env, name))
    except ValueError as error:
        raise ConfigurationError(f"{name}: {error}") from error


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "")
    if not value:
        raise ConfigurationError(f"environment variable {name} is required")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything the handlers need to know about their deployment."""

    app: AppName
    jobs_table_name: str
    idempotency_table_name: str | None
    worker_function_name: str | None
    dispatch: str
    jobs_queue_url: str | None
    state_machine_arn: str | None
    connections_table_name: str | None
    websocket_callback_url: str | None
    websocket_url: str | None
    dead_letter_queue_url: str | None
    job_retention_seconds: int
    max_attempts: int
    retry_after_seconds: int
    max_request_bytes: int
    max_result_bytes: int
    max_inline_result_bytes: int
    results_bucket_name: str | None
    result_url_expiry_seconds: int
    progress_min_interval_seconds: float
    timeout_margin_seconds: int
    idempotency_window_seconds: int
    stuck_after_seconds: int
    callback_secret_arn: str | None
    callback_max_attempts: int
    callback_timeout_seconds: int
    # Deployed stacks never set these two: https and public addresses only. The local
    # runtime, whose only network is loopback, relaxes them.
    callback_require_https: bool
    callback_allow_private_networks: bool

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            app=_app_name(env, "APP_NAME"),
            jobs_table_name=_required(env, "JOBS_TABLE_NAME"),
            idempotency_table_name=env.get("IDEMPOTENCY_TABLE_NAME") or None,
            worker_function_name=env.get("WORKER_FUNCTION_NAME") or None,
            dispatch=_choice(env, "DISPATCH", "lambda", ("lambda", "sqs", "stepfunctions")),
            state_machine_arn=env.get("STATE_MACHINE_ARN") or None,
            connections_table_name=env.get("CONNECTIONS_TABLE_NAME") or None,
            websocket_callback_url=env.get("WEBSOCKET_CALLBACK_URL") or None,
            websocket_url=env.get("WEBSOCKET_URL") or None,
            jobs_queue_url=env.get("JOBS_QUEUE_URL") or None,
            dead_letter_queue_url=env.get("DEAD_LETTER_QUEUE_URL") or None,
            job_retention_seconds=_int(env, "JOB_RETENTION_SECONDS", 7 * 86400, 3600, 3650 * 86400),
            max_attempts=_int(env, "MAX_ATTEMPTS", 3, 1, 3),
            retry_after_seconds=_int(env, "RETRY_AFTER_SECONDS", 2, 1, 3600),
            max_request_bytes=_int(env, "MAX_REQUEST_BYTES", 64 * 1024, 1024, 256 * 1024),
            max_result_bytes=_int(env, "MAX_RESULT_BYTES", 50 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
            max_inline_result_bytes=_int(env, "MAX_INLINE_RESULT_BYTES", 64 * 1024, 1024, 300 * 1024),
            results_bucket_name=env.get("RESULTS_BUCKET_NAME") or None,
            result_url_expiry_seconds=_int(env, "RESULT_URL_EXPIRY_SECONDS", 300, 1, 7 * 86400),
            progress_min_interval_seconds=_int(env, "PROGRESS_MIN_INTERVAL_MS", 2000, 0, 600_000) / 1000,
            timeout_margin_seconds=_int(env, "TIMEOUT_MARGIN_SECONDS", 10, 1, 120),
            idempotency_window_seconds=_int(env, "IDEMPOTENCY_WINDOW_SECONDS", 3600, 60, 7 * 86400),
            # Default: Lambda's longest event age (1 h) + the longest attempt (15 min) + 5 min.
            stuck_after_seconds=_int(env, "STUCK_AFTER_SECONDS", 4800, 10, 7 * 86400),
            callback_secret_arn=env.get("CALLBACK_SECRET_ARN") or None,
            callback_max_attempts=_int(env, "CALLBACK_MAX_ATTEMPTS", 4, 1, 10),
            callback_timeout_seconds=_int(env, "CALLBACK_TIMEOUT_SECONDS", 5, 1, 60),
            callback_require_https=_bool(env, "CALLBACK_REQUIRE_HTTPS", True),
            callback_allow_private_networks=_bool(env, "CALLBACK_ALLOW_PRIVATE_NETWORKS", False),
        )

    @property
    def callback_policy(self) -> CallbackPolicy:
        # Imported on use: most functions never take a callback URL (bench/cold_start.py).
        from jobs.callbacks import CallbackPolicy  # noqa: PLC0415

        return CallbackPolicy(self.callback_require_https, self.callback_allow_private_networks)

    def require(self, name: str) -> str:
        """The value of an optional setting that this particular function cannot run without."""
        value = getattr(self, name)
        if not value:
            raise ConfigurationError(f"setting {name} is required by this function")
        return str(value)
