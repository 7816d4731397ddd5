"""Runtime configuration of the Lambda functions: every setting declared once, here.

Each field below is declared with :func:`setting`: its environment variable, its parser
(type and bounds, shared with the CDK config: ``jobs/values.py``) and its default.

* :class:`Tuning` holds what you choose in ``cdk.json`` under the field's own name
  (``-c retry_after_seconds=5``); the default here is the deployed default. The stack
  checks the choice at synth (``stacks/config.py``) and hands it to every function.
* :class:`Settings` adds what the constructs wire in: the resources each one owns and the
  values derived from other settings, each through :meth:`Settings.variables`, so no
  construct spells a variable's name.

``Settings.from_env`` reads and checks them all once, at cold start; a missing or
malformed value fails there with its name, not at the first request. Adding a setting:
declare it here (in ``Tuning`` if it is chosen in cdk.json) and use it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, TypeVar, cast

from jobs.naming import AppName
from jobs.values import InvalidValue, Parser, app_name, boolean, choice, integer, text

if TYPE_CHECKING:
    from jobs.callbacks import CallbackPolicy

T = TypeVar("T")
REQUIRED: Any = object()  # a setting without a default
CDK_TOKEN = "${Token["  # noqa: S105  a value CloudFormation resolves at deploy time: not checkable at synth


class ConfigurationError(RuntimeError):
    """An environment variable is missing or out of range."""


@dataclass(frozen=True)
class Declaration:
    """One setting: where it is read from, how it is checked, what it is when unset."""

    env: str
    parse: Parser[Any]
    default: Any

    def read(self, env: Mapping[str, str]) -> Any:
        raw = env.get(self.env)
        if raw is None or raw == "":
            if self.default is REQUIRED:
                raise ConfigurationError(f"environment variable {self.env} is required")
            return self.default
        try:
            return self.parse(self.env, raw)
        except InvalidValue as error:
            raise ConfigurationError(str(error)) from error

    def format(self, value: Any) -> str:
        """The value as an environment variable holds it."""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)


def setting(env: str, parse: Parser[T], default: T = REQUIRED) -> T:
    """A field of :class:`Tuning` or :class:`Settings`, read from ``env`` with ``parse``."""
    return cast(T, field(metadata={"setting": Declaration(env, parse, default)}))


def declarations(cls: type) -> dict[str, Declaration]:
    """Each setting of ``cls`` (a field name) and its declaration."""
    return {item.name: item.metadata["setting"] for item in fields(cls)}


@dataclass(frozen=True)
class Tuning:
    """The runtime values you choose in ``cdk.json`` (each under its field's name)."""

    retry_after_seconds: int = setting("RETRY_AFTER_SECONDS", integer(1, 3600), 2)
    max_request_bytes: int = setting("MAX_REQUEST_BYTES", integer(1024, 256 * 1024), 64 * 1024)
    max_result_bytes: int = setting("MAX_RESULT_BYTES", integer(1024, 1024 * 1024 * 1024), 50 * 1024 * 1024)
    max_inline_result_bytes: int = setting("MAX_INLINE_RESULT_BYTES", integer(1024, 300 * 1024), 64 * 1024)
    # A presigned URL dies with the credentials that signed it, whatever its own expiry (S3
    # User Guide, "Download and upload objects with presigned URLs": a URL signed with an IAM
    # role's credentials expires when the role session does). AWS documents no lifetime for
    # a Lambda execution role's session, so S3's 7-day maximum could never be kept; an hour,
    # a role session's default length, is the most promised. Each GET signs a fresh URL.
    result_url_expiry_seconds: int = setting("RESULT_URL_EXPIRY_SECONDS", integer(1, 3600), 300)
    progress_min_interval_ms: int = setting("PROGRESS_MIN_INTERVAL_MS", integer(0, 600_000), 2000)
    idempotency_window_seconds: int = setting("IDEMPOTENCY_WINDOW_SECONDS", integer(60, 7 * 86_400), 3600)
    callback_max_attempts: int = setting("CALLBACK_MAX_ATTEMPTS", integer(1, 10), 4)
    callback_timeout_seconds: int = setting("CALLBACK_TIMEOUT_SECONDS", integer(1, 60), 5)
    # database=postgres: how long a task waits to connect, and for one statement's answer
    # (both also kept under the attempt's remaining time: jobs/database.py).
    database_connect_timeout_seconds: int = setting("DATABASE_CONNECT_TIMEOUT_SECONDS", integer(1, 60), 5)
    database_statement_timeout_seconds: int = setting("DATABASE_STATEMENT_TIMEOUT_SECONDS", integer(1, 900), 120)

    @classmethod
    def from_context(cls, lookup: Callable[[str], Any]) -> Tuning:
        """The choices in ``lookup`` (cdk.json's context, by field name), checked with the
        same parsers as at run time; the declared default where there is none. Raises
        :class:`InvalidValue` naming the context key."""
        chosen = {}
        for name, declaration in declarations(Tuning).items():
            raw = lookup(name)
            chosen[name] = declaration.default if raw is None else declaration.parse(f"context '{name}'", raw)
        return cls(**chosen)

    def environment(self) -> dict[str, str]:
        """These values as the functions' environment variables."""
        return {
            declaration.env: declaration.format(getattr(self, name))
            for name, declaration in declarations(Tuning).items()
        }

    @property
    def progress_min_interval_seconds(self) -> float:
        return self.progress_min_interval_ms / 1000


@dataclass(frozen=True)
class Settings(Tuning):
    """Everything the handlers need to know about their deployment."""

    app: AppName = setting("APP_NAME", app_name)
    jobs_table_name: str = setting("JOBS_TABLE_NAME", text)
    dispatch: str = setting("DISPATCH", choice("lambda", "sqs", "stepfunctions", "durable"), "lambda")
    # Resources, each wired in by the construct that owns it (None: this function has none).
    idempotency_table_name: str | None = setting("IDEMPOTENCY_TABLE_NAME", text, None)
    worker_function_name: str | None = setting("WORKER_FUNCTION_NAME", text, None)
    jobs_queue_url: str | None = setting("JOBS_QUEUE_URL", text, None)
    state_machine_arn: str | None = setting("STATE_MACHINE_ARN", text, None)
    connections_table_name: str | None = setting("CONNECTIONS_TABLE_NAME", text, None)
    websocket_callback_url: str | None = setting("WEBSOCKET_CALLBACK_URL", text, None)
    websocket_url: str | None = setting("WEBSOCKET_URL", text, None)
    dead_letter_queue_url: str | None = setting("DEAD_LETTER_QUEUE_URL", text, None)
    results_bucket_name: str | None = setting("RESULTS_BUCKET_NAME", text, None)
    callback_secret_arn: str | None = setting("CALLBACK_SECRET_ARN", text, None)
    # database=postgres: the RDS Proxy endpoint and the database user its IAM token is for.
    database_host: str | None = setting("DATABASE_HOST", text, None)
    database_port: int = setting("DATABASE_PORT", integer(1, 65_535), 5432)
    database_name: str | None = setting("DATABASE_NAME", text, None)
    database_user: str | None = setting("DATABASE_USER", text, None)
    # A CA bundle to trust instead of the system's (RDS Proxy's certificates come from ACM,
    # which the system store already trusts; a database reached directly needs the RDS one).
    database_ca_file: str | None = setting("DATABASE_CA_FILE", text, None)
    # Derived by the stack from other settings (stacks/config.py says how).
    job_retention_seconds: int = setting("JOB_RETENTION_SECONDS", integer(3600, 3650 * 86_400), 7 * 86_400)
    max_attempts: int = setting("MAX_ATTEMPTS", integer(1, 3), 3)
    timeout_margin_seconds: int = setting("TIMEOUT_MARGIN_SECONDS", integer(1, 120), 10)
    # Default: Lambda's longest event age (1 h) + the longest attempt (15 min) + 5 min.
    stuck_after_seconds: int = setting("STUCK_AFTER_SECONDS", integer(10, 30 * 86_400), 4800)
    # Deployed stacks never set these two: https and public addresses only. The local
    # runtime, whose receivers run on this machine, allows http:// and loopback.
    callback_require_https: bool = setting("CALLBACK_REQUIRE_HTTPS", boolean, True)
    callback_allow_loopback: bool = setting("CALLBACK_ALLOW_LOOPBACK", boolean, False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(**{name: declaration.read(env) for name, declaration in declarations(cls).items()})

    @staticmethod
    def variables(**chosen: Any) -> dict[str, str]:
        """``Settings.variables(jobs_table_name=table.table_name)``: the environment variables
        that set these settings (for the constructs). A value known at synth is checked
        with the setting's parser; a token CloudFormation resolves later cannot be."""
        known = declarations(Settings)
        unknown = sorted(set(chosen) - set(known))
        if unknown:
            raise ConfigurationError(f"no such setting: {', '.join(unknown)}")
        variables = {}
        for name, value in chosen.items():
            declaration = known[name]
            formatted = declaration.format(value)
            if CDK_TOKEN not in formatted:
                declaration.read({declaration.env: formatted})
            variables[declaration.env] = formatted
        return variables

    @property
    def callback_policy(self) -> CallbackPolicy:
        # Imported on use: most functions never take a callback URL (bench/cold_start.py).
        from jobs.callbacks import CallbackPolicy  # noqa: PLC0415

        return CallbackPolicy(self.callback_require_https, self.callback_allow_loopback)

    def require(self, name: str) -> str:
        """The value of an optional setting that this particular function cannot run without."""
        value = getattr(self, name)
        if not value:
            raise ConfigurationError(f"setting {name} is required by this function")
        return str(value)
