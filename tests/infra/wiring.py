"""Checks, from a synthesized template alone, that every place where one AWS service acts
on another resource is allowed on both sides, and that every alarm and graph reads a
metric AWS really publishes for a resource of this stack.

The template is first made concrete: each resource gets the physical id and ARN AWS would
give it (in a made-up account and region), every intrinsic is resolved, so policies can
be evaluated the way IAM does (explicit Deny wins; otherwise an Allow in the identity or
the resource policy; a KMS key policy must allow a service itself, or delegate to IAM).
Nothing here is a hand-kept list of what the stack contains: the edges are found by
walking the template (alarm actions, destinations, event source mappings, rule targets,
API methods and routes, state machine tasks, the functions' dispatch settings, metrics).

Each check returns a list of problems; ``check_wiring`` returns the edges it looked at, so
a test can assert it was not vacuous.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

ACCOUNT = "123456789012"
REGION = "eu-west-1"
PARTITION = "aws"
# The number Lambda gives the first published version of a function (Ref and GetAtt Version).
VERSION = "1"
STACK_UUID = "0c4e6d40-1111-2222-3333-444455556666"

# Name properties CloudFormation uses instead of generating a name (per resource type).
NAME_PROPERTY = {
    "AWS::Lambda::Function": "FunctionName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::Events::Rule": "Name",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::ApiGateway::RestApi": "Name",
    "AWS::ApiGatewayV2::Api": "Name",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::IAM::Role": "RoleName",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::ApiGateway::Stage": "StageName",
    "AWS::RDS::DBCluster": "DBClusterIdentifier",  # a cluster's Ref is its identifier
    "AWS::RDS::DBProxy": "DBProxyName",
    "AWS::ApiGatewayV2::Stage": "StageName",
}


class UnknownIntrinsic(KeyError):
    """The template uses something this resolver does not know: fail, never guess."""


class Template:
    """A synthesized template with every value resolvable to what AWS would have."""

    def __init__(self, template: Mapping[str, Any], stack_name: str) -> None:
        self.raw = copy.deepcopy(dict(template))
        self.resources: dict[str, dict[str, Any]] = self.raw["Resources"]
        self.stack_name = stack_name
        self.pseudo = {
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": REGION,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{stack_name}/{STACK_UUID}",
            "AWS::NoValue": None,
        }

    # -- resources -----------------------------------------------------------------------

    def of_type(self, resource_type: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for logical_id, resource in self.resources.items():
            if resource["Type"] == resource_type:
                yield logical_id, resource.get("Properties", {})

    def type_of(self, logical_id: str) -> str:
        return str(self.resources[logical_id]["Type"])

    def props(self, logical_id: str) -> dict[str, Any]:
        return dict(self.resources[logical_id].get("Properties", {}))

    def name(self, logical_id: str) -> str:
        """The physical name: the template's own, or one generated as CloudFormation does."""
        resource_type = self.type_of(logical_id)
        prop = NAME_PROPERTY.get(resource_type)
        if prop and prop in self.props(logical_id):
            return str(self.resolve(self.props(logical_id)[prop]))
        generated = f"{self.stack_name}-{logical_id}-GENERATED"
        return generated.lower() if resource_type == "AWS::S3::Bucket" else generated

    def arn(self, logical_id: str) -> str:
        name, resource_type = self.name(logical_id), self.type_of(logical_id)
        prefix = f"arn:{PARTITION}"
        arns = {
            "AWS::Lambda::Function": f"{prefix}:lambda:{REGION}:{ACCOUNT}:function:{name}",
            "AWS::SQS::Queue": f"{prefix}:sqs:{REGION}:{ACCOUNT}:{name}",
            "AWS::SNS::Topic": f"{prefix}:sns:{REGION}:{ACCOUNT}:{name}",
            "AWS::DynamoDB::Table": f"{prefix}:dynamodb:{REGION}:{ACCOUNT}:table/{name}",
            "AWS::S3::Bucket": f"{prefix}:s3:::{name}",
            "AWS::Events::Rule": f"{prefix}:events:{REGION}:{ACCOUNT}:rule/{name}",
            "AWS::StepFunctions::StateMachine": f"{prefix}:states:{REGION}:{ACCOUNT}:stateMachine:{name}",
            "AWS::KMS::Key": f"{prefix}:kms:{REGION}:{ACCOUNT}:key/{name}",
            "AWS::IAM::Role": f"{prefix}:iam::{ACCOUNT}:role/{name}",
            "AWS::Logs::LogGroup": f"{prefix}:logs:{REGION}:{ACCOUNT}:log-group:{name}:*",
            "AWS::SecretsManager::Secret": f"{prefix}:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf",
            "AWS::CloudWatch::Alarm": f"{prefix}:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}",
            "AWS::WAFv2::WebACL": f"{prefix}:wafv2:{REGION}:{ACCOUNT}:regional/webacl/{name}/id",
        }
        if resource_type in {"AWS::Lambda::Alias", "AWS::Lambda::Version"}:
            # A qualified function ARN: <function ARN>:<alias name or version number>.
            props = self.props(logical_id)
            function = self.arn(props["FunctionName"]["Ref"])
            return f"{function}:{props['Name'] if resource_type == 'AWS::Lambda::Alias' else VERSION}"
        if resource_type not in arns:
            raise UnknownIntrinsic(f"no ARN known for {resource_type} ({logical_id})")
        return arns[resource_type]

    def ref(self, logical_id: str) -> str:
        if logical_id in self.pseudo:
            return self.pseudo[logical_id]  # type: ignore[return-value]
        if logical_id in self.raw.get("Parameters", {}):
            return str(self.raw["Parameters"][logical_id].get("Default", logical_id))
        resource_type = self.type_of(logical_id)
        if resource_type in {
            "AWS::SNS::Topic",
            "AWS::StepFunctions::StateMachine",
            "AWS::SecretsManager::Secret",
            "AWS::Lambda::Alias",
            "AWS::Lambda::Version",
        }:
            return self.arn(logical_id)
        if resource_type == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{self.name(logical_id)}"
        if resource_type in {"AWS::ApiGateway::RestApi", "AWS::ApiGatewayV2::Api", "AWS::ApiGateway::Deployment"}:
            return f"{logical_id.lower()[:10]}"  # an API or deployment id
        if resource_type == "AWS::KMS::Key":
            return self.name(logical_id)
        return self.name(logical_id)

    def get_att(self, logical_id: str, attribute: str) -> Any:
        resource_type = self.type_of(logical_id)
        if attribute in {"Arn", "TopicArn"}:
            return self.arn(logical_id)
        name = self.name(logical_id)
        short = logical_id.lower()[:17]
        values: dict[tuple[str, str], Callable[[], Any]] = {
            ("AWS::DynamoDB::Table", "StreamArn"): lambda: f"{self.arn(logical_id)}/stream/2026-01-01T00:00:00.000",
            ("AWS::SQS::Queue", "QueueName"): lambda: name,
            ("AWS::SQS::Queue", "QueueUrl"): lambda: self.ref(logical_id),
            ("AWS::StepFunctions::StateMachine", "Name"): lambda: name,
            ("AWS::ApiGateway::RestApi", "RootResourceId"): lambda: f"root-{logical_id}",
            ("AWS::ApiGatewayV2::Api", "ApiEndpoint"): lambda: (
                f"wss://{self.ref(logical_id)}.execute-api.{REGION}.amazonaws.com"
            ),
            ("AWS::ApiGateway::Resource", "ResourceId"): lambda: logical_id,
            ("AWS::Lambda::Version", "Version"): lambda: VERSION,
            ("AWS::EC2::SecurityGroup", "GroupId"): lambda: f"sg-{short}",
            ("AWS::RDS::DBProxy", "Endpoint"): lambda: f"{name}.proxy-example.{REGION}.rds.amazonaws.com",
            ("AWS::RDS::DBProxy", "DBProxyArn"): lambda: f"arn:aws:rds:{REGION}:{ACCOUNT}:db-proxy:prx-{short}",
            ("AWS::RDS::DBCluster", "Endpoint.Port"): lambda: "5432",
            ("AWS::EC2::VPCEndpoint", "DnsEntries"): lambda: self.endpoint_dns_entries(logical_id),
        }
        value = values.get((resource_type, attribute))
        if value is None:
            raise UnknownIntrinsic(f"Fn::GetAtt {logical_id}.{attribute} ({resource_type})")
        return value()

    def endpoint_dns_entries(self, logical_id: str) -> list[str]:
        """An interface endpoint's DnsEntries, "<hosted zone id>:<DNS name>", the regional name
        first, then one per Availability Zone (Amazon VPC API Reference, DnsEntry)."""
        service = str(self.resolve(self.props(logical_id)["ServiceName"])).rsplit(".", 1)[-1]
        base = f"vpce-{logical_id.lower()[:17]}-a1b2c3d4"
        return [
            f"Z7HUB22UULQXV:{base}.{service}.{REGION}.vpce.amazonaws.com",
            f"Z7HUB22UULQXV:{base}-{REGION}a.{service}.{REGION}.vpce.amazonaws.com",
        ]

    # -- intrinsics ----------------------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        """``value`` with every intrinsic replaced by what CloudFormation would make of it."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            [(key, arg)] = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                target, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(target, attribute)
            if key == "Fn::Join":
                separator, parts = arg
                return separator.join(str(self.resolve(part)) for part in self.resolve(parts))
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                separator, text = arg
                return str(self.resolve(text)).split(separator)
            if key == "Fn::FindInMap":
                mapping, top, second = (self.resolve(part) for part in arg)
                try:
                    return self.raw["Mappings"][mapping][top][second]
                except KeyError as missing:
                    raise UnknownIntrinsic(f"Fn::FindInMap {mapping}/{top}/{second}") from missing
            if key == "Fn::Sub":
                return self._sub(arg)
            if key.startswith("Fn::"):
                raise UnknownIntrinsic(key)
        return {key: self.resolve(item) for key, item in value.items()}

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name and not name.startswith("AWS::"):
                target, attribute = name.split(".", 1)
                return self.get_att(target, attribute)
            return str(self.ref(name))

        return re.sub(r"\$\{([^}!]+)\}", replace, text)

    def find_by(self, resource_type: str, resolved: str, how: Callable[[str], str]) -> str | None:
        """The logical id of the ``resource_type`` whose ``how(id)`` is ``resolved``."""
        for logical_id, _ in self.of_type(resource_type):
            if how(logical_id) == resolved:
                return logical_id
        return None

    def lambda_target(self, name_or_arn: str) -> tuple[str, str] | None:
        """(function logical id, qualifier) of what Lambda runs for ``name_or_arn``: a name or
        ARN, unqualified (``$LATEST``) or qualified with an alias of this stack. None when the
        function or the alias does not exist here (Lambda would answer ResourceNotFound)."""
        arn = (
            name_or_arn
            if name_or_arn.startswith("arn:")
            else f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{name_or_arn}"
        )
        base, _, qualifier = arn.partition(":function:")[2].partition(":")
        function = self.find_by("AWS::Lambda::Function", base, self.name)
        if function is None:
            return None
        if qualifier in {"", "$LATEST"}:
            return function, "$LATEST"
        for _, props in self.of_type("AWS::Lambda::Alias"):
            if props["FunctionName"].get("Ref") == function and props["Name"] == qualifier:
                return function, qualifier
        return None

    def depends_on(self, logical_id: str) -> set[str]:
        """Every resource ``logical_id`` waits for: DependsOn and references, transitively."""
        seen: set[str] = set()
        pending = [logical_id]
        while pending:
            current = pending.pop()
            resource = self.resources[current]
            direct = set(_as_list(resource.get("DependsOn", []))) | _references(resource.get("Properties", {}))
            for other in direct - seen:
                if other in self.resources:
                    seen.add(other)
                    pending.append(other)
        return seen


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _references(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            arg = value["Fn::GetAtt"]
            found.add(arg[0] if isinstance(arg, list) else arg.split(".")[0])
        if "Fn::Sub" in value:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            found |= {name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text)}
        for item in value.values():
            found |= _references(item)
    elif isinstance(value, list):
        for item in value:
            found |= _references(item)
    return found


