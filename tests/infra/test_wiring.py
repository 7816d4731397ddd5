"""Every service-to-resource edge of every variant is allowed on both sides, and every alarm
and graph reads a metric AWS publishes for this stack's own resources (tests/infra/wiring.py).

The second half takes the fixed template, undoes one fix at a time, and expects the
checker to report exactly that failure: it would have caught each deploy-time bug.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest

from tests.infra.conftest import synth
from tests.infra.wiring import Edge, Template, check_wiring, problems_of
from tests.support import EXISTING_VPC

STACK = "AsyncJobs"  # the name tests/infra/conftest.synth gives the stack
VARIANTS = [
    (dispatch, notify, stage)
    for dispatch in ("lambda", "sqs", "stepfunctions")
    for notify in ("none", "websocket")
    for stage in ("dev", "prod")
]


def resources(template: Mapping[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {i: r for i, r in template["Resources"].items() if r["Type"] == resource_type}


def wired(context: dict[str, Any], outside: frozenset[str] = frozenset()) -> tuple[dict[str, Any], list[Edge]]:
    """The template synthesized with ``context`` and its edges, every one of them allowed
    (``outside``: the services a VPC of yours reaches through endpoints of its own)."""
    _, synthesized = synth(context)
    template = dict(synthesized.to_json())
    edges = check_wiring(template, STACK, account_logging_role_exists=False, endpoints_outside_template=outside)
    assert problems_of(edges) == []
    return template, edges


@pytest.mark.parametrize(("dispatch", "notify", "stage"), VARIANTS)
def test_every_edge_is_allowed_on_both_sides(dispatch: str, notify: str, stage: str, capsys: pytest.CaptureFixture):
    template, edges = wired({"dispatch": dispatch, "notify": notify, "stage": stage})

    # Not vacuous: the edges found are the ones the template has.
    kinds = Counter(edge.kind for edge in edges)
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    assert kinds["alarm→topic"] == len(alarms) > 10
    assert kinds["alarm→key"] == 2 * len(alarms)  # GenerateDataKey and Decrypt
    proxy_methods = [
        m for m in resources(template, "AWS::ApiGateway::Method").values()
        if m["Properties"].get("Integration", {}).get("Type") == "AWS_PROXY"
    ]  # fmt: skip
    websocket_routes = resources(template, "AWS::ApiGatewayV2::Route")
    assert (
        kinds["api→function"] == len(proxy_methods) + len(websocket_routes) == 4 + (2 if notify == "websocket" else 0)
    )
    assert kinds["stage→account"] == (2 if notify == "websocket" else 1)
    assert kinds["rule→target"] == 2  # the reaper's schedule: its function and its dead letters
    # Callbacks (and WebSocket push) read the stream: 3 actions each; sqs adds the queue's.
    mappings = len(resources(template, "AWS::Lambda::EventSourceMapping"))
    assert kinds["event source"] == 3 * mappings
    assert kinds["destination"] == {"lambda": 3, "sqs": 1, "stepfunctions": 1}[dispatch]
    assert kinds["function→resource"] == {"lambda": 4, "sqs": 3, "stepfunctions": 3}[dispatch]
    assert kinds["dispatch→config"] == (1 if dispatch == "lambda" else 0)
    assert kinds["state→function"] == (4 if dispatch == "stepfunctions" else 0)
    assert kinds["state→logs"] == (1 if dispatch == "stepfunctions" else 0)
    assert kinds["metric"] > len(alarms)  # alarms and dashboard graphs
    with capsys.disabled():
        print(f"\n  wiring {dispatch}/{notify}/{stage}: {len(edges)} edges checked, {dict(sorted(kinds.items()))}")


def test_the_database_alarm_reads_a_metric_rds_publishes_for_this_cluster():
    _, edges = wired({"database": "postgres", "stage": "prod"})
    rds = [edge for edge in edges if edge.kind == "metric" and "AWS/RDS" in edge.description]
    assert len(rds) == 1 and "ACUUtilization" in rds[0].description


def test_caught_an_alarm_on_another_clusters_metric():
    _, synthesized = synth({"database": "postgres"})

    def undo(template: dict[str, Any]) -> None:
        alarms = resources(template, "AWS::CloudWatch::Alarm").values()
        [alarm] = [a for a in alarms if "ACUUtilization" in json.dumps(a)]
        alarm["Properties"]["Dimensions"][0]["Value"] = "someone-elses-cluster"

    problems = problems_after(dict(synthesized.to_json()), undo)
    assert any("someone-elses-cluster names no AWS::RDS::DBCluster" in problem for problem in problems)


def test_without_the_account_role_the_stages_must_rely_on_the_accounts_own():
    _, synthesized = synth({"apigateway_cloudwatch_role": "false", "notify": "websocket"})
    template = dict(synthesized.to_json())
    assert resources(template, "AWS::ApiGateway::Account") == {}
    assert problems_of(check_wiring(template, STACK, account_logging_role_exists=True)) == []
    missing = problems_of(check_wiring(template, STACK, account_logging_role_exists=False))
    assert len(missing) == 2 and all("no AWS::ApiGateway::Account" in p for p in missing)


# -- each fix, undone, is caught ------------------------------------------------------------


@pytest.fixture(scope="module")
def fixed() -> dict[str, Any]:
    """A template with every edge kind: step functions, WebSocket, prod."""
    _, synthesized = synth({"dispatch": "stepfunctions", "notify": "websocket", "stage": "prod"})
    template = dict(synthesized.to_json())
    assert problems_of(check_wiring(template, STACK, account_logging_role_exists=False)) == []
    return template


def problems_after(template: dict[str, Any], undo: Any) -> list[str]:
    broken = copy.deepcopy(template)
    undo(broken)
    return problems_of(check_wiring(broken, STACK, account_logging_role_exists=False))


def replaced(value: Any, old: str, new: str) -> Any:
    """``value`` (a template value, intrinsics and all) with ``old`` replaced in its text."""
    return json.loads(json.dumps(value).replace(old, new))


def only_one(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    [resource] = resources(template, resource_type).values()
    return resource


def test_caught_a_stage_that_logs_before_the_account_has_a_logging_role(fixed):
    def undo(template: dict[str, Any]) -> None:
        [account_id] = resources(template, "AWS::ApiGateway::Account")
        del template["Resources"][account_id]
        for stage in template["Resources"].values():
            if stage["Type"].endswith("::Stage"):
                stage.pop("DependsOn", None)

    problems = problems_after(fixed, undo)
    assert len(problems) == 2 and all("[stage→account]" in p and "no AWS::ApiGateway::Account" in p for p in problems)


def test_caught_an_account_setting_made_before_any_api(fixed):
    def undo(template: dict[str, Any]) -> None:
        [account] = resources(template, "AWS::ApiGateway::Account").values()
        del account["DependsOn"]

    problems = problems_after(fixed, undo)
    assert len(problems) == 2 and all("does not wait for an API" in p for p in problems)


def test_caught_an_alarm_topic_whose_policy_only_denies(fixed):
    def undo(template: dict[str, Any]) -> None:
        document = only_one(template, "AWS::SNS::TopicPolicy")["Properties"]["PolicyDocument"]
        document["Statement"] = [s for s in document["Statement"] if s["Effect"] == "Deny"]

    problems = problems_after(fixed, undo)
    alarms = len(resources(fixed, "AWS::CloudWatch::Alarm"))
    assert len(problems) == alarms
    assert all("cloudwatch.amazonaws.com may not sns:Publish" in p for p in problems)


def test_caught_a_topic_policy_allowing_other_accounts_alarms_only(fixed):
    def undo(template: dict[str, Any]) -> None:
        document = only_one(template, "AWS::SNS::TopicPolicy")["Properties"]["PolicyDocument"]
        [allow] = [s for s in document["Statement"] if s["Effect"] == "Allow"]
        allow["Condition"]["StringEquals"]["aws:SourceAccount"] = "999999999999"

    assert len(problems_after(fixed, undo)) == len(resources(fixed, "AWS::CloudWatch::Alarm"))


def test_caught_an_alarm_key_cloudwatch_may_not_use(fixed):
    def undo(template: dict[str, Any]) -> None:
        policy = only_one(template, "AWS::KMS::Key")["Properties"]["KeyPolicy"]
        policy["Statement"] = [s for s in policy["Statement"] if "cloudwatch" not in json.dumps(s.get("Principal"))]

    problems = problems_after(fixed, undo)
    assert problems and all("[alarm→key]" in p for p in problems)


def test_caught_alarms_on_an_api_name_every_stage_shares(fixed):
    def undo(template: dict[str, Any]) -> None:
        only_one(template, "AWS::ApiGateway::RestApi")["Properties"]["Name"] = "RestApi"
        for alarm in resources(template, "AWS::CloudWatch::Alarm").values():
            for dimension in alarm["Properties"].get("Dimensions", []):
                if dimension["Name"] == "ApiName":
                    dimension["Value"] = "RestApi"

    problems = problems_after(fixed, undo)
    assert any("alarm" in p and "ApiName=RestApi is not unique" in p for p in problems)


def test_caught_an_api_alarm_without_its_stage(fixed):
    def undo(template: dict[str, Any]) -> None:
        for alarm in resources(template, "AWS::CloudWatch::Alarm").values():
            dimensions = alarm["Properties"].get("Dimensions", [])
            alarm["Properties"]["Dimensions"] = [d for d in dimensions if d["Name"] != "Stage"]

    problems = problems_after(fixed, undo)
    assert len(problems) == 2  # the 5XX and the latency alarm
    assert all("AWS/ApiGateway publishes no metric with dimensions ['ApiName']" in p for p in problems)


def test_caught_job_metrics_every_stage_counts_into(fixed):
    def undo(template: dict[str, Any]) -> None:
        for function in resources(template, "AWS::Lambda::Function").values():
            variables = function["Properties"].get("Environment", {}).get("Variables", {})
            if "POWERTOOLS_SERVICE_NAME" in variables:
                variables["POWERTOOLS_SERVICE_NAME"] = "async-jobs"
        dashboard = only_one(template, "AWS::CloudWatch::Dashboard")["Properties"]
        body = dashboard["DashboardBody"]
        dashboard["DashboardBody"] = replaced(body, f'\\"service\\",\\"{STACK}\\"', '\\"service\\",\\"async-jobs\\"')
        for alarm in resources(template, "AWS::CloudWatch::Alarm").values():
            for metric in alarm["Properties"].get("Metrics", []):
                for dimension in metric.get("MetricStat", {}).get("Metric", {}).get("Dimensions", []):
                    if dimension["Name"] == "service":
                        dimension["Value"] = "async-jobs"

    problems = problems_after(fixed, undo)
    assert any("alarm" in p and "service=async-jobs is not unique" in p for p in problems)
    assert any("Dashboard" in p and "service=async-jobs is not unique" in p for p in problems)


def test_caught_an_alarm_watching_a_function_of_another_stack(fixed):
    def undo(template: dict[str, Any]) -> None:
        for alarm in resources(template, "AWS::CloudWatch::Alarm").values():
            for dimension in alarm["Properties"].get("Dimensions", []):
                if dimension["Name"] == "FunctionName":
                    dimension["Value"] = "someone-elses-function"

    problems = problems_after(fixed, undo)
    assert problems and all("FunctionName=someone-elses-function names no AWS::Lambda::Function" in p for p in problems)


def test_caught_a_schedule_that_may_not_invoke_its_function(fixed):
    def undo(template: dict[str, Any]) -> None:
        for permission_id, permission in resources(template, "AWS::Lambda::Permission").items():
            if permission["Properties"]["Principal"] == "events.amazonaws.com":
                del template["Resources"][permission_id]

    problems = problems_after(fixed, undo)
    assert len(problems) == 1 and "events.amazonaws.com may not lambda:InvokeFunction" in problems[0]


def test_caught_an_api_method_whose_permission_names_another_stage(fixed):
    def undo(template: dict[str, Any]) -> None:
        for permission in resources(template, "AWS::Lambda::Permission").values():
            source = permission["Properties"].get("SourceArn")
            if permission["Properties"]["Principal"] == "apigateway.amazonaws.com":
                permission["Properties"]["SourceArn"] = replaced(source, "/POST/jobs", "/POST/elsewhere")

    problems = problems_after(fixed, undo)
    assert len(problems) == 1 and "[api→function] POST /jobs" in problems[0]


def test_caught_a_tls_deny_that_also_matches_tls_requests(fixed):
    def undo(template: dict[str, Any]) -> None:
        for policy in resources(template, "AWS::SQS::QueuePolicy").values():
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                if statement["Effect"] == "Deny":
                    statement["Condition"] = {"Bool": {"aws:SecureTransport": "true"}}

    problems = problems_after(fixed, undo)
    assert problems and all("(an explicit Deny matches)" in p for p in problems)


def test_caught_a_workflow_role_that_may_not_invoke_a_step(fixed):
    def undo(template: dict[str, Any]) -> None:
        for policy in resources(template, "AWS::IAM::Policy").values():
            document = policy["Properties"]["PolicyDocument"]
            document["Statement"] = [
                s for s in document["Statement"] if "ProcessStep" not in json.dumps(s.get("Resource"))
            ]

    problems = problems_after(fixed, undo)
    assert any("[state→function]" in p and "Process" in p for p in problems)


def test_caught_workflow_logs_outside_vended_logs(fixed):
    def undo(template: dict[str, Any]) -> None:
        for group in resources(template, "AWS::Logs::LogGroup").values():
            name = group["Properties"].get("LogGroupName")
            if name is not None:
                group["Properties"]["LogGroupName"] = replaced(name, "/aws/vendedlogs/states/", "/my/states/")

    problems = problems_after(fixed, undo)
    assert len(problems) == 1 and "is not under /aws/vendedlogs/" in problems[0]


def test_caught_a_dispatch_target_the_submit_function_may_not_start(fixed):
    def undo(template: dict[str, Any]) -> None:
        for policy in resources(template, "AWS::IAM::Policy").values():
            document = policy["Properties"]["PolicyDocument"]
            document["Statement"] = [s for s in document["Statement"] if s["Action"] != "states:StartExecution"]

    problems = problems_after(fixed, undo)
    assert len(problems) == 1 and "may not states:StartExecution" in problems[0]


# -- cold-start options: the API invokes the alias, with a permission on the alias -------------


@pytest.mark.parametrize("cold_start", ["snapstart", "provisioned"])
def test_the_api_invokes_the_live_alias_with_its_own_permission(cold_start: str):
    _, edges = wired({"api_cold_start": cold_start, "notify": "websocket"})
    kinds = Counter(edge.kind for edge in edges)
    assert kinds["alias→version"] == 3  # submit, status, cancel


@pytest.fixture(scope="module")
def snapstart() -> dict[str, Any]:
    _, synthesized = synth({"api_cold_start": "snapstart"})
    return dict(synthesized.to_json())


def test_caught_a_permission_on_the_function_when_the_api_invokes_the_alias(snapstart):
    # A function's policy does not cover its aliases: API Gateway would get 403 from Invoke.
    def undo(template: dict[str, Any]) -> None:
        for permission in resources(template, "AWS::Lambda::Permission").values():
            name = permission["Properties"]["FunctionName"]
            if "Ref" in name and template["Resources"][name["Ref"]]["Type"] == "AWS::Lambda::Alias":
                function = template["Resources"][name["Ref"]]["Properties"]["FunctionName"]
                permission["Properties"]["FunctionName"] = {"Fn::GetAtt": [function["Ref"], "Arn"]}

    problems = problems_after(snapstart, undo)
    assert len(problems) == 4 and all("[api→function]" in p and p.endswith(":live") for p in problems), problems


def test_caught_an_api_that_invokes_a_snapstart_function_unqualified(snapstart):
    # Allowed, and it works, but $LATEST is never restored from a snapshot.
    def undo(template: dict[str, Any]) -> None:
        aliases = resources(template, "AWS::Lambda::Alias")
        for resource in template["Resources"].values():
            if resource["Type"] in {"AWS::ApiGateway::Method", "AWS::Lambda::Permission"}:
                for alias_id, alias in aliases.items():
                    function_arn = json.dumps({"Fn::GetAtt": [alias["Properties"]["FunctionName"]["Ref"], "Arn"]})
                    resource["Properties"] = replaced(
                        resource["Properties"], json.dumps({"Ref": alias_id}), function_arn
                    )

    problems = problems_after(snapstart, undo)
    assert len(problems) == 4 and all("SnapStart never applies" in p for p in problems), problems


def test_caught_snapstart_with_provisioned_concurrency(snapstart):
    def undo(template: dict[str, Any]) -> None:
        for alias in resources(template, "AWS::Lambda::Alias").values():
            alias["Properties"]["ProvisionedConcurrencyConfig"] = {"ProvisionedConcurrentExecutions": 1}

    problems = problems_after(snapstart, undo)
    assert len(problems) == 3 and all("[alias→version]" in p and "Lambda refuses" in p for p in problems)


@pytest.mark.parametrize("dispatch", ["lambda", "sqs", "stepfunctions"])
@pytest.mark.parametrize("cold_start", ["snapstart", "provisioned"])
def test_the_job_runner_is_reached_through_its_alias_in_every_dispatch_mode(dispatch: str, cold_start: str):
    template, edges = wired({"worker_cold_start": cold_start, "dispatch": dispatch})
    kinds = Counter(edge.kind for edge in edges)
    assert kinds["alias→version"] == 1
    assert kinds["dispatch→config"] == (1 if dispatch == "lambda" else 0)
    # What invokes the job runner names the alias: the submit function, the queue's mapping,
    # or the workflow's process step.
    [alias_id] = resources(template, "AWS::Lambda::Alias")
    functions = resources(template, "AWS::Lambda::Function").values()
    mappings = resources(template, "AWS::Lambda::EventSourceMapping").values()
    invokers = {
        "lambda": [f for f in functions if "WORKER_FUNCTION_NAME" in json.dumps(f["Properties"].get("Environment"))],
        "sqs": [m for m in mappings if "JobsQueue" in json.dumps(m["Properties"]["EventSourceArn"])],
        "stepfunctions": list(resources(template, "AWS::StepFunctions::StateMachine").values()),
    }[dispatch]
    assert len(invokers) == 1 and alias_id in json.dumps(invokers[0])


def test_caught_retries_and_destination_left_on_the_function_when_the_alias_is_invoked():
    # The submit function invokes <worker>:live; a config on $LATEST does not apply to that,
    # so a failed job would get Lambda's defaults and reach no on-failure recorder.
    _, synthesized = synth({"worker_cold_start": "snapstart"})
    template = dict(synthesized.to_json())

    def undo(template: dict[str, Any]) -> None:
        for config in resources(template, "AWS::Lambda::EventInvokeConfig").values():
            if "Fn::Select" in json.dumps(config["Properties"]["Qualifier"]):  # the alias's
                config["Properties"]["Qualifier"] = "$LATEST"

    problems = problems_after(template, undo)
    assert (
        len(problems) == 1 and "[dispatch→config]" in problems[0] and "no event-invoke config for live" in problems[0]
    )


def test_provisioned_concurrency_is_graphed_per_alias_with_metrics_lambda_publishes():
    template, edges = wired({"api_cold_start": "provisioned", "worker_cold_start": "provisioned"})
    per_alias = [e for e in edges if e.kind == "metric" and "ProvisionedConcurrency" in e.description]
    assert len(per_alias) == 2 * 4  # utilisation and spillover, for submit, status, cancel and the worker

    def undo(template: dict[str, Any]) -> None:  # graph the unqualified function instead
        [dashboard] = resources(template, "AWS::CloudWatch::Dashboard").values()
        dashboard["Properties"] = replaced(dashboard["Properties"], ":live", ":prod")

    problems = problems_after(template, undo)
    assert len(problems) == 8 and all("is no alias of this stack" in p for p in problems), problems


# -- a function in a VPC: each AWS call through an endpoint whose policy admits it -------------

NETWORKS = {"new": {"vpc": "new"}, "existing": EXISTING_VPC, "database": {"database": "postgres"}}
# The job-running function's own calls: the jobs table (read, conditional writes) and the
# result objects; a durable worker also checkpoints its execution.
CODE_CALLS = {"dynamodb": 2, "s3": 1}
DURABLE_CALLS = {"lambda": 2}


def endpoint_statements(template: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(endpoint id, its service, statement index) for every endpoint policy statement."""
    resolved = Template(template, STACK)
    return [
        (endpoint_id, str(resolved.resolve(endpoint["Properties"]["ServiceName"])).rsplit(".", 1)[-1], index)
        for endpoint_id, endpoint in resources(template, "AWS::EC2::VPCEndpoint").items()
        for index, _ in enumerate(endpoint["Properties"]["PolicyDocument"]["Statement"])
    ]


