"""Reads the synthesized CloudFormation template: the one description of the app.

Everything the local runtime serves (routes, functions, their settings and environment,
retries and destinations, tables and queues) comes from here, so a change in ``stacks/``
shows up locally after the next synth with nothing written a second time.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.event_filter import parse_filters

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"


@dataclass
class AsyncConfig:
    """How Lambda retries an asynchronous invocation and where it sends the event after."""

    max_retry_attempts: int = 2  # Lambda's defaults when no event-invoke config exists
    max_event_age_seconds: int = 21_600
    on_failure: str | None = None  # logical id of a function or queue


@dataclass
class FunctionSpec:
    logical_id: str
    name: str  # FunctionName, or <stack>-<logical id> as CloudFormation would generate it (minus its suffix)
    handler: str
    code_dir: Path
    timeout_seconds: float
    memory_mb: int
    environment: dict[str, Any]  # values may still be intrinsics; see Resolver
    reserved_concurrency: int | None = None
    # The event-invoke config of each qualifier ("$LATEST" or an alias name). Lambda applies
    # the config of the qualifier invoked, and its defaults where there is none.
    async_configs: dict[str, AsyncConfig] = field(default_factory=dict)
    aliases: set[str] = field(default_factory=set)  # "live" with a cold-start option (always when durable)
    # DurableConfig: a durable function's execution timeout (s) and history retention (days).
    durable: tuple[int, int] | None = None

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.name}"

    def async_config(self, qualifier: str = "$LATEST") -> AsyncConfig:
        return self.async_configs.get(qualifier, AsyncConfig())


@dataclass
class TableSpec:
    logical_id: str
    properties: dict[str, Any]


@dataclass
class QueueSpec:
    logical_id: str
    properties: dict[str, Any]

    @property
    def dead_letter_queue(self) -> str | None:
        """Logical id of the queue this one's redrive policy names, if it has one."""
        redrive = self.properties.get("RedrivePolicy")
        if not redrive:
            return None
        target = _ref(redrive.get("deadLetterTargetArn"))
        if target is None:
            raise ValueError(f"expected a Ref or GetAtt, got {redrive.get('deadLetterTargetArn')!r}")
        return target


@dataclass
class MethodSpec:
    http_method: str
    resource_path: str  # e.g. /jobs/{job_id}
    function: str | None  # logical id of the proxied function
    authorization_type: str
    timeout_ms: int
    validate_body: bool = False
    validate_parameters: bool = False
    request_models: dict[str, dict[str, Any]] = field(default_factory=dict)  # content type -> schema
    required_parameters: list[str] = field(default_factory=list)

    @property
    def path_pattern(self) -> re.Pattern[str]:
        regex = re.sub(r"\\{(\w+)\\\+\\}", r"(?P<\1>.+)", re.escape(self.resource_path))
        regex = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", regex)
        return re.compile(f"^{regex}$")


@dataclass
class ApiSpec:
    stage_name: str
    methods: list[MethodSpec]
    throttle_rate: float | None = None
    throttle_burst: int | None = None
    gateway_responses: dict[str, dict[str, Any]] = field(default_factory=dict)  # type -> properties


@dataclass
class ScheduleSpec:
    """An EventBridge rule on a ``rate(...)`` schedule that invokes functions."""

    logical_id: str
    interval_seconds: float
    functions: list[str]  # logical ids

    @property
    def arn(self) -> str:
        return f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{self.logical_id}"


@dataclass
class EventRuleSpec:
    """An EventBridge rule on an event pattern whose targets are functions."""

    logical_id: str
    pattern: dict[str, Any]  # may hold intrinsics (a function's ARN); see Resolver
    functions: list[str]  # logical ids
    dead_letter_queue: str | None = None  # logical id of the targets' dead-letter queue


RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
RATE_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86_400}


@dataclass
class QueueMappingSpec:
    """An event source mapping from an SQS queue to a function."""

    queue: str  # logical id
    function: str  # logical id
    batch_size: int = 10
    max_concurrency: int = 2
    report_batch_item_failures: bool = False


@dataclass
class StreamMappingSpec:
    """An event source mapping from a DynamoDB table's stream to a function."""

    table: str  # logical id
    function: str  # logical id
    batch_size: int = 100
    starting_position: str = "TRIM_HORIZON"
    max_retry_attempts: int = -1  # -1: until the record expires, as in AWS
    report_batch_item_failures: bool = False
    filters: list[dict[str, Any]] = field(default_factory=list)
    on_failure: str | None = None  # logical id of a queue