# -- IAM policy evaluation ----------------------------------------------------------------


def _wildcard(pattern: str, value: str, ignore_case: bool = False) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


@dataclass(frozen=True)
class Request:
    """One call a principal makes: who, what, on which resource, with which context keys."""

    principal: str  # a role ARN, or a service principal such as "cloudwatch.amazonaws.com"
    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_service(self) -> bool:
        return self.principal.endswith(".amazonaws.com")


def _condition_holds(condition: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    for operator, tests in condition.items():
        if_exists = operator.endswith("IfExists")
        base = operator.removesuffix("IfExists")
        for key, expected in tests.items():
            if key not in context:
                if if_exists:
                    continue
                return False
            actual, values = context[key], [str(v) for v in _as_list(expected)]
            if base in {"StringEquals", "ArnEquals"}:
                ok = actual in values
            elif base in {"StringLike", "ArnLike"}:
                ok = any(_wildcard(v, actual) for v in values)
            elif base == "StringNotEquals":
                ok = actual not in values
            elif base == "Bool":
                ok = actual.lower() in {v.lower() for v in values}
            else:
                raise UnknownIntrinsic(f"condition operator {operator}")
            if not ok:
                return False
    return True


def _principal_matches(principal: Any, request: Request) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        if request.is_service:
            return request.principal in _as_list(principal.get("Service", []))
        return any(p in {"*", request.principal} for p in _as_list(principal.get("AWS", [])))
    return False


def _account_root_is_principal(principal: Any) -> bool:
    if not isinstance(principal, dict):
        return False
    return any(p in {ACCOUNT, f"arn:{PARTITION}:iam::{ACCOUNT}:root"} for p in _as_list(principal.get("AWS", [])))


def _applies(statement: Mapping[str, Any], request: Request, resource_policy: bool) -> bool:
    if resource_policy and not _principal_matches(statement.get("Principal"), request):
        return False
    if "Action" in statement:
        if not any(_wildcard(a, request.action, ignore_case=True) for a in _as_list(statement["Action"])):
            return False
    elif any(_wildcard(a, request.action, ignore_case=True) for a in _as_list(statement.get("NotAction", []))):
        return False
    if "Resource" in statement:
        if not any(_wildcard(r, request.resource) for r in _as_list(statement["Resource"])):
            return False
    elif "NotResource" in statement and any(_wildcard(r, request.resource) for r in statement["NotResource"]):
        return False
    return _condition_holds(statement.get("Condition", {}), request.context)


class Policies:
    """Identity policies per role and resource policies per resource ARN, resolved."""

    def __init__(self, template: Template) -> None:
        self.template = template
        self.identity: dict[str, list[dict[str, Any]]] = {}
        self.resource: dict[str, list[dict[str, Any]]] = {}
        for _, props in template.of_type("AWS::IAM::Policy"):
            statements = template.resolve(props["PolicyDocument"])["Statement"]
            for role in props.get("Roles", []):
                self.identity.setdefault(template.arn(role["Ref"]), []).extend(statements)
        for role_id, props in template.of_type("AWS::IAM::Role"):
            for policy in props.get("Policies", []):
                statements = template.resolve(policy["PolicyDocument"])["Statement"]
                self.identity.setdefault(template.arn(role_id), []).extend(statements)
        for kind, targets, document in (
            ("AWS::SNS::TopicPolicy", "Topics", "PolicyDocument"),
            ("AWS::SQS::QueuePolicy", "Queues", "PolicyDocument"),
            ("AWS::S3::BucketPolicy", "Bucket", "PolicyDocument"),
        ):
            for _, props in template.of_type(kind):
                statements = template.resolve(props[document])["Statement"]
                for target in _as_list(props[targets]):
                    self.resource.setdefault(self._resource_arn(target), []).extend(statements)
        for key_id, props in template.of_type("AWS::KMS::Key"):
            self.resource.setdefault(template.arn(key_id), []).extend(template.resolve(props["KeyPolicy"])["Statement"])
        for _, props in template.of_type("AWS::Lambda::Permission"):
            self._add_lambda_permission(template.resolve(props))

    def _resource_arn(self, target: Any) -> str:
        """The ARN of a policy's target (given as Ref: a topic ARN, a queue URL, a bucket name)."""
        logical_id = target["Ref"] if isinstance(target, dict) and "Ref" in target else None
        if logical_id is None:
            raise UnknownIntrinsic(f"policy target {target!r}")
        return self.template.arn(logical_id)

    def _add_lambda_permission(self, permission: Mapping[str, Any]) -> None:
        function = str(permission["FunctionName"])
        if not function.startswith("arn:"):
            function = f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{function}"
        principal = str(permission["Principal"])
        condition: dict[str, dict[str, str]] = {}
        if "SourceArn" in permission:
            condition["ArnLike"] = {"aws:SourceArn": permission["SourceArn"]}
        if "SourceAccount" in permission:
            condition["StringEquals"] = {"aws:SourceAccount": permission["SourceAccount"]}
        self.resource.setdefault(function, []).append(
            {
                "Effect": "Allow",
                "Principal": {"Service": principal} if principal.endswith(".amazonaws.com") else {"AWS": principal},
                "Action": permission["Action"],
                "Resource": function,
                "Condition": condition,
            }
        )

    def decide(self, request: Request, resource_arn: str | None = None) -> str:
        """``allow``, ``deny`` (an explicit Deny) or ``implicit`` (nothing allows it)."""
        resource_arn = resource_arn or request.resource
        # A function's policy also covers its versions and aliases only when it says so;
        # the unqualified ARN is what is called here.
        resource_statements = self.resource.get(resource_arn, [])
        identity_statements = [] if request.is_service else self.identity.get(request.principal, [])
        applicable = [(s, True) for s in resource_statements] + [(s, False) for s in identity_statements]
        if any(s["Effect"] == "Deny" and _applies(s, request, is_res) for s, is_res in applicable):
            return "deny"
        is_key = ":kms:" in resource_arn
        resource_allows = any(s["Effect"] == "Allow" and _applies(s, request, True) for s in resource_statements)
        identity_allows = any(s["Effect"] == "Allow" and _applies(s, request, False) for s in identity_statements)
        if is_key:
            # A key policy must allow the caller, or delegate to IAM (the account as principal).
            delegates = any(
                s["Effect"] == "Allow"
                and _account_root_is_principal(s.get("Principal"))
                and _applies({**s, "Principal": "*"}, request, True)
                for s in resource_statements
            )
            return "allow" if resource_allows or (delegates and identity_allows) else "implicit"
        return "allow" if resource_allows or identity_allows else "implicit"


# -- the edges ----------------------------------------------------------------------------


@dataclass
class Edge:
    kind: str
    description: str
    problems: list[str]


class Wiring:
    def __init__(
        self,
        template: Mapping[str, Any],
        stack_name: str,
        *,
        account_logging_role_exists: bool,
        endpoints_outside_template: frozenset[str] = frozenset(),
    ) -> None:
        """``account_logging_role_exists``: the account already has API Gateway's CloudWatch
        role (``apigateway_cloudwatch_role=false``), so no stage need wait for the stack's.
        ``endpoints_outside_template``: the services a VPC of yours reaches through endpoints
        of its own (``vpc_gateway_endpoints=existing``: dynamodb, s3;
        ``vpc_lambda_endpoint=existing``: lambda), which no template shows."""
        self.t = Template(template, stack_name)
        self.policies = Policies(self.t)
        self.account_logging_role_exists = account_logging_role_exists
        self.endpoints_outside_template = endpoints_outside_template
        self.edges: list[Edge] = []

    def need(self, kind: str, description: str, request: Request, resource_arn: str | None = None) -> None:
        verdict = self.policies.decide(request, resource_arn)
        problems = [] if verdict == "allow" else [f"{request.principal} may not {request.action} on {request.resource}"]
        if verdict == "deny":
            problems[0] += " (an explicit Deny matches)"
        self.edges.append(Edge(kind, description, problems))

    def check(self, kind: str, description: str, problems: list[str]) -> None:
        self.edges.append(Edge(kind, description, problems))

    def role_of(self, function_id: str) -> str:
        role = self.t.props(function_id)["Role"]
        return str(self.t.resolve(role))

    def function_by_arn(self, arn: str) -> str | None:
        return self.t.find_by("AWS::Lambda::Function", arn.removesuffix(":$LATEST"), self.t.arn)

    # -- service → resource --------------------------------------------------------------

    def alarm_actions(self) -> None:
        for alarm_id, props in self.t.of_type("AWS::CloudWatch::Alarm"):
            alarm_arn = self.t.arn(alarm_id)
            for action in {str(a) for a in self.t.resolve(props.get("AlarmActions", []) + props.get("OKActions", []))}:
                topic = self.t.find_by("AWS::SNS::Topic", action, self.t.arn)
                if topic is None:
                    self.check("alarm→topic", f"{alarm_id} → {action}", [f"action {action} is no topic here"])
                    continue
                context = {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": alarm_arn, "aws:SecureTransport": "true"}
                self.need(
                    "alarm→topic",
                    f"{alarm_id} publishes to {topic}",
                    Request("cloudwatch.amazonaws.com", "sns:Publish", action, context),
                )
                key = self.t.props(topic).get("KmsMasterKeyId")
                if key is None:
                    continue
                key_arn = str(self.t.resolve(key))
                if "alias/aws/" in key_arn:
                    self.check("alarm→key", f"{topic} key", ["an AWS managed key: CloudWatch cannot use it"])
                    continue
                for kms_action in ("kms:GenerateDataKey", "kms:Decrypt"):
                    self.need(
                        "alarm→key",
                        f"{alarm_id} encrypts for {topic}",
                        Request("cloudwatch.amazonaws.com", kms_action, key_arn, {"aws:SourceAccount": ACCOUNT}),
                    )

    def destinations(self) -> None:
        """Asynchronous invocation destinations: the function's role sends (Lambda Developer
        Guide, "Capturing records of Lambda asynchronous invocations")."""
        for config_id, props in self.t.of_type("AWS::Lambda::EventInvokeConfig"):
            qualifier = str(self.t.resolve(props["Qualifier"]))
            target = self.t.lambda_target(f"{self.t.resolve(props['FunctionName'])}:{qualifier}")
            if target is None:
                self.check("destination", config_id, ["the config names no function (or alias) of this stack"])
                continue
            function = target[0]
            for which in ("OnFailure", "OnSuccess"):
                target = props.get("DestinationConfig", {}).get(which, {}).get("Destination")
                if target is not None:
                    self._send(f"{function} {which}", self.role_of(function), str(self.t.resolve(target)))

    def _send(self, description: str, principal: str, target: str, context: Mapping[str, str] | None = None) -> None:
        """``principal`` delivers to ``target`` (a queue, topic, function or event bus ARN)."""
        context = {"aws:SecureTransport": "true", **(context or {})}
        service = target.split(":")[2]
        action = {
            "sqs": "sqs:SendMessage",
            "sns": "sns:Publish",
            "lambda": "lambda:InvokeFunction",
            "events": "events:PutEvents",
        }[service]
        self.need("destination", description, Request(principal, action, target, context))
        if service == "sqs":
            self._queue_key(description, principal, target, "kms:GenerateDataKey")

    def _queue_key(self, description: str, principal: str, queue_arn: str, action: str) -> None:
        queue = self.t.find_by("AWS::SQS::Queue", queue_arn, self.t.arn)
        key = self.t.props(queue).get("KmsMasterKeyId") if queue else None
        if key is not None:
            self.need("destination", f"{description} (key)", Request(principal, action, str(self.t.resolve(key))))

    def event_source_mappings(self) -> None:
        """The function's role reads the source (Lambda Developer Guide, "Using Lambda with
        Amazon SQS" and "... DynamoDB": execution role permissions) and sends failures on."""
        for mapping_id, props in self.t.of_type("AWS::Lambda::EventSourceMapping"):
            target = self.t.lambda_target(str(self.t.resolve(props["FunctionName"])))
            if target is None:
                self.check("event source", mapping_id, ["the mapping names no function (or alias) of this stack"])
                continue
            function = target[0]
            role, source = self.role_of(function), str(self.t.resolve(props["EventSourceArn"]))
            if ":sqs:" in source:
                actions = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
            else:
                actions = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"]
            for action in actions:
                context = {"aws:SecureTransport": "true"}
                self.need("event source", f"{function} reads {source}", Request(role, action, source, context))
            if ":sqs:" in source:
                self._queue_key(f"{function} reads {source}", role, source, "kms:Decrypt")
            on_failure = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            if on_failure is not None:
                self._send(f"{mapping_id} on failure", role, str(self.t.resolve(on_failure)))

    def rule_targets(self) -> None:
        """EventBridge invokes a function through its resource policy and writes a target's
        dead letters through the queue's (EventBridge User Guide, "Using resource-based
        policies for Amazon EventBridge" and "Using dead-letter queues")."""
        for rule_id, props in self.t.of_type("AWS::Events::Rule"):
            rule_arn = self.t.arn(rule_id)
            context = {"aws:SourceArn": rule_arn, "aws:SourceAccount": ACCOUNT, "aws:SecureTransport": "true"}
            for target in self.t.resolve(props.get("Targets", [])):
                arn = str(target["Arn"])
                action = "lambda:InvokeFunction" if ":lambda:" in arn else "sqs:SendMessage"
                self.need("rule→target", f"{rule_id} → {arn}", Request("events.amazonaws.com", action, arn, context))
                dead_letters = target.get("DeadLetterConfig", {}).get("Arn")
                if dead_letters:
                    self.need(
                        "rule→target",
                        f"{rule_id} dead letters → {dead_letters}",
                        Request("events.amazonaws.com", "sqs:SendMessage", dead_letters, context),
                    )

    def api_methods(self) -> None:
        """API Gateway invokes a proxy integration's function through the function's policy,
        as ``arn:aws:execute-api:<region>:<account>:<api id>/<stage>/<METHOD>/<path>``."""
        stages = [(self.t.resolve(p["RestApiId"]), p["StageName"]) for _, p in self.t.of_type("AWS::ApiGateway::Stage")]
        for _, props in self.t.of_type("AWS::ApiGateway::Method"):
            integration = props.get("Integration", {})
            if integration.get("Type") != "AWS_PROXY":
                continue
            api_id = self.t.resolve(props["RestApiId"])
            path = self._resource_path(props["ResourceId"])
            for stage_api, stage in stages:
                if stage_api == api_id:
                    route = f"{props['HttpMethod']}{path}"
                    self._api_invokes(
                        f"{props['HttpMethod']} {path} on {stage}", integration["Uri"], api_id, stage, route
                    )

    def _api_invokes(self, description: str, integration_uri: Any, api_id: str, stage: str, route: str) -> None:
        """API Gateway, serving ``route`` of ``api_id``'s ``stage``, invokes the integration's function."""
        uri = str(self.t.resolve(integration_uri))
        function_arn = uri.rsplit("/functions/", maxsplit=1)[-1].removesuffix("/invocations")
        source = f"arn:{PARTITION}:execute-api:{REGION}:{ACCOUNT}:{api_id}/{stage}/{route}"
        context = {"aws:SourceArn": source, "aws:SourceAccount": ACCOUNT}
        request = Request("apigateway.amazonaws.com", "lambda:InvokeFunction", function_arn, context)
        self.need("api→function", description, request)
        function_id = self.function_by_arn(function_arn)
        if function_id and self.t.props(function_id).get("SnapStart", {}).get("ApplyOn") == "PublishedVersions":
            # $LATEST is never restored from a snapshot: the API would start cold every time.
            problems = ["invokes the unqualified function, so SnapStart never applies"]
            self.check("api→function", f"{description} uses SnapStart", problems)

    def _resource_path(self, resource: Any) -> str:
        if isinstance(resource, dict) and "Fn::GetAtt" in resource:
            return ""  # the root resource
        logical_id = resource["Ref"]
        props = self.t.props(logical_id)
        # A path parameter is matched by any value: the permission's path ends with '*' there.
        part = "x-job-id" if props["PathPart"].startswith("{") else props["PathPart"]
        return f"{self._resource_path(props['ParentId'])}/{part}"

    def websocket_routes(self) -> None:
        stages = [(self.t.resolve(p["ApiId"]), p["StageName"]) for _, p in self.t.of_type("AWS::ApiGatewayV2::Stage")]
        integrations = {i: p for i, p in self.t.of_type("AWS::ApiGatewayV2::Integration")}
        for _, route in self.t.of_type("AWS::ApiGatewayV2::Route"):
            target = str(self.t.resolve(route["Target"])).removeprefix("integrations/")
            integration_id = next(i for i in integrations if self.t.ref(i) == target or i == target)
            uri = integrations[integration_id]["IntegrationUri"]
            api_id = self.t.resolve(route["ApiId"])
            for stage_api, stage in stages:
                if stage_api == api_id:
                    self._api_invokes(f"WebSocket {route['RouteKey']}", uri, api_id, stage, route["RouteKey"])

    def state_machine_tasks(self) -> None:
        for machine_id, props in self.t.of_type("AWS::StepFunctions::StateMachine"):
            role = str(self.t.resolve(props["RoleArn"]))
            definition = json.loads(self.t.resolve(props["DefinitionString"]))
            for name, state in definition["States"].items():
                # A task names its function as its Resource (payload only) or as the
                # lambda:invoke integration's FunctionName.
                resource = str(state.get("Resource", ""))
                function = resource if ":lambda:" in resource else state.get("Parameters", {}).get("FunctionName")
                if state.get("Type") == "Task" and function:
                    self.need(
                        "state→function", f"{machine_id} {name}", Request(role, "lambda:InvokeFunction", function)
                    )
            log_groups = [
                str(self.t.resolve(d["CloudWatchLogsLogGroup"]["LogGroupArn"]))
                for d in props.get("LoggingConfiguration", {}).get("Destinations", [])
            ]
            for arn in log_groups:
                name = arn.split(":log-group:")[1].removesuffix(":*")
                problems = [] if name.startswith("/aws/vendedlogs/") else [f"{name} is not under /aws/vendedlogs/"]
                self.check("state→logs", f"{machine_id} logs to {name}", problems)

    # What a function must be able to do with the resource a dispatch setting names.
    ENVIRONMENT_NEEDS = {
        "WORKER_FUNCTION_NAME": ("AWS::Lambda::Function", "lambda:InvokeFunction"),
        "JOBS_QUEUE_URL": ("AWS::SQS::Queue", "sqs:SendMessage"),
        "STATE_MACHINE_ARN": ("AWS::StepFunctions::StateMachine", "states:StartExecution"),
        "DEAD_LETTER_QUEUE_URL": ("AWS::SQS::Queue", "sqs:SendMessage"),
        "CALLBACK_SECRET_ARN": ("AWS::SecretsManager::Secret", "secretsmanager:GetSecretValue"),
        "IDEMPOTENCY_TABLE_NAME": ("AWS::DynamoDB::Table", "dynamodb:PutItem"),
    }

    def function_settings(self) -> None:
        for function_id, props in self.t.of_type("AWS::Lambda::Function"):
            environment = props.get("Environment", {}).get("Variables", {})
            for variable, (resource_type, action) in self.ENVIRONMENT_NEEDS.items():
                if variable not in environment:
                    continue
                value = str(self.t.resolve(environment[variable]))
                if resource_type == "AWS::Lambda::Function":
                    self._dispatches_to(function_id, variable, value)
                    continue
                target = self.t.find_by(resource_type, value, self.t.ref)
                if target is None:
                    self.check("function→resource", f"{function_id} {variable}", [f"{value} is no resource here"])
                    continue
                self.need(
                    "function→resource",
                    f"{function_id} {variable}",
                    Request(self.role_of(function_id), action, self.t.arn(target), {"aws:SecureTransport": "true"}),
                )

    def _dispatches_to(self, function_id: str, variable: str, name: str) -> None:
        """``function_id`` invokes ``name`` (a function, or an alias as ``<function>:<alias>``)
        asynchronously: it may, and the invoked qualifier has its own retries and on-failure
        destination. Lambda applies the event-invoke config of the qualifier invoked, not the
        function's (Lambda API Reference, PutFunctionEventInvokeConfig: Qualifier)."""
        description = f"{function_id} {variable}"
        target = self.t.lambda_target(name)
        if target is None:
            self.check("function→resource", description, [f"{name} is no function or alias here"])
            return
        function, qualifier = target
        arn = self.t.arn(function) + ("" if qualifier == "$LATEST" else f":{qualifier}")
        request = Request(self.role_of(function_id), "lambda:InvokeFunction", arn, {"aws:SecureTransport": "true"})
        self.need("function→resource", description, request)
        if "DurableConfig" in self.t.props(function):
            # Lambda applies neither retries nor destinations to a durable execution (Lambda
            # Developer Guide, "Retries for Lambda durable functions"): its failures arrive
            # as status-change events (the rule → recorder edge), so no config is expected.
            return
        configured = [
            props
            for _, props in self.t.of_type("AWS::Lambda::EventInvokeConfig")
            if self.t.lambda_target(f"{self.t.resolve(props['FunctionName'])}:{self.t.resolve(props['Qualifier'])}")
            == target
        ]
        problems = [] if configured else [f"no event-invoke config for {qualifier}: default retries, no destination"]
        self.check("dispatch→config", f"{description} ({qualifier})", problems)

    def aliases(self) -> None:
        """An alias routes to a version of its own function; SnapStart and provisioned
        concurrency never meet on one version (Lambda Developer Guide, "Improving startup
        performance with Lambda SnapStart": SnapStart does not support provisioned concurrency)."""
        for alias_id, props in self.t.of_type("AWS::Lambda::Alias"):
            function_id = props["FunctionName"]["Ref"]
            version = props["FunctionVersion"]
            version_id = version["Fn::GetAtt"][0] if isinstance(version, dict) and "Fn::GetAtt" in version else None
            problems = []
            if version_id is None or self.t.props(version_id)["FunctionName"].get("Ref") != function_id:
                problems.append(f"routes to {version!r}, not a version of {function_id}")
            snap_start = self.t.props(function_id).get("SnapStart", {}).get("ApplyOn") == "PublishedVersions"
            if snap_start and "ProvisionedConcurrencyConfig" in props:
                problems.append("SnapStart and provisioned concurrency on one version: Lambda refuses it")
            self.check("alias→version", f"{alias_id} ({props['Name']})", problems)

    # -- a function in a VPC: every AWS call through an endpoint that admits it ---------------

    # What a role may do that the function's code never calls over its network: the Lambda
    # service's own traffic, made outside the function's VPC, or no call at all.
    NOT_FROM_THE_CODE = {
        # Lambda sends the function's logs (Lambda Developer Guide, "Sending Lambda function
        # logs to CloudWatch Logs") and runs the X-Ray daemon that sends its traces (X-Ray
        # Developer Guide, "AWS Lambda and AWS X-Ray"); it attaches the VPC's network
        # interfaces itself ("Giving Lambda functions access to a VPC").
        "logs",
        "xray",
        "ec2",
        # rds-db:connect authorizes the database connection (to the proxy, inside the VPC);
        # its token is signed on the spot, with no call to AWS (RDS User Guide, "IAM
        # database authentication").
        "rds-db",
    }
    # AWS managed policies of a function's role: the calls its code makes under each.
    MANAGED_POLICY_CALLS: dict[str, tuple[str, ...]] = {
        "AWSLambdaBasicExecutionRole": (),
        "AWSLambdaVPCAccessExecutionRole": (),
        # The durable SDK checkpoints from inside the function (Lambda Developer Guide,
        # "Security and permissions for Lambda durable functions"), on the execution's ARN.
        "AWSLambdaBasicDurableExecutionRolePolicy": (
            "lambda:CheckpointDurableExecution",
            "lambda:GetDurableExecutionState",
        ),
    }

    def vpc_endpoints(self) -> None:
        """Each function in a VPC reaches AWS only through VPC endpoints (its subnets route
        nowhere else): every call its role is granted for its code must find an endpoint of
        that service that it can reach, whose policy admits the call on the ARN AWS
        authorizes it against. A VPC endpoint policy does not grant, it only lets through
        (Amazon VPC User Guide, "Control access to VPC endpoints using endpoint policies")."""
        for function_id, props in self.t.of_type("AWS::Lambda::Function"):
            if "VpcConfig" not in props:
                continue
            for action, resource in self._code_calls(function_id):
                service = action.split(":", 1)[0]
                description = f"{function_id} {action} on {resource}"
                if service in self.endpoints_outside_template:
                    self.check("vpc→endpoint", f"{description} (through your own endpoint)", [])
                    continue
                request = Request(self.role_of(function_id), action, resource, {"aws:SecureTransport": "true"})
                self.check("vpc→endpoint", description, self._endpoint_problems(function_id, service, request))

    def _code_calls(self, function_id: str) -> list[tuple[str, str]]:
        """(action, resource) of every call the function's code may make: its role's grants,
        less the Lambda service's own traffic and what its event source mappings poll,
        each wildcard in a resource standing for one concrete name."""
        role = self.role_of(function_id)
        function_arn = self.t.arn(function_id)
        # Lambda itself polls a mapping's source, and sends to a destination or a dead-letter
        # target, with the function's role (Lambda Developer Guide, "Capturing records of
        # Lambda asynchronous invocations"): the service's calls, not the code's.
        services = {
            str(self.t.resolve(props["EventSourceArn"]))
            for _, props in self.t.of_type("AWS::Lambda::EventSourceMapping")
            if (target := self.t.lambda_target(str(self.t.resolve(props["FunctionName"])))) is not None
            and target[0] == function_id
        }
        for _, props in self.t.of_type("AWS::Lambda::EventInvokeConfig"):
            target = self.t.lambda_target(
                f"{self.t.resolve(props['FunctionName'])}:{self.t.resolve(props['Qualifier'])}"
            )
            if target is not None and target[0] == function_id:
                destinations = self.t.resolve(props.get("DestinationConfig", {}))
                services |= {str(d["Destination"]) for d in destinations.values()}
        dead_letters = self.t.resolve(self.t.props(function_id).get("DeadLetterConfig", {})).get("TargetArn")
        services |= {str(dead_letters)} if dead_letters else set()
        services |= {f"{arn}:*" for arn in services}  # a grant to invoke also names versions and aliases
        calls: list[tuple[str, str]] = []
        for statement in self.policies.identity.get(role, []):
            if statement["Effect"] != "Allow":
                continue
            for action in _as_list(statement["Action"]):
                if "*" in action:
                    raise UnknownIntrinsic(f"{function_id}: a wildcard action ({action}): grant the calls by name")
                if action.split(":", 1)[0] in self.NOT_FROM_THE_CODE:
                    continue
                for resource in _as_list(statement["Resource"]):
                    if str(resource) not in services:
                        calls.append((action, str(resource).replace("*", "x")))
        role_id = self.t.find_by("AWS::IAM::Role", role, self.t.arn)
        managed = [] if role_id is None else self.t.resolve(self.t.props(role_id).get("ManagedPolicyArns", []))
        for policy_arn in managed:
            name = str(policy_arn).rsplit("/", 1)[-1]
            if name not in self.MANAGED_POLICY_CALLS:
                raise UnknownIntrinsic(f"{function_id}: what does its code call under {name}?")
            # A durable execution's ARN: the version's (never an alias), then the execution.
            execution = f"{function_arn}:{VERSION}/durable-execution/job-0001/0c4e6d40-aaaa-bbbb-cccc-000000000001"
            calls += [(action, execution) for action in self.MANAGED_POLICY_CALLS[name]]
        return calls

    def _endpoint_problems(self, function_id: str, service: str, request: Request) -> list[str]:
        endpoints = [
            (endpoint_id, props)
            for endpoint_id, props in self.t.of_type("AWS::EC2::VPCEndpoint")
            if str(self.t.resolve(props["ServiceName"])).rsplit(".", 1)[-1] == service
        ]
        unreachable = {i: self._unreachable(function_id, i, p) for i, p in endpoints}
        reachable = [(i, p) for i, p in endpoints if not unreachable[i]]
        if not reachable:
            why = "; ".join(f"{i}: {reason}" for i, reason in unreachable.items())
            return [
                f"no route to {service}: its subnets reach AWS only through VPC endpoints"
                + (f" ({why})" if why else "")
            ]
        problems = []
        for endpoint_id, props in reachable:
            if "PolicyDocument" not in props:
                continue  # no policy: the endpoint lets every call through (full access)
            statements = self.t.resolve(props["PolicyDocument"])["Statement"]
            denied = any(s["Effect"] == "Deny" and _applies(s, request, True) for s in statements)
            allowed = any(s["Effect"] == "Allow" and _applies(s, request, True) for s in statements)
            if denied or not allowed:
                problems.append(f"the policy of {endpoint_id} refuses {request.action} on {request.resource}")
        return problems

    def _unreachable(self, function_id: str, endpoint_id: str, endpoint: Mapping[str, Any]) -> str:
        """Why ``function_id`` cannot reach the endpoint, or "" when it can."""
        vpc_config = self.t.resolve(self.t.props(function_id)["VpcConfig"])
        subnets = [str(s) for s in vpc_config["SubnetIds"]]
        if self._vpc_of(subnets) != str(self.t.resolve(endpoint["VpcId"])):
            return "in another VPC"
        if endpoint.get("VpcEndpointType") == "Gateway":
            # A gateway endpoint is a route: on every subnet's route table, or some AZ has none.
            tables = {str(t) for t in self.t.resolve(endpoint.get("RouteTableIds", []))}
            missing = [s for s in subnets if (self._route_table_of(s) or next(iter(tables), "")) not in tables]
            return f"not on the route tables of {missing}" if missing else ""
        variables = self.t.resolve(self.t.props(function_id).get("Environment", {}).get("Variables", {}))
        service = str(self.t.resolve(endpoint["ServiceName"])).rsplit(".", 1)[-1]
        named = variables.get(f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}")
        names = {f"https://{entry.split(':', 1)[1]}" for entry in self.t.endpoint_dns_entries(endpoint_id)}
        if named is not None and named not in names:
            return f"the function is pointed at {named} instead"
        if named is None and not endpoint.get("PrivateDnsEnabled", False):
            return f"no private DNS, and the function is not pointed at it (AWS_ENDPOINT_URL_{service.upper()})"
        groups = {str(g) for g in vpc_config.get("SecurityGroupIds", [])}
        admitted = [
            rule
            for rule in self._ingress_rules({str(g) for g in self.t.resolve(endpoint.get("SecurityGroupIds", []))})
            if str(rule.get("SourceSecurityGroupId")) in groups or rule.get("CidrIp") == "0.0.0.0/0"
        ]
        if not any(_covers_https(rule) for rule in admitted):
            return "its security groups admit no HTTPS from the function's"
        return ""

    def _vpc_of(self, subnets: list[str]) -> str:
        """The VPC of the function's subnets: the template's, or (subnets given by id, as with
        ``vpc=existing``) the one VPC the template names by id."""
        for subnet_id, props in self.t.of_type("AWS::EC2::Subnet"):
            if self.t.ref(subnet_id) in subnets:
                return str(self.t.resolve(props["VpcId"]))
        named = {
            str(props["VpcId"])
            for _, props in self.t.of_type("AWS::EC2::VPCEndpoint")
            if isinstance(props["VpcId"], str)
        }
        if len(named) != 1:
            raise UnknownIntrinsic(f"the VPC of subnets {subnets}")
        return named.pop()

    def _route_table_of(self, subnet: str) -> str | None:
        """The subnet's route table, when the template associates one (None: a subnet of yours,
        whose route tables are the ones named for the gateway endpoints)."""
        for _, props in self.t.of_type("AWS::EC2::SubnetRouteTableAssociation"):
            if str(self.t.resolve(props["SubnetId"])) == subnet:
                return str(self.t.resolve(props["RouteTableId"]))
        return None

    def _ingress_rules(self, groups: set[str]) -> list[dict[str, Any]]:
        rules = [
            self.t.resolve(props)
            for _, props in self.t.of_type("AWS::EC2::SecurityGroupIngress")
            if str(self.t.resolve(props["GroupId"])) in groups
        ]
        for group_id, props in self.t.of_type("AWS::EC2::SecurityGroup"):
            if self.t.get_att(group_id, "GroupId") in groups:
                rules += self.t.resolve(props.get("SecurityGroupIngress", []))
        return rules

    # -- account settings ----------------------------------------------------------------

    def logging_stages(self) -> None:
        """A stage that logs to CloudWatch needs the account's API Gateway role first."""
        accounts = [i for i, _ in self.t.of_type("AWS::ApiGateway::Account")]
        for kind in ("AWS::ApiGateway::Stage", "AWS::ApiGatewayV2::Stage"):
            for stage_id, props in self.t.of_type(kind):
                if not ({"AccessLogSetting", "AccessLogSettings"} & set(props)):
                    continue
                if self.account_logging_role_exists:
                    self.check("stage→account", stage_id, [])
                    continue
                waits = self.t.depends_on(stage_id)
                problems = [] if any(a in waits for a in accounts) else ["no AWS::ApiGateway::Account set before it"]
                for account in accounts:
                    problems += self._account_role_problems(account)
                self.check("stage→account", f"{stage_id} logs", problems)

    def _account_role_problems(self, account_id: str) -> list[str]:
        role_arn = str(self.t.resolve(self.t.props(account_id)["CloudWatchRoleArn"]))
        role = self.t.find_by("AWS::IAM::Role", role_arn, self.t.arn)
        if role is None:
            return [f"{role_arn} is no role here"]
        props = self.t.resolve(self.t.props(role))
        trusted = any(
            s["Effect"] == "Allow" and "apigateway.amazonaws.com" in _as_list(s.get("Principal", {}).get("Service"))
            for s in props["AssumeRolePolicyDocument"]["Statement"]
        )
        logs = any(p.endswith("AmazonAPIGatewayPushToCloudWatchLogs") for p in props.get("ManagedPolicyArns", []))
        retained = self.t.resources[account_id].get("DeletionPolicy") == "Retain"
        # On an account that never had an API Gateway resource, the setting needs one first.
        after_an_api = any(self.t.type_of(i) == "AWS::ApiGateway::RestApi" for i in self.t.depends_on(account_id))
        return [
            message
            for ok, message in (
                (trusted, "API Gateway may not assume the account role"),
                (logs, "the account role may not write logs"),
                (retained, "the account setting is not retained on delete"),
                (after_an_api, "the account setting does not wait for an API"),
            )
            if not ok
        ]

    # -- metrics -------------------------------------------------------------------------

    def alarm_metrics(self) -> None:
        for alarm_id, raw in self.t.of_type("AWS::CloudWatch::Alarm"):
            props = self.t.resolve(raw)
            if "MetricName" in props:
                metrics = [(props["Namespace"], props["MetricName"], props.get("Dimensions", []))]
            else:
                metrics = [
                    (m["MetricStat"]["Metric"]["Namespace"], m["MetricStat"]["Metric"]["MetricName"],
                     m["MetricStat"]["Metric"].get("Dimensions", []))
                    for m in props["Metrics"]
                    if "MetricStat" in m
                ]  # fmt: skip
            for namespace, name, dimensions in metrics:
                dims = {d["Name"]: d["Value"] for d in dimensions}
                self.check("metric", f"alarm {alarm_id}: {namespace} {name}", self._metric_problems(namespace, dims))

    def dashboard_metrics(self) -> None:
        for dashboard_id, props in self.t.of_type("AWS::CloudWatch::Dashboard"):
            body = json.loads(self.t.resolve(props["DashboardBody"]))
            for widget in body["widgets"]:
                for metric in widget.get("properties", {}).get("metrics", []):
                    fields = [m for m in metric if not isinstance(m, dict)]
                    if not fields or fields[0] == ".":
                        continue
                    namespace, name, rest = fields[0], fields[1], fields[2:]
                    dims = dict(zip(rest[::2], rest[1::2], strict=True))
                    self.check("metric", f"{dashboard_id}: {namespace} {name}", self._metric_problems(namespace, dims))

    # The dimension sets AWS publishes per namespace (each service's "CloudWatch metrics" page).
    PUBLISHED = {
        "AWS/ApiGateway": [{"ApiName", "Stage"}, {"ApiName", "Method", "Resource", "Stage"}],
        "AWS/Lambda": [{"FunctionName"}, {"FunctionName", "Resource"}],  # Resource: <function>:<alias>
        "AWS/SQS": [{"QueueName"}],
        "AWS/States": [{"StateMachineArn"}],
        "AWS/RDS": [{"DBClusterIdentifier"}],  # Aurora Serverless v2's ACUUtilization, per cluster
    }

    def _metric_problems(self, namespace: str, dims: Mapping[str, str]) -> list[str]:
        if namespace in self.PUBLISHED:
            if set(dims) not in self.PUBLISHED[namespace]:
                return [f"{namespace} publishes no metric with dimensions {sorted(dims)} worth alarming on"]
            checks = {
                "FunctionName": ("AWS::Lambda::Function", self.t.ref),
                "QueueName": ("AWS::SQS::Queue", self.t.name),
                "StateMachineArn": ("AWS::StepFunctions::StateMachine", self.t.arn),
                "ApiName": ("AWS::ApiGateway::RestApi", self.t.name),
                "DBClusterIdentifier": (
                    "AWS::RDS::DBCluster",
                    lambda i: str(self.t.props(i).get("DBClusterIdentifier")),
                ),
            }
            problems = [
                f"{dim}={dims[dim]} names no {resource_type} of this stack"
                for dim, (resource_type, how) in checks.items()
                if dim in dims and self.t.find_by(resource_type, dims[dim], how) is None
            ]
            if namespace == "AWS/Lambda" and "Resource" in dims and self.t.lambda_target(dims["Resource"]) is None:
                problems.append(f"Resource={dims['Resource']} is no alias of this stack")
            if "ApiName" in dims and self.t.stack_name not in dims["ApiName"]:
                problems.append(f"ApiName={dims['ApiName']} is not unique to this stack (other APIs may share it)")
            if "Stage" in dims and dims["Stage"] not in {
                p["StageName"] for _, p in self.t.of_type("AWS::ApiGateway::Stage")
            }:
                problems.append(f"Stage={dims['Stage']} is no stage of this stack")
            return problems
        # The functions' own metrics (Powertools EMF): their namespace and service dimension.
        environments = [
            p.get("Environment", {}).get("Variables", {}) for _, p in self.t.of_type("AWS::Lambda::Function")
        ]
        emitted = {
            (self.t.resolve(env["POWERTOOLS_METRICS_NAMESPACE"]), self.t.resolve(env["POWERTOOLS_SERVICE_NAME"]))
            for env in environments
            if "POWERTOOLS_SERVICE_NAME" in env  # CDK's own helper functions emit nothing
        }
        if set(dims) != {"service"} or (namespace, dims["service"]) not in emitted:
            return [f"no function emits {namespace} with {dict(dims)} (they emit {sorted(emitted)})"]
        if self.t.stack_name not in dims["service"]:
            return [f"service={dims['service']} is not unique to this stack: other stages count into it"]
        return []


def _covers_https(rule: Mapping[str, Any]) -> bool:
    if str(rule.get("IpProtocol")) == "-1":
        return True
    return str(rule.get("IpProtocol")) == "tcp" and int(rule.get("FromPort", 0)) <= 443 <= int(rule.get("ToPort", 0))


def check_wiring(
    template: Mapping[str, Any],
    stack_name: str,
    *,
    account_logging_role_exists: bool,
    endpoints_outside_template: frozenset[str] = frozenset(),
) -> list[Edge]:
    """Every edge of the template, each with its problems (none when it is wired right)."""
    wiring = Wiring(
        template,
        stack_name,
        account_logging_role_exists=account_logging_role_exists,
        endpoints_outside_template=endpoints_outside_template,
    )
    for check in (
        wiring.alarm_actions,
        wiring.destinations,
        wiring.event_source_mappings,
        wiring.rule_targets,
        wiring.api_methods,
        wiring.websocket_routes,
        wiring.state_machine_tasks,
        wiring.aliases,
        wiring.function_settings,
        wiring.vpc_endpoints,
        wiring.logging_stages,
        wiring.alarm_metrics,
        wiring.dashboard_metrics,
    ):
        check()
    return wiring.edges


def problems_of(edges: list[Edge]) -> list[str]:
    return [f"[{e.kind}] {e.description}: {p}" for e in edges for p in e.problems]
