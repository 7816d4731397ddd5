"""Every deployment setting of the app, in one place.

``cdk.json`` → ``context`` holds them: ``settings`` (the defaults; those of the runtime
values in ``Tuning``, such as ``retry_after_seconds``, are declared with their bounds in
``lambdas/jobs/settings.py`` instead, and may be overridden here too), ``stages`` (the
``dev`` and ``prod`` presets, each overriding some defaults) and ``stage`` (the preset
used when none is chosen: ``dev``). Pick a stage with ``-c stage=prod``; override any
single setting with ``-c name=value`` (or ``make deploy CDK_ARGS="-c stage=prod -c
name=value"``), which wins over both. Values are checked here, once, before anything is
synthesized, so a typo fails fast with its name. docs/configuration.md's table
documents each setting.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from aws_cdk import RemovalPolicy

from jobs import values
from jobs.naming import AppName
from jobs.settings import Tuning, declarations
from jobs.values import InvalidValue

CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"


def cdk_json_context() -> dict[str, Any]:
    """cdk.json's context, for runs without the CDK CLI (tests, ``python app.py``)."""
    context: dict[str, Any] = json.loads(CDK_JSON.read_text())["context"]
    return context


def default_context() -> dict[str, Any]:
    """The default of every setting (cdk.json → context → settings), before any stage preset."""
    settings: dict[str, Any] = cdk_json_context()["settings"]
    return settings


class ConfigError(ValueError):
    """A context value is missing, malformed or out of range."""


# The retention periods CloudWatch Logs accepts, in days.
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


def _app_name(label: str, raw: Any) -> str:
    return values.app_name(label, raw).value


# Lambda keeps this much of an account's concurrency unreserved, always: a function's
# reserved concurrency may not eat into it (Lambda Developer Guide, "Configuring reserved
# concurrency"; PutFunctionConcurrency fails otherwise).
UNRESERVED_CONCURRENCY_MINIMUM = 100
# Functions behind the REST API (submit, status, cancel): each gets api_cold_start.
API_FUNCTIONS = 3
# The largest input or output of a Step Functions state (Step Functions Developer Guide,
# "Step Functions service quotas": 256 KiB, UTF-8). The process step hands an inline
# result to finalise as a JSON string inside the state, which may double its size
# (every quote and backslash escaped), next to the job id and the steps' other answers.
STATE_PAYLOAD_BYTES = 256 * 1024
STATE_OVERHEAD_BYTES = 8 * 1024
# The largest WebSocket message API Gateway sends (API Gateway Developer Guide, "Quotas for
# configuring and running a WebSocket API": 128 KB, not adjustable). A pushed job change
# carries the job's view, inline result included, beside its other fields.
WEBSOCKET_MESSAGE_BYTES = 128 * 1024
WEBSOCKET_OVERHEAD_BYTES = 8 * 1024
# dispatch=stepfunctions: how long a step waits out throttled invokes (stacks/workflow.py
# retries Lambda.TooManyRequestsException with a 2 s start, doubling, capped delays).
THROTTLE_RETRY_ATTEMPTS = 12
THROTTLE_MAX_DELAY_SECONDS = 60
THROTTLE_WAIT_SECONDS = sum(min(2 << attempt, THROTTLE_MAX_DELAY_SECONDS) for attempt in range(THROTTLE_RETRY_ATTEMPTS))
STAGE = re.compile(r"^[a-z][a-z0-9]{0,15}$")
# A context key shaped like this app's settings; CDK's own keys (feature flags, lookups,
# its CLI's switches) carry "@", ":" or "-" and are left to CDK.
SETTING_NAME = re.compile(r"[a-z][a-z0-9_]*")
# The keys that hold settings, and app.py's override of the stack's name.
CONTEXT_KEYS = ("stage", "stages", "settings", "stack_name")


# Settings that may be left null in cdk.json.
OPTIONAL = frozenset({"worker_reserved_concurrency", "alarm_email", "vpc_id", "vpc_security_group_id"})


def checked(parse: Callable[[str, Any], Any]) -> dict[str, Any]:
    """A setting's field metadata: checked with ``parse`` (``jobs/values.py``); its default is
    in cdk.json's ``settings``, its meaning in docs/configuration.md."""
    return {"parse": parse}