@dataclass
class WebSocketApiSpec:
    """An API Gateway WebSocket API: its stage and the functions behind its routes."""

    logical_id: str
    stage_name: str
    routes: dict[str, str]  # route key ($connect, $disconnect) -> function logical id
    authorization: dict[str, str]  # route key -> AuthorizationType


@dataclass
class AppTemplate:
    functions: dict[str, FunctionSpec]
    tables: dict[str, TableSpec]
    queues: dict[str, QueueSpec]
    apis: list[ApiSpec]
    outputs: dict[str, Any]
    schedules: list[ScheduleSpec] = field(default_factory=list)
    event_rules: list[EventRuleSpec] = field(default_factory=list)
    buckets: list[str] = field(default_factory=list)  # logical ids
    queue_mappings: list[QueueMappingSpec] = field(default_factory=list)
    stream_mappings: list[StreamMappingSpec] = field(default_factory=list)
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)  # logical id -> properties
    state_machines: dict[str, dict[str, Any]] = field(default_factory=dict)  # logical id -> properties
    websocket_apis: list[WebSocketApiSpec] = field(default_factory=list)
    aliases: dict[str, tuple[str, str]] = field(default_factory=dict)  # logical id -> (function, alias name)
    database_proxies: list[str] = field(default_factory=list)  # logical ids (database=postgres)
    database_parameters: dict[str, str] = field(default_factory=dict)  # the cluster parameter group's

    @property
    def app_name(self) -> str:
        """The app's name (``app_name``), as the stack gives it to every function (``APP_NAME``)."""
        names = {str(f.environment["APP_NAME"]) for f in self.functions.values() if "APP_NAME" in f.environment}
        if len(names) != 1:
            raise UnsupportedTemplate(f"expected one APP_NAME on the functions, found {sorted(names)}")
        return names.pop()