def vpc_problems(template: dict[str, Any], undo: Any, outside: frozenset[str] = frozenset()) -> list[str]:
    broken = copy.deepcopy(template)
    undo(broken)
    edges = check_wiring(broken, STACK, account_logging_role_exists=False, endpoints_outside_template=outside)
    return problems_of(edges)


@pytest.mark.parametrize("network", list(NETWORKS))
@pytest.mark.parametrize("dispatch", ["lambda", "sqs", "stepfunctions", "durable"])
def test_each_call_from_a_vpc_passes_an_endpoint_whose_policy_admits_it(
    dispatch: str, network: str, capsys: pytest.CaptureFixture
):
    template, edges = wired({"dispatch": dispatch, **NETWORKS[network]})
    calls = [edge for edge in edges if edge.kind == "vpc→endpoint"]
    expected = {**CODE_CALLS, **(DURABLE_CALLS if dispatch == "durable" else {})}
    # Not vacuous: each call the job-running function's code makes, and nothing else (its
    # logs, traces, queue polling and destinations are the Lambda service's traffic).
    assert Counter(edge.description.split(" ", 2)[1].split(":")[0] for edge in calls) == expected
    if dispatch == "durable":
        checkpoints = [edge.description for edge in calls if "Checkpoint" in edge.description]
        assert [":function:AsyncJobs-DurableWorker:1/durable-execution/" in d for d in checkpoints] == [True]

    # Each endpoint statement dropped, then narrowed: the calls it let through are refused.
    statements = endpoint_statements(template)
    assert {service for _, service, _ in statements} == set(expected)
    for endpoint_id, service, index in statements:

        def drop(t: dict[str, Any], endpoint_id: str = endpoint_id, index: int = index) -> None:
            del t["Resources"][endpoint_id]["Properties"]["PolicyDocument"]["Statement"][index]

        def narrow(t: dict[str, Any], endpoint_id: str = endpoint_id, index: int = index) -> None:
            statement = t["Resources"][endpoint_id]["Properties"]["PolicyDocument"]["Statement"][index]
            statement["Resource"] = {"Fn::Join": ["", [statement["Resource"], "-narrowed"]]}

        for undo in (drop, narrow):
            problems = vpc_problems(template, undo)
            assert len(problems) == expected[service], (undo.__name__, problems)
            assert all(f"the policy of {endpoint_id} refuses {service}:" in p for p in problems)

        def remove(t: dict[str, Any], endpoint_id: str = endpoint_id) -> None:
            del t["Resources"][endpoint_id]

        problems = vpc_problems(template, remove)
        assert len(problems) == expected[service] and all(f"no route to {service}" in p for p in problems)
    with capsys.disabled():
        print(f"\n  vpc endpoints {dispatch}/{network}: {len(calls)} calls, {len(statements)} statements mutated")