@dataclass(frozen=True)
class AppConfig:
    """Validated settings; see ``cdk.json`` for defaults and docs/configuration.md for meanings.

    Each field is one setting, declared with its parser; the order is the order of the
    configuration page's table."""

    stage: str
    app_name: str = field(metadata=checked(_app_name))
    # The runtime values chosen in cdk.json (retry_after_seconds, max_request_bytes...): each
    # declared once, with its environment variable, bounds and default, in jobs/settings.py.
    tuning: Tuning
    dispatch: str = field(metadata=checked(values.choice("lambda", "sqs", "stepfunctions", "durable")))
    notify: str = field(metadata=checked(values.choice("none", "websocket")))
    vpc: str = field(metadata=checked(values.choice("none", "new", "existing")))
    vpc_id: str | None = field(metadata=checked(values.aws_id("vpc")))
    vpc_subnet_ids: list[str] = field(metadata=checked(values.aws_ids("subnet")))
    vpc_security_group_id: str | None = field(metadata=checked(values.aws_id("sg")))
    vpc_gateway_endpoints: str = field(metadata=checked(values.choice("create", "existing")))
    vpc_route_table_ids: list[str] = field(metadata=checked(values.aws_ids("rtb")))
    vpc_lambda_endpoint: str = field(metadata=checked(values.choice("create", "existing")))
    database: str = field(metadata=checked(values.choice("none", "postgres")))
    database_min_capacity: float = field(metadata=checked(values.capacity(0.5, 256)))
    database_max_capacity: float = field(metadata=checked(values.capacity(1, 256)))
    api_stage_name: str = field(metadata=checked(values.stage_name))
    # Up to what a raised account quota allows (the account's own throttle applies above it).
    api_throttle_rate_limit: int = field(metadata=checked(values.integer(1, 1_000_000)))
    api_throttle_burst_limit: int = field(metadata=checked(values.integer(1, 500_000)))
    api_integration_timeout_seconds: int = field(metadata=checked(values.integer(1, 29)))
    worker_timeout_seconds: int = field(metadata=checked(values.integer(3, 900)))
    worker_memory_mb: int = field(metadata=checked(values.integer(128, 10_240)))
    worker_reserved_concurrency: int | None = field(metadata=checked(values.optional_integer(1, 10_000)))
    worker_retry_attempts: int = field(metadata=checked(values.integer(0, 2)))
    worker_max_event_age_seconds: int = field(metadata=checked(values.integer(60, 21_600)))
    # dispatch=durable: how long one job's durable execution may run in all (waits included),
    # and how long Lambda keeps its history afterwards (Lambda API Reference, DurableConfig:
    # ExecutionTimeout 1..31,622,400 s, RetentionPeriodInDays 1..90).
    durable_execution_timeout_seconds: int = field(metadata=checked(values.integer(60, 31_622_400)))
    durable_retention_days: int = field(metadata=checked(values.integer(1, 90)))
    worker_batch_size: int = field(metadata=checked(values.integer(1, 10)))
    worker_max_concurrency: int = field(metadata=checked(values.integer(2, 1000)))
    api_function_memory_mb: int = field(metadata=checked(values.integer(128, 10_240)))
    api_cold_start: str = field(metadata=checked(values.choice("none", "snapstart", "provisioned")))
    api_provisioned_concurrency: int = field(metadata=checked(values.integer(1, 10_000)))
    worker_cold_start: str = field(metadata=checked(values.choice("none", "snapstart", "provisioned")))
    worker_provisioned_concurrency: int = field(metadata=checked(values.integer(1, 10_000)))
    job_retention_days: int = field(metadata=checked(values.integer(1, 3650)))
    log_level: str = field(metadata=checked(values.choice("debug", "info", "warning", "error")))
    log_retention_days: int = field(metadata=checked(values.one_of(*LOG_RETENTION_DAYS)))
    removal_policy: str = field(metadata=checked(values.choice("retain", "destroy")))
    alarm_email: str | None = field(metadata=checked(values.email))
    alarm_5xx_threshold: int = field(metadata=checked(values.integer(1, 1_000_000)))
    alarm_latency_p99_ms: int = field(metadata=checked(values.integer(1000, 29_000)))
    alarm_function_errors_threshold: int = field(metadata=checked(values.integer(1, 1_000_000)))
    alarm_function_throttles_threshold: int = field(metadata=checked(values.integer(1, 1_000_000)))
    alarm_failed_jobs_percent: int = field(metadata=checked(values.integer(1, 100)))
    alarm_database_capacity_percent: int = field(metadata=checked(values.integer(1, 100)))
    alarm_period_minutes: int = field(metadata=checked(values.integer(1, 60)))
    alarm_evaluation_periods: int = field(metadata=checked(values.integer(1, 100)))
    reaper_interval_minutes: int = field(metadata=checked(values.integer(1, 1440)))
    reaper_slack_seconds: int = field(metadata=checked(values.integer(0, 86_400)))
    waf_enabled: bool = field(metadata=checked(values.boolean))
    waf_rate_limit_per_5_minutes: int = field(metadata=checked(values.integer(10, 2_000_000_000)))
    powertools_layer_version: int = field(metadata=checked(values.integer(1, 10_000)))
    apigateway_cloudwatch_role: bool = field(metadata=checked(values.boolean))
    lambda_account_concurrency: int = field(metadata=checked(values.integer(10, 1_000_000)))
    keep_legacy_owner_index: bool = field(metadata=checked(values.boolean))

    @classmethod
    def known_settings(cls) -> frozenset[str]:
        """Every context key this app reads: its settings (``AppConfig`` and ``Tuning``
        fields: a fork's new field is known at once) and the keys that hold them."""
        return frozenset({*CONTEXT_KEYS, *(f.name for f in fields(cls)), *declarations(Tuning)})

    @classmethod
    def refuse_unknown(cls, names: Iterable[str], where: str = "context") -> None:
        """Raise :class:`ConfigError` for a name that looks like a setting (``snake_case``;
        CDK's own keys have ``@``, ``:`` or ``-``) but is none: a typo would otherwise be
        ignored and the default used without a word."""
        known = cls.known_settings()
        for name in names:
            if SETTING_NAME.fullmatch(name) and name not in known:
                close = difflib.get_close_matches(name, sorted(known), n=1)
                hint = f": did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"unknown setting {name!r} in {where}{hint} (docs/configuration.md lists them)")

    @classmethod
    def from_context(cls, lookup: Callable[[str], Any], given: Iterable[str] = ()) -> AppConfig:
        """Read every setting through ``lookup`` (``node.try_get_context``) and check it;
        ``given``: every key of the context (``node.get_all_context()``), so that an unknown
        one is refused rather than ignored.

        A setting given to the lookup directly (``-c name=value``) wins; then the chosen
        stage's preset; then the default in cdk.json's ``settings``.
        """
        cls.refuse_unknown(given)
        file = cdk_json_context()
        stage = str(lookup("stage") or file["stage"])
        presets: dict[str, dict[str, Any]] = lookup("stages") or file["stages"]
        if not STAGE.match(stage) or stage not in presets:
            raise ConfigError(f"context 'stage' must be one of {', '.join(presets)}, got {stage!r}")
        settings: dict[str, Any] = lookup("settings") or file["settings"]
        cls.refuse_unknown(settings, "cdk.json's settings")
        for name, preset in presets.items():
            cls.refuse_unknown(preset, f"the {name!r} stage")
        defaults = {**settings, **presets[stage]}

        def chosen(name: str) -> Any:
            raw = lookup(name)
            return defaults.get(name) if raw is None else raw

        parsed: dict[str, Any] = {"stage": stage}
        try:
            parsed["tuning"] = Tuning.from_context(chosen)
        except InvalidValue as error:
            raise ConfigError(str(error)) from error
        for setting in fields(cls):
            if setting.name in ("stage", "tuning"):
                continue
            raw = chosen(setting.name)
            if raw is None and setting.name not in OPTIONAL:
                raise ConfigError(f"context '{setting.name}' is not set (see cdk.json)")
            try:
                parsed[setting.name] = setting.metadata["parse"](f"context '{setting.name}'", raw)
            except InvalidValue as error:
                raise ConfigError(str(error)) from error
        config = cls(**parsed)
        config._check_consistency()
        return config

    @classmethod
    def from_mapping(cls, context: Mapping[str, Any]) -> AppConfig:
        """Settings from ``context`` overrides on top of cdk.json (handy in tests)."""
        return cls.from_context(context.get, context.keys())

    @property
    def name(self) -> AppName:
        """The app's name and its derived forms (stack, metrics namespace, headers...)."""
        return AppName(self.app_name)

    @property
    def stack_name(self) -> str:
        """``AsyncJobs-dev``: the stage is in the stack's name, so in every resource name."""
        return f"{self.name.pascal}-{self.stage}"

    @property
    def network(self) -> str:
        """Where the job runner runs: ``vpc``, except that a database needs one (a new VPC
        when ``vpc=none``)."""
        return "new" if self.database != "none" and self.vpc == "none" else self.vpc

    @property
    def max_attempts(self) -> int:
        return self.worker_retry_attempts + 1

    @property
    def queue_visibility_timeout_seconds(self) -> int:
        """``dispatch=sqs``: six times the worker timeout, AWS's guidance for SQS event sources."""
        return min(43_200, 6 * self.worker_timeout_seconds)

    @property
    def queue_retention_seconds(self) -> int:
        """``dispatch=sqs``: long enough for every attempt (each waits out the visibility
        timeout), and never shorter than ``worker_max_event_age_seconds``."""
        every_attempt = self.queue_visibility_timeout_seconds * self.max_attempts + self.worker_timeout_seconds
        return min(1_209_600, max(self.worker_max_event_age_seconds, every_attempt))

    @property
    def workflow_timeout_seconds(self) -> int:
        """``dispatch=stepfunctions``: the state machine's timeout, enough for every attempt of
        the process step (each with its task timeout and retry pause), the short steps, and
        waiting out throttled invokes twice (once for Process, once for the short steps)."""
        process = (self.worker_timeout_seconds + 30 + 5 * (1 << self.worker_retry_attempts)) * self.max_attempts
        return process + 600 + 2 * THROTTLE_WAIT_SECONDS

    @property
    def stuck_after_seconds(self) -> int:
        """A job unfinished this long after submission will never be finished by a worker:
        Lambda holds its event at most ``worker_max_event_age_seconds`` (retries included;
        with ``dispatch=sqs``, the queue keeps it at most ``queue_retention_seconds``), and
        the last attempt then runs at most ``worker_timeout_seconds``. The reaper ends it."""
        if self.dispatch == "stepfunctions":  # the execution's own timeout bounds everything
            return self.workflow_timeout_seconds + self.reaper_slack_seconds
        if self.dispatch == "durable":  # so does the durable execution's
            return self.durable_execution_timeout_seconds + self.reaper_slack_seconds
        held = self.queue_retention_seconds if self.dispatch == "sqs" else self.worker_max_event_age_seconds
        return held + self.worker_timeout_seconds + self.reaper_slack_seconds

    @property
    def destroy_on_removal(self) -> bool:
        return self.removal_policy == "destroy"

    @property
    def removal(self) -> RemovalPolicy:
        """What CloudFormation does with stateful resources when the stack is deleted."""
        return RemovalPolicy.DESTROY if self.destroy_on_removal else RemovalPolicy.RETAIN

    def allocated_concurrency(self) -> tuple[int, int]:
        """What the stack takes out of the account's unreserved Lambda concurrency: the API
        functions' provisioned concurrency, and the worker's reserved or provisioned
        concurrency (whichever is larger: provisioned comes out of a reservation)."""
        api = API_FUNCTIONS * self.api_provisioned_concurrency if self.api_cold_start == "provisioned" else 0
        worker = self.worker_provisioned_concurrency if self.worker_cold_start == "provisioned" else 0
        return api, max(self.worker_reserved_concurrency or 0, worker)

    def _check_provisioned_concurrency(self, most_reservable: int) -> None:
        """Provisioned concurrency is allocated from the account's pool like reserved
        concurrency: it must leave the same 100 unreserved, and a function's provisioned
        concurrency cannot exceed its reserved concurrency (Lambda Developer Guide,
        "Configuring provisioned concurrency")."""
        api, worker_allocated = self.allocated_concurrency()
        worker = self.worker_provisioned_concurrency if self.worker_cold_start == "provisioned" else 0
        if self.worker_reserved_concurrency is not None and worker > self.worker_reserved_concurrency:
            raise ConfigError(
                f"worker_provisioned_concurrency ({worker}) must not exceed worker_reserved_concurrency "
                f"({self.worker_reserved_concurrency})"
            )
        if api + worker_allocated > most_reservable:
            raise ConfigError(
                f"api_provisioned_concurrency times {API_FUNCTIONS} API functions ({api}) plus the worker's "
                f"reserved or provisioned concurrency ({worker_allocated}) must leave {UNRESERVED_CONCURRENCY_MINIMUM} "
                f"of lambda_account_concurrency ({self.lambda_account_concurrency}) unreserved"
            )

    def _check_network(self) -> None:
        """``vpc=existing`` names everything it needs; nothing is looked up at synth."""
        if self.vpc_lambda_endpoint == "existing" and self.vpc != "existing":
            raise ConfigError("vpc_lambda_endpoint=existing is for vpc=existing: your VPC's own Lambda endpoint")
        if self.vpc != "existing":
            return
        missing = [name for name in ("vpc_id", "vpc_subnet_ids", "vpc_security_group_id") if not getattr(self, name)]
        if missing:
            raise ConfigError(f"vpc=existing needs {', '.join(missing)} (see docs/variants.md)")
        if self.database != "none" and len(self.vpc_subnet_ids) < 2:
            # An Aurora DB subnet group spans at least two Availability Zones.
            raise ConfigError("database=postgres in an existing VPC needs vpc_subnet_ids in two Availability Zones")
        if self.vpc_gateway_endpoints == "create" and not self.vpc_route_table_ids:
            raise ConfigError(
                "vpc=existing with vpc_gateway_endpoints=create needs vpc_route_table_ids (the subnets' route "
                "tables); or set vpc_gateway_endpoints=existing if the VPC already reaches DynamoDB and S3"
            )

    def _check_consistency(self) -> None:
        if self.tuning.max_request_bytes + self.tuning.max_inline_result_bytes > 380 * 1024:
            # Both live on one DynamoDB item, which holds at most 400 KB.
            raise ConfigError(
                "max_request_bytes + max_inline_result_bytes must stay under 380 KiB (DynamoDB item limit)"
            )
        self._check_network()
        if self.database_min_capacity > self.database_max_capacity:
            raise ConfigError("database_min_capacity must not exceed database_max_capacity")
        if self.tuning.max_inline_result_bytes > self.tuning.max_result_bytes:
            raise ConfigError("max_inline_result_bytes must not exceed max_result_bytes")
        if self.alarm_latency_p99_ms > self.api_integration_timeout_seconds * 1000:
            raise ConfigError("alarm_latency_p99_ms must not exceed the integration timeout")
        most_reservable = self.lambda_account_concurrency - UNRESERVED_CONCURRENCY_MINIMUM
        if self.worker_reserved_concurrency is not None and self.worker_reserved_concurrency > most_reservable:
            raise ConfigError(
                f"worker_reserved_concurrency must leave {UNRESERVED_CONCURRENCY_MINIMUM} of the account's "
                f"Lambda concurrency ({self.lambda_account_concurrency}, lambda_account_concurrency) unreserved: "
                f"at most {most_reservable}, got {self.worker_reserved_concurrency}. Lambda refuses more; "
                "`make doctor` reads your account's real figure."
            )
        if (
            self.dispatch == "sqs"
            and self.worker_reserved_concurrency is not None
            and self.worker_reserved_concurrency < self.worker_max_concurrency
        ):
            # The mapping would poll more messages than the worker may run; each throttled
            # one returns only after the visibility timeout and spends a receive, so jobs can
            # be dead-lettered unrun (AWS Knowledge Center, "lambda-sqs-scaling"; Lambda
            # Developer Guide, "Configuring scaling behavior for SQS event source mappings").
            raise ConfigError(
                "with dispatch=sqs, worker_max_concurrency must not exceed worker_reserved_concurrency "
                f"({self.worker_max_concurrency} > {self.worker_reserved_concurrency}): throttled messages would "
                "use up their receives and reach the dead-letter queue unrun"
            )
        self._check_provisioned_concurrency(most_reservable)
        largest_pushed = WEBSOCKET_MESSAGE_BYTES - WEBSOCKET_OVERHEAD_BYTES
        if self.notify == "websocket" and self.tuning.max_inline_result_bytes > largest_pushed:
            raise ConfigError(
                f"with notify=websocket, max_inline_result_bytes must be at most {largest_pushed}: a pushed job "
                "change carries its inline result, and API Gateway sends no WebSocket message over 128 KB"
            )
        largest_inline = (STATE_PAYLOAD_BYTES - STATE_OVERHEAD_BYTES) // 2
        if self.dispatch == "stepfunctions" and self.tuning.max_inline_result_bytes > largest_inline:
            raise ConfigError(
                f"with dispatch=stepfunctions, max_inline_result_bytes must be at most {largest_inline}: an inline "
                "result travels between steps inside the state, which Step Functions caps at 256 KiB (escaped "
                "JSON may double it); larger results go to the results bucket anyway"
            )
        if self.dispatch == "durable" and self.tuning.max_inline_result_bytes > largest_inline:
            raise ConfigError(
                f"with dispatch=durable, max_inline_result_bytes must be at most {largest_inline}: an inline result "
                "is checkpointed with the attempt, and the SDK checkpoints no context result over 256 KiB (escaped "
                "JSON may double it); larger results go to the results bucket anyway"
            )
        if self.dispatch == "durable" and self.worker_cold_start == "snapstart":
            # AWS documents no SnapStart support for durable functions: refuse rather than guess.
            raise ConfigError("with dispatch=durable, worker_cold_start must be none or provisioned")


# Every CDK setting and its parser (the fields declared above), by name.
PARSERS: dict[str, Callable[[str, Any], Any]] = {
    item.name: item.metadata["parse"] for item in fields(AppConfig) if "parse" in item.metadata
}