def _ref(value: Any) -> str | None:
    """The logical id a ``Ref`` or ``Fn::GetAtt`` points at, if ``value`` is one."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return None


def _referenced_ids(value: Any) -> list[str]:
    """Every logical id referenced anywhere inside ``value``."""
    found: list[str] = []
    if isinstance(value, dict):
        ref = _ref(value)
        if ref:
            found.append(ref)
        for item in value.values():
            found.extend(_referenced_ids(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(_referenced_ids(item))
    return found


class TemplateNotFound(FileNotFoundError):
    pass


class UnsupportedTemplate(ValueError):
    """The template needs something the local runtime does not emulate."""


def find_stack(cdk_out: Path) -> str:
    """The name of the one stack synthesized into ``cdk_out`` (``AsyncJobs-<stage>``)."""
    names = sorted(path.name.removesuffix(".template.json") for path in cdk_out.glob("*.template.json"))
    if len(names) != 1:
        found = ", ".join(names) or "none"
        raise TemplateNotFound(f"expected one stack template in {cdk_out}, found {found}; synthesize first")
    return names[0]


def load(cdk_out: Path, stack_name: str | None = None) -> AppTemplate:
    """Parse ``<cdk_out>/<stack_name>.template.json`` (the only stack there, by default)."""
    stack_name = stack_name or find_stack(cdk_out)
    template = json.loads((cdk_out / f"{stack_name}.template.json").read_text())
    resources: dict[str, dict[str, Any]] = template["Resources"]

    def of_type(resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in resources.items() if v["Type"] == resource_type}

    assets_file = cdk_out / f"{stack_name}.assets.json"
    assets = json.loads(assets_file.read_text())["files"] if assets_file.exists() else {}
    functions: dict[str, FunctionSpec] = {}
    for logical_id, resource in of_type("AWS::Lambda::Function").items():
        props = resource["Properties"]
        asset = _asset_path(resource, assets)
        if not asset or not str(props.get("Runtime", "python")).startswith("python"):
            continue  # no local Python code (inline, container or CDK's own Node.js helpers)
        name = props.get("FunctionName")
        durable = props.get("DurableConfig")
        functions[logical_id] = FunctionSpec(
            logical_id=logical_id,
            name=name if isinstance(name, str) else f"{stack_name}-{logical_id}"[:64],
            handler=props["Handler"],
            code_dir=(cdk_out / asset).resolve(),
            timeout_seconds=float(props.get("Timeout", 3)),
            memory_mb=int(props.get("MemorySize", 128)),
            environment=dict(props.get("Environment", {}).get("Variables", {})),
            reserved_concurrency=props.get("ReservedConcurrentExecutions"),
            durable=(int(durable["ExecutionTimeout"]), int(durable.get("RetentionPeriodInDays", 14)))
            if durable
            else None,
        )
    aliases: dict[str, tuple[str, str]] = {}
    for alias_id, alias in of_type("AWS::Lambda::Alias").items():
        owner = functions.get(_ref(alias["Properties"]["FunctionName"]) or "")
        if owner is not None:
            owner.aliases.add(str(alias["Properties"]["Name"]))
            aliases[alias_id] = (owner.logical_id, str(alias["Properties"]["Name"]))
    for config in of_type("AWS::Lambda::EventInvokeConfig").values():
        props = config["Properties"]
        target = functions.get(_ref(props["FunctionName"]) or "")
        if target is None:
            continue
        qualifier = props["Qualifier"]
        if not isinstance(qualifier, str):  # CDK derives an alias's name from its ARN
            [alias_id] = [ref for ref in _referenced_ids(qualifier) if ref in resources]
            qualifier = resources[alias_id]["Properties"]["Name"]
        destination = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        target.async_configs[str(qualifier)] = AsyncConfig(
            max_retry_attempts=int(props.get("MaximumRetryAttempts", 2)),
            max_event_age_seconds=int(props.get("MaximumEventAgeInSeconds", 21_600)),
            on_failure=_ref(destination),
        )

    apis = [_load_api(rest_api_id, resources) for rest_api_id in of_type("AWS::ApiGateway::RestApi")]
    return AppTemplate(
        functions=functions,
        aliases=aliases,
        tables={k: TableSpec(k, v["Properties"]) for k, v in of_type("AWS::DynamoDB::Table").items()},
        queues={k: QueueSpec(k, v.get("Properties", {})) for k, v in of_type("AWS::SQS::Queue").items()},
        apis=apis,
        outputs=template.get("Outputs", {}),
        schedules=_load_schedules(of_type("AWS::Events::Rule"), functions),
        event_rules=_load_event_rules(of_type("AWS::Events::Rule"), functions),
        buckets=list(of_type("AWS::S3::Bucket")),
        queue_mappings=[
            QueueMappingSpec(
                queue=queue,
                function=function,
                batch_size=int(props.get("BatchSize", 10)),
                max_concurrency=int(props.get("ScalingConfig", {}).get("MaximumConcurrency", 2)),
                report_batch_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
            )
            for props in (m["Properties"] for m in of_type("AWS::Lambda::EventSourceMapping").values())
            if (queue := _ref(props.get("EventSourceArn")) or "") in resources
            and resources[queue]["Type"] == "AWS::SQS::Queue"
            and (function := _function_in(props.get("FunctionName"), resources) or "") in functions
        ],
        stream_mappings=[
            StreamMappingSpec(
                table=table,
                function=function,
                batch_size=int(props.get("BatchSize", 100)),
                starting_position=str(props.get("StartingPosition", "TRIM_HORIZON")),
                max_retry_attempts=int(props.get("MaximumRetryAttempts", -1)),
                report_batch_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                filters=parse_filters(props),
                on_failure=_ref(props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")),
            )
            for props in (m["Properties"] for m in of_type("AWS::Lambda::EventSourceMapping").values())
            if (table := _ref(props.get("EventSourceArn")) or "") in resources
            and resources[table]["Type"] == "AWS::DynamoDB::Table"
            and (function := _function_in(props.get("FunctionName"), resources) or "") in functions
        ],
        secrets={k: v.get("Properties", {}) for k, v in of_type("AWS::SecretsManager::Secret").items()},
        state_machines={k: v["Properties"] for k, v in of_type("AWS::StepFunctions::StateMachine").items()},
        database_proxies=list(of_type("AWS::RDS::DBProxy")),
        database_parameters={
            str(name): str(value)
            for group in of_type("AWS::RDS::DBClusterParameterGroup").values()
            for name, value in group["Properties"].get("Parameters", {}).items()
        },
        websocket_apis=[
            _load_websocket_api(api_id, resources, functions)
            for api_id, api in of_type("AWS::ApiGatewayV2::Api").items()
            if api["Properties"].get("ProtocolType") == "WEBSOCKET"
        ],
    )


def invoked_function(logical_id: str, resources: dict[str, dict[str, Any]]) -> str | None:
    """The function a call to ``logical_id`` runs: a function itself, or, for an alias, the
    function of the version the alias routes to (``api_cold_start``: API Gateway invokes
    the ``live`` alias). None when ``logical_id`` is no function, alias or version."""
    resource = resources.get(logical_id, {})
    kind = resource.get("Type")
    if kind == "AWS::Lambda::Function":
        return logical_id
    if kind == "AWS::Lambda::Alias":
        version = _ref(resource["Properties"]["FunctionVersion"])
        return invoked_function(version, resources) if version else None
    if kind == "AWS::Lambda::Version":
        function = _ref(resource["Properties"]["FunctionName"])
        return invoked_function(function, resources) if function else None
    return None


def _function_in(value: Any, resources: dict[str, dict[str, Any]]) -> str | None:
    """The function a property naming a function or an alias (intrinsics and all) runs."""
    for ref in _referenced_ids(value):
        if (function := invoked_function(ref, resources)) is not None:
            return function
    return None


def _load_websocket_api(
    api_id: str, resources: dict[str, dict[str, Any]], functions: dict[str, FunctionSpec]
) -> WebSocketApiSpec:
    def belongs(resource_type: str) -> list[dict[str, Any]]:
        return [
            r["Properties"]
            for r in resources.values()
            if r["Type"] == resource_type and _ref(r["Properties"].get("ApiId")) == api_id
        ]

    routes: dict[str, str] = {}
    authorization: dict[str, str] = {}
    for route in belongs("AWS::ApiGatewayV2::Route"):
        key = str(route["RouteKey"])
        authorization[key] = str(route.get("AuthorizationType", "NONE"))
        for integration in _referenced_ids(route.get("Target")):
            uri = resources.get(integration, {}).get("Properties", {}).get("IntegrationUri")
            targets = [ref for ref in _referenced_ids(uri) if ref in functions]
            if targets:
                routes[key] = targets[0]
    stages = belongs("AWS::ApiGatewayV2::Stage")
    return WebSocketApiSpec(
        logical_id=api_id,
        stage_name=str(stages[0]["StageName"]) if stages else "$default",
        routes=routes,
        authorization=authorization,
    )


def _load_schedules(rules: dict[str, dict[str, Any]], functions: dict[str, FunctionSpec]) -> list[ScheduleSpec]:
    """Enabled ``rate(...)`` rules with function targets (cron rules are not emulated)."""
    schedules = []
    for logical_id, rule in rules.items():
        props = rule["Properties"]
        rate = RATE.match(str(props.get("ScheduleExpression", "")))
        if not rate or props.get("State", "ENABLED") != "ENABLED":
            continue
        targets = [_ref(target.get("Arn")) for target in props.get("Targets", [])]
        schedules.append(
            ScheduleSpec(
                logical_id=logical_id,
                interval_seconds=int(rate.group(1)) * RATE_UNIT_SECONDS[rate.group(2).rstrip("s")],
                functions=[target for target in targets if target in functions],
            )
        )
    return schedules


def _load_event_rules(rules: dict[str, dict[str, Any]], functions: dict[str, FunctionSpec]) -> list[EventRuleSpec]:
    """Enabled rules on an event pattern with function targets."""
    found = []
    for logical_id, rule in rules.items():
        props = rule["Properties"]
        if "EventPattern" not in props or props.get("State", "ENABLED") != "ENABLED":
            continue
        targets = props.get("Targets", [])
        dead_letters = [_ref(t.get("DeadLetterConfig", {}).get("Arn")) for t in targets if t.get("DeadLetterConfig")]
        found.append(
            EventRuleSpec(
                logical_id=logical_id,
                pattern=props["EventPattern"],
                functions=[ref for target in targets if (ref := _ref(target.get("Arn"))) in functions],
                dead_letter_queue=dead_letters[0] if dead_letters else None,
            )
        )
    return found


def _asset_path(resource: dict[str, Any], assets: dict[str, Any]) -> str | None:
    """The folder in cdk.out holding a function's code (its zip asset, unzipped)."""
    metadata_path = resource.get("Metadata", {}).get("aws:asset:path")
    if metadata_path:
        return str(metadata_path)
    key = resource["Properties"].get("Code", {}).get("S3Key")
    if isinstance(key, str):
        source = assets.get(key.removesuffix(".zip"), {}).get("source", {})
        if source.get("packaging") == "zip":
            return str(source["path"])
    return None