def test_caught_the_checkpoint_policy_that_named_function_slash_star():
    # The shipped policy before the fix: arn:...:function/* never matches an execution's ARN.
    template, _ = wired({"dispatch": "durable", "vpc": "new"})

    def undo(t: dict[str, Any]) -> None:
        [endpoint] = [e for e in resources(t, "AWS::EC2::VPCEndpoint").values() if "lambda" in json.dumps(e)]
        [statement] = endpoint["Properties"]["PolicyDocument"]["Statement"]
        statement["Resource"] = {
            "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":lambda:", {"Ref": "AWS::Region"}, ":",
                              {"Ref": "AWS::AccountId"}, ":function/*"]]
        }  # fmt: skip

    problems = vpc_problems(template, undo)
    assert len(problems) == 2
    assert all("refuses lambda:" in p and "/durable-execution/" in p for p in problems)


def test_caught_a_worker_in_an_existing_vpc_not_pointed_at_the_lambda_endpoint():
    # No private DNS there: without AWS_ENDPOINT_URL_LAMBDA the SDK calls Lambda's public name.
    template, _ = wired({"dispatch": "durable", **EXISTING_VPC})

    def undo(t: dict[str, Any]) -> None:
        for function in resources(t, "AWS::Lambda::Function").values():
            function["Properties"].get("Environment", {}).get("Variables", {}).pop("AWS_ENDPOINT_URL_LAMBDA", None)

    problems = vpc_problems(template, undo)
    assert len(problems) == 2 and all("no route to lambda" in p and "no private DNS" in p for p in problems)