def _load_api(rest_api_id: str, resources: dict[str, dict[str, Any]]) -> ApiSpec:
    def belongs(resource: dict[str, Any]) -> bool:
        return _ref(resource["Properties"].get("RestApiId")) == rest_api_id

    paths: dict[str, str] = {}
    api_resources = {k: v for k, v in resources.items() if v["Type"] == "AWS::ApiGateway::Resource" and belongs(v)}

    def path_of(resource_id: str | None) -> str:
        if resource_id is None or resource_id == rest_api_id:
            return ""
        if resource_id not in paths:
            props = api_resources[resource_id]["Properties"]
            paths[resource_id] = f"{path_of(_ref(props['ParentId']))}/{props['PathPart']}"
        return paths[resource_id]

    validators = {
        k: v["Properties"]
        for k, v in resources.items()
        if v["Type"] == "AWS::ApiGateway::RequestValidator" and belongs(v)
    }
    models = {k: v["Properties"] for k, v in resources.items() if v["Type"] == "AWS::ApiGateway::Model" and belongs(v)}
    methods: list[MethodSpec] = []
    for resource in resources.values():
        if resource["Type"] != "AWS::ApiGateway::Method" or not belongs(resource):
            continue
        props = resource["Properties"]
        integration = props.get("Integration", {})
        functions = [
            function
            for ref in _referenced_ids(integration.get("Uri"))
            if (function := invoked_function(ref, resources)) is not None
        ]
        validator = validators.get(_ref(props.get("RequestValidatorId")) or "", {})
        request_models = {}
        for content_type, model in (props.get("RequestModels") or {}).items():
            model_id = _ref(model)
            if model_id in models:
                request_models[content_type] = models[model_id]["Schema"]
        methods.append(
            MethodSpec(
                http_method=props["HttpMethod"],
                resource_path=path_of(_ref(props["ResourceId"])) or "/",
                function=functions[0] if functions else None,
                authorization_type=props.get("AuthorizationType", "NONE"),
                timeout_ms=int(integration.get("TimeoutInMillis", 29_000)),
                validate_body=bool(validator.get("ValidateRequestBody")),
                validate_parameters=bool(validator.get("ValidateRequestParameters")),
                request_models=request_models,
                required_parameters=[
                    name for name, required in (props.get("RequestParameters") or {}).items() if required
                ],
            )
        )
    stages = [v["Properties"] for v in resources.values() if v["Type"] == "AWS::ApiGateway::Stage" and belongs(v)]
    stage: dict[str, Any] = stages[0] if stages else {"StageName": "prod"}
    settings: dict[str, Any] = next(iter(stage.get("MethodSettings", [])), {})
    gateway_responses = {
        v["Properties"]["ResponseType"]: v["Properties"]
        for v in resources.values()
        if v["Type"] == "AWS::ApiGateway::GatewayResponse" and belongs(v)
    }
    return ApiSpec(
        stage_name=stage["StageName"],
        methods=methods,
        throttle_rate=settings.get("ThrottlingRateLimit"),
        throttle_burst=settings.get("ThrottlingBurstLimit"),
        gateway_responses=gateway_responses,
    )


class Resolver:
    """Turns ``Ref``/``Fn::GetAtt``/``Fn::Join``/``Fn::Sub`` into local values."""

    def __init__(self, refs: dict[str, str], attributes: dict[tuple[str, str], str], pseudo: dict[str, str]) -> None:
        self._refs = refs
        self._attributes = attributes
        self._pseudo = pseudo

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self._pseudo.get(argument) or self._refs[argument]
            if key == "Fn::GetAtt":
                return self._attributes[(argument[0], argument[1])]
            if key == "Fn::Join":
                separator, parts = argument
                return separator.join(str(self.resolve(part)) for part in parts)
            if key == "Fn::Select":
                index, items = argument
                return self.resolve(items)[int(index)]
            if key == "Fn::Split":
                separator, source = argument
                return str(self.resolve(source)).split(separator)
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value