def test_caught_a_lambda_endpoint_that_does_not_admit_the_worker_on_443():
    template, _ = wired({"dispatch": "durable", "vpc": "new"})

    def undo(t: dict[str, Any]) -> None:
        for rule in resources(t, "AWS::EC2::SecurityGroupIngress").values():
            rule["Properties"]["FromPort"] = rule["Properties"]["ToPort"] = 5432

    problems = vpc_problems(template, undo)
    assert len(problems) == 2 and all("admit no HTTPS" in p for p in problems)


def test_caught_a_gateway_endpoint_missing_from_one_subnets_route_table():
    template, _ = wired({"vpc": "new"})

    def undo(t: dict[str, Any]) -> None:
        for endpoint in resources(t, "AWS::EC2::VPCEndpoint").values():
            endpoint["Properties"]["RouteTableIds"] = endpoint["Properties"]["RouteTableIds"][:1]

    problems = vpc_problems(template, undo)
    assert len(problems) == 3 and all("not on the route tables of" in p for p in problems)


@pytest.mark.parametrize(
    ("settings", "outside"),
    [
        ({"vpc_gateway_endpoints": "existing"}, frozenset({"dynamodb", "s3"})),
        (
            {"vpc_gateway_endpoints": "existing", "vpc_lambda_endpoint": "existing"},
            frozenset({"dynamodb", "s3", "lambda"}),
        ),
    ],
)
def test_endpoints_of_your_own_vpc_are_taken_as_given_and_only_then(settings: dict[str, str], outside: frozenset[str]):
    context = {"dispatch": "durable", **EXISTING_VPC, **settings}
    _, edges = wired(context, outside)
    yours = [
        edge for edge in edges if edge.kind == "vpc→endpoint" and "(through your own endpoint)" in edge.description
    ]
    assert len(yours) == sum(({**CODE_CALLS, **DURABLE_CALLS})[service] for service in outside)
    # Not a blanket pass: without your endpoints, those calls have no route.
    _, synthesized = synth(context)
    problems = problems_of(check_wiring(dict(synthesized.to_json()), STACK, account_logging_role_exists=False))
    assert len(problems) == len(yours) and all("no route to" in p for p in problems)
