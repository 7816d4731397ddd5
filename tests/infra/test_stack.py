"""The synthesized template has every resource and setting the design promises."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from local.template import load
from stacks.async_jobs_stack import AsyncJobsStack
from stacks.config import AppConfig, ConfigError
from tests.infra import wiring
from tests.infra.conftest import fresh_synth, function_id, only, synth

HANDLERS = {
    "submit": "jobs.handlers.submit.handler",
    "status": "jobs.handlers.status.handler",
    "cancel": "jobs.handlers.cancel.handler",
    "worker": "jobs.handlers.worker.handler",
    "on_failure": "jobs.handlers.on_failure.handler",
    "reaper": "jobs.handlers.reaper.handler",
    "callbacks": "jobs.handlers.callbacks.handler",
}


# -- job store ---------------------------------------------------------------------------


def test_jobs_table(template: Template):
    template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "Properties": {
                "KeySchema": [{"AttributeName": "job_id", "KeyType": "HASH"}],
                "BillingMode": "PAY_PER_REQUEST",
                "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "SSESpecification": {"SSEEnabled": True},
                "DeletionProtectionEnabled": True,
            },
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
        },
    )


def test_jobs_table_indexes_match_what_the_repository_queries(template: Template):
    from jobs import repository
    from stacks import job_store

    names = (
        repository.ACTIVE_INDEX,
        repository.ACTIVE_SHARD,
        repository.STUCK_AFTER,
        repository.OWNER_INDEX,
        repository.OWNER_SHARD,
        repository.LISTING_ORDER,
    )
    assert names == (
        job_store.ACTIVE_INDEX,
        job_store.ACTIVE_SHARD,
        job_store.STUCK_AFTER,
        job_store.OWNER_INDEX,
        job_store.OWNER_SHARD,
        job_store.LISTING_ORDER,
    )
    [(_, table)] = [
        t
        for t in template.find_resources("AWS::DynamoDB::Table").items()
        if "GlobalSecondaryIndexes" in t[1]["Properties"]
    ]
    active, by_owner = sorted(table["Properties"]["GlobalSecondaryIndexes"], key=lambda index: index["IndexName"])
    # Sparse, keys only: the reaper reads just the unfinished jobs' ids.
    assert active == {
        "IndexName": "active-jobs",
        "KeySchema": [
            {"AttributeName": "active_shard", "KeyType": "HASH"},
            {"AttributeName": "stuck_after", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "KEYS_ONLY"},
    }
    assert {"AttributeName": "stuck_after", "AttributeType": "N"} in table["Properties"]["AttributeDefinitions"]
    # Listings: each owner's job ids over several keys, newest first. Keys only: DynamoDB
    # writes an index only when an item enters or leaves it, or changes a key or projected
    # attribute, so progress reports and status changes never write it ("If a write to a table
    # does not require a global secondary index update, no write capacity is consumed from
    # the index", https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.ThroughputConsiderations.Writes).
    assert by_owner == {
        "IndexName": "owner-shards",
        "KeySchema": [
            {"AttributeName": "owner_shard", "KeyType": "HASH"},
            {"AttributeName": "listing_order", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "KEYS_ONLY"},
    }


def test_upgrading_keeps_the_old_owner_index_as_it_was_beside_the_new_one():
    """CloudFormation adds or deletes one global secondary index per update, not both
    ("AWS::DynamoDB::Table", GlobalSecondaryIndexes: "If you do both in the same update
    (for example, by changing the index's logical ID), the update fails",
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-dynamodb-table.html;
    DynamoDB itself: "You can create or delete only one global secondary index per UpdateTable
    operation", https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateTable.html).
    A stack deployed with the old index therefore upgrades in two deploys: the first keeps
    it, unchanged to the letter, and adds the new one; the second deletes it."""
    _, upgrading = synth({"keep_legacy_owner_index": True})
    [(_, table)] = [
        t
        for t in upgrading.find_resources("AWS::DynamoDB::Table").items()
        if "GlobalSecondaryIndexes" in t[1]["Properties"]
    ]
    indexes = {index["IndexName"]: index for index in table["Properties"]["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"active-jobs", "owner-shards", "owner-jobs"}
    # The definition the stack was deployed with (git show e69a0ee:stacks/job_store.py).
    assert indexes["owner-jobs"] == {
        "IndexName": "owner-jobs",
        "KeySchema": [
            {"AttributeName": "owner", "KeyType": "HASH"},
            {"AttributeName": "created_at", "KeyType": "RANGE"},
        ],
        "Projection": {
            "NonKeyAttributes": [
                "task",
                "status",
                "updated_at",
                "attempts",
                "progress_percent",
                "progress_message",
                "error_type",
                "error_message",
                "cancel_requested_at",
            ],
            "ProjectionType": "INCLUDE",
        },
    }


def test_results_bucket_is_private_encrypted_tls_only_and_expires_with_the_jobs(template: Template):
    bucket_id, bucket = only(template, "AWS::S3::Bucket")
    props = bucket["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    [rule] = props["LifecycleConfiguration"]["Rules"]
    assert (rule["Prefix"], rule["ExpirationInDays"], rule["Status"]) == (
        "results/",
        7,
        "Enabled",
    )  # job_retention_days
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert bucket["DeletionPolicy"] == "Retain"
    [(_, policy)] = template.find_resources("AWS::S3::BucketPolicy").items()
    [deny] = policy["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert {"Ref": bucket_id} == policy["Properties"]["Bucket"]


def test_idempotency_table_uses_powertools_layout(template: Template):
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "TimeToLiveSpecification": {"AttributeName": "expiration", "Enabled": True},
        },
    )


def test_destroy_setting_makes_stateful_resources_deletable():
    _, template = synth({"removal_policy": "destroy"})
    for resource in template.find_resources("AWS::DynamoDB::Table").values():
        assert resource["DeletionPolicy"] == "Delete"
        assert resource["Properties"]["DeletionProtectionEnabled"] is False
    for resource in template.find_resources("AWS::Logs::LogGroup").values():
        assert resource["DeletionPolicy"] == "Delete"


# -- functions ---------------------------------------------------------------------------


def test_every_function_shares_the_baseline(template: Template):
    concrete = wiring.Template(template.to_json(), "AsyncJobs")
    functions = template.find_resources("AWS::Lambda::Function")
    assert {f["Properties"]["Handler"] for f in functions.values()} == set(HANDLERS.values())
    for function in functions.values():
        props = function["Properties"]
        assert props["Runtime"] == "python3.14"
        assert props["Architectures"] == ["arm64"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        # The public layer, from the account that publishes it in the commercial partition.
        [layer] = concrete.resolve(props["Layers"])
        assert layer == "arn:aws:lambda:eu-west-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python314-arm64:38"
        env = props["Environment"]["Variables"]
        assert env["POWERTOOLS_SERVICE_NAME"] == "AsyncJobs"  # the stack's name: one stage's metrics only
        assert env["JOBS_TABLE_NAME"]["Ref"].startswith("JobStoreJobsTable")
        assert env["MAX_ATTEMPTS"] == "3"
        assert "LoggingConfig" in props  # its own log group, with retention


def test_log_groups_keep_logs_for_the_configured_days(template: Template):
    groups = template.find_resources("AWS::Logs::LogGroup")
    assert len(groups) == len(HANDLERS) + 1  # one per function and the API's access logs
    assert {g["Properties"]["RetentionInDays"] for g in groups.values()} == {365}  # the prod preset


def test_worker_timeout_retries_and_on_failure_destination(template: Template):
    worker = function_id(template, HANDLERS["worker"])
    recorder = function_id(template, HANDLERS["on_failure"])
    template.has_resource_properties(
        "AWS::Lambda::Function", {"Handler": HANDLERS["worker"], "Timeout": 900, "MemorySize": 1024}
    )
    template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "FunctionName": {"Ref": worker},
            "MaximumRetryAttempts": 2,
            "MaximumEventAgeInSeconds": 3600,
            "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [recorder, "Arn"]}}},
        },
    )


def test_on_failure_recorder_dead_letters_into_the_queue_either_way(template: Template):
    queue = only(template, "AWS::SQS::Queue")[0]
    recorder = function_id(template, HANDLERS["on_failure"])
    template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "FunctionName": {"Ref": recorder},
            "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [queue, "Arn"]}}},
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": HANDLERS["on_failure"],
            "Environment": {"Variables": Match.object_like({"DEAD_LETTER_QUEUE_URL": {"Ref": queue}})},
        },
    )


def test_dead_letter_queue_is_encrypted_and_tls_only(template: Template):
    queue_id, queue = only(template, "AWS::SQS::Queue")
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 86400
    template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "Queues": [{"Ref": queue_id}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            },
        },
    )


def test_reserved_concurrency_only_when_configured(template: Template):
    worker = template.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": HANDLERS["worker"]}})
    assert "ReservedConcurrentExecutions" not in next(iter(worker.values()))["Properties"]
    _, configured = synth({"worker_reserved_concurrency": "20"})
    configured.has_resource_properties(
        "AWS::Lambda::Function", {"Handler": HANDLERS["worker"], "ReservedConcurrentExecutions": 20}
    )


def _policy_of(template: Template, handler: str) -> list[dict]:
    role = only(template, "AWS::Lambda::Function", {"Handler": handler})[1]["Properties"]["Role"]["Fn::GetAtt"][0]
    [policy] = [
        p for p in template.find_resources("AWS::IAM::Policy").values() if {"Ref": role} in p["Properties"]["Roles"]
    ]
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def _actions(statements: list[dict]) -> set[str]:
    actions: set[str] = set()
    for statement in statements:
        value = statement["Action"]
        actions.update([value] if isinstance(value, str) else value)
    return actions


def test_least_privilege_per_function(template: Template):
    xray = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    status = _policy_of(template, HANDLERS["status"])
    # BatchGetItem is granted on the table's ARN, as AWS's own read-only policy does
    # (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-only-permissions-on-table-items.html);
    # Query on the index's ARN (iam-policy-specific-table-indexes.html).
    assert _actions(status) - xray == {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "s3:GetObject"}
    [listing] = [s for s in status if s["Action"] == "dynamodb:Query"]
    assert listing["Resource"]["Fn::Join"][1][1] == "/index/owner-shards"
    [reads] = [s for s in status if "dynamodb:BatchGetItem" in s["Action"]]
    assert (
        reads["Resource"]["Fn::GetAtt"][0].startswith("JobStoreJobsTable")
        and reads["Resource"]["Fn::GetAtt"][1] == "Arn"
    )
    assert _actions(_policy_of(template, HANDLERS["cancel"])) - xray == {"dynamodb:GetItem", "dynamodb:UpdateItem"}
    assert _actions(_policy_of(template, HANDLERS["worker"])) - xray == {
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "lambda:InvokeFunction",  # its on-failure destination
        "s3:PutObject",
    }
    for handler, action in ((HANDLERS["worker"], "s3:PutObject"), (HANDLERS["status"], "s3:GetObject")):
        [results] = [s for s in _policy_of(template, handler) if s["Action"] == action]
        assert results["Resource"]["Fn::Join"][1][1] == "/results/*"  # stored results only
    assert _actions(_policy_of(template, HANDLERS["submit"])) - xray == {
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:GetItem",
        "dynamodb:DeleteItem",
        "lambda:InvokeFunction",
    }
    assert _actions(_policy_of(template, HANDLERS["on_failure"])) - xray == {
        "dynamodb:UpdateItem",
        "sqs:SendMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
    }
    callbacks = _policy_of(template, HANDLERS["callbacks"])
    assert _actions(callbacks) - xray == {
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "dynamodb:DescribeStream",  # the event source mapping reads the stream as the function
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
        "s3:GetObject",
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
        "sqs:SendMessage",  # the mapping's on-failure destination
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
    }
    reaper = _policy_of(template, HANDLERS["reaper"])
    assert _actions(reaper) - xray == {"dynamodb:Query", "dynamodb:UpdateItem"}
    [query] = [s for s in reaper if s["Action"] == "dynamodb:Query"]
    assert query["Resource"]["Fn::Join"][1][1] == "/index/active-jobs"  # that index, nothing else
    for handler in HANDLERS.values():
        for statement in _policy_of(template, handler):
            if statement["Resource"] == "*":
                # ListStreams has no resource-level permissions and reads no data (stream names only).
                assert set(_actions([statement])) <= xray | {"dynamodb:ListStreams"}, statement
            if handler not in (HANDLERS["reaper"], HANDLERS["status"]):
                assert "/index/" not in json.dumps(statement["Resource"]), statement


def test_reaper_runs_on_a_schedule_with_its_deadline(template: Template):
    reaper = function_id(template, HANDLERS["reaper"])
    [rule] = template.find_resources("AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"] == "rate(5 minutes)"
    [target] = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [reaper, "Arn"]}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 300}
    assert "DeadLetterConfig" in target
    # Every function gets the deadline: event age 3600 + worker timeout 900 + slack 300.
    for function in template.find_resources("AWS::Lambda::Function").values():
        assert function["Properties"]["Environment"]["Variables"]["STUCK_AFTER_SECONDS"] == "4800"


def test_reaper_schedule_and_deadline_are_configurable():
    _, template = synth({"reaper_interval_minutes": 1, "reaper_slack_seconds": 60, "worker_max_event_age_seconds": 600})
    [rule] = template.find_resources("AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    worker = only(template, "AWS::Lambda::Function", {"Handler": HANDLERS["worker"]})[1]
    assert worker["Properties"]["Environment"]["Variables"]["STUCK_AFTER_SECONDS"] == str(600 + 900 + 60)


# -- API ---------------------------------------------------------------------------------


def test_rest_api_is_regional(template: Template):
    template.has_resource_properties("AWS::ApiGateway::RestApi", {"EndpointConfiguration": {"Types": ["REGIONAL"]}})


def test_methods_use_iam_auth_and_29s_lambda_proxy_integrations(template: Template):
    methods = template.find_resources("AWS::ApiGateway::Method")
    assert sorted(m["Properties"]["HttpMethod"] for m in methods.values()) == ["DELETE", "GET", "GET", "POST"]
    targets = {
        "POST": function_id(template, HANDLERS["submit"]),
        "GET": function_id(template, HANDLERS["status"]),
        "DELETE": function_id(template, HANDLERS["cancel"]),
    }
    for method in methods.values():
        props = method["Properties"]
        assert props["AuthorizationType"] == "AWS_IAM"
        integration = props["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        assert integration["TimeoutInMillis"] == 29_000
        assert targets[props["HttpMethod"]] in json.dumps(integration["Uri"])
        assert "RequestValidatorId" in props


def test_post_body_is_validated_against_the_shared_schema(template: Template):
    model_id, model = only(template, "AWS::ApiGateway::Model")
    with open("lambdas/jobs/schemas/submit_request.json") as schema_file:
        assert model["Properties"]["Schema"] == json.load(schema_file)
    template.has_resource_properties(
        "AWS::ApiGateway::RequestValidator", {"ValidateRequestBody": True, "ValidateRequestParameters": True}
    )
    template.has_resource_properties(
        "AWS::ApiGateway::Method",
        {"HttpMethod": "POST", "RequestModels": {"application/json": {"Ref": model_id}}},
    )
    template.has_resource_properties(
        "AWS::ApiGateway::GatewayResponse",
        {
            "ResponseType": "BAD_REQUEST_BODY",
            "ResponseTemplates": {"application/json": Match.string_like_regexp("message")},
        },
    )


def test_stage_throttling_tracing_and_json_access_logs(template: Template):
    _, stage = only(template, "AWS::ApiGateway::Stage")
    props = stage["Properties"]
    assert props["StageName"] == "v1"
    assert props["TracingEnabled"] is True
    [settings] = props["MethodSettings"]
    assert settings["ThrottlingRateLimit"] == 100  # the prod preset
    assert settings["ThrottlingBurstLimit"] == 200
    log_format = json.loads(props["AccessLogSetting"]["Format"])
    assert {"requestId", "status", "integrationLatency", "caller"} <= set(log_format)


def test_throttling_is_configurable():
    _, template = synth({"api_throttle_rate_limit": "7", "api_throttle_burst_limit": "9"})
    [settings] = only(template, "AWS::ApiGateway::Stage")[1]["Properties"]["MethodSettings"]
    assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == (7, 9)


# -- monitoring --------------------------------------------------------------------------


def _alarms(template: Template) -> dict[str, dict]:
    return {k: v["Properties"] for k, v in template.find_resources("AWS::CloudWatch::Alarm").items()}


def test_headline_5xx_alarm_and_latency_alarm(template: Template):
    alarms = _alarms(template).values()
    five_xx = [a for a in alarms if a.get("MetricName") == "5XXError"]
    latency = [a for a in alarms if a.get("MetricName") == "IntegrationLatency"]
    assert len(five_xx) == 1
    assert five_xx[0]["Threshold"] == 1
    assert five_xx[0]["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert len(latency) == 1
    assert latency[0]["ExtendedStatistic"] == "p99"
    assert latency[0]["Threshold"] == 25_000


def test_errors_and_throttles_alarm_for_each_function(template: Template):
    alarms = list(_alarms(template).values())
    for handler in HANDLERS.values():
        fn = function_id(template, handler)
        for metric in ("Errors", "Throttles"):
            matching = [
                a
                for a in alarms
                if a.get("MetricName") == metric and {"Ref": fn} in [d["Value"] for d in a["Dimensions"]]
            ]
            assert len(matching) == 1, (handler, metric)


def test_dead_letter_queue_depth_alarm(template: Template):
    queue = only(template, "AWS::SQS::Queue")[0]
    [alarm] = [a for a in _alarms(template).values() if a.get("MetricName") == "ApproximateNumberOfMessagesVisible"]
    assert alarm["Threshold"] == 0
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": [queue, "QueueName"]}


def test_every_alarm_notifies_the_topic_and_ignores_missing_data(template: Template):
    topic = only(template, "AWS::SNS::Topic")[0]
    alarms = _alarms(template)
    assert len(alarms) == 2 + 2 * len(HANDLERS) + 2  # 5XX, latency; per function; failed jobs, DLQ
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [{"Ref": topic}]
        assert alarm["OKActions"] == [{"Ref": topic}]
        assert alarm["TreatMissingData"] == "notBreaching"


def test_failed_jobs_rate_alarm(template: Template):
    [alarm] = [a for a in _alarms(template).values() if "of finished jobs failed" in a["AlarmDescription"]]
    assert alarm["Threshold"] == 10 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    expression = next(m for m in alarm["Metrics"] if "Expression" in m)
    assert expression["Expression"] == "IF(completed + failed >= 5, 100 * failed / (completed + failed), 0)"
    used = {m["Id"]: m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m}
    namespace = AppConfig.from_mapping({}).name.pascal  # the app's name: AsyncJobs unless renamed
    assert {k: (v["Namespace"], v["MetricName"]) for k, v in used.items()} == {
        "completed": (namespace, "JobsCompleted"),
        "failed": (namespace, "JobsFailed"),
    }
    assert used["failed"]["Dimensions"] == [{"Name": "service", "Value": "AsyncJobs"}]  # as Powertools emits


def _dashboard_body(template: Template) -> str:
    [(_, dashboard)] = template.find_resources("AWS::CloudWatch::Dashboard").items()
    body = dashboard["Properties"]["DashboardBody"]
    # The body is a Fn::Join of JSON text and tokens; the text parts are what we check.
    return "".join(part if isinstance(part, str) else "<token>" for part in body["Fn::Join"][1])


def test_dashboard_shows_routes_latency_outcomes_duration_dead_letters_and_throttles(template: Template):
    widgets = json.loads(_dashboard_body(template).replace('"<token>"', '"t"').replace("<token>", "t"))["widgets"]
    titles = [w["properties"].get("title") for w in widgets]
    for title in (
        "Requests by route",
        "4XX by route",
        "5XX by route",
        "Integration latency (ms) against the 29 s cut-off",
        "Jobs by outcome",
        "Job duration (ms) against the worker timeout",
        "Dead-letter queue depth",
        "Throttles",
        "Alarms",
    ):
        assert title in titles, title
    by_title = {w["properties"].get("title"): w["properties"] for w in widgets}
    routes = {tuple(m[5:8:2]) for m in by_title["5XX by route"]["metrics"]}  # (Method, Resource)
    assert routes == {("POST", "/jobs"), ("GET", "/jobs"), ("GET", "/jobs/{job_id}"), ("DELETE", "/jobs/{job_id}")}
    latency = by_title["Integration latency (ms) against the 29 s cut-off"]
    assert latency["annotations"]["horizontal"][0]["value"] == 29_000
    duration = by_title["Job duration (ms) against the worker timeout"]
    assert duration["annotations"]["horizontal"][0]["value"] == 900_000
    outcomes = {m[1] for m in by_title["Jobs by outcome"]["metrics"]}
    assert outcomes == {"JobsSubmitted", "JobsCompleted", "JobsFailed", "JobsCancelled", "JobsReaped"}
    assert len(by_title["Throttles"]["metrics"]) == len(HANDLERS)
    assert len(by_title["Alarms"]["alarms"]) == len(_alarms(template))


def test_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use(template: Template):
    key_id, key = only(template, "AWS::KMS::Key")
    assert key["Properties"]["EnableKeyRotation"] is True
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    assert any(s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"} for s in statements)
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]}})


def test_alarm_email_subscription_only_when_configured(template: Template):
    template.resource_count_is("AWS::SNS::Subscription", 0)
    _, with_email = synth({"alarm_email": "ops@example.com"})
    with_email.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"})


def test_alarm_thresholds_are_configurable():
    _, template = synth({"alarm_5xx_threshold": "5", "alarm_latency_p99_ms": "20000", "alarm_period_minutes": "1"})
    alarms = _alarms(template).values()
    [five_xx] = [a for a in alarms if a.get("MetricName") == "5XXError"]
    [latency] = [a for a in alarms if a.get("MetricName") == "IntegrationLatency"]
    assert (five_xx["Threshold"], five_xx["Period"]) == (5, 60)
    assert latency["Threshold"] == 20_000


# -- outputs -----------------------------------------------------------------------------


def test_outputs(template: Template):
    outputs = template.find_outputs("*")
    assert {"ApiUrl", "JobsTableName", "AlarmTopicArn", "DeadLetterQueueUrl", "CallbackSecretArn"} <= set(outputs)


# -- webhook callbacks -------------------------------------------------------------------


def test_callbacks_read_the_jobs_stream_filtered_to_finished_jobs_with_a_callback(template: Template):
    job_key = {"KeySchema": [{"AttributeName": "job_id", "KeyType": "HASH"}]}
    table_id, table = only(template, "AWS::DynamoDB::Table", job_key)
    assert table["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    sender = function_id(template, HANDLERS["callbacks"])
    [mapping] = [
        m["Properties"]
        for m in template.find_resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": sender}
    ]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [table_id, "StreamArn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["MaximumRetryAttempts"] == 3
    dead_letters = next(k for k in template.find_resources("AWS::SQS::Queue") if "DeadLetter" in k)
    assert mapping["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": [dead_letters, "Arn"]}
    [pattern] = [json.loads(f["Pattern"]) for f in mapping["FilterCriteria"]["Filters"]]
    new_image = pattern["dynamodb"]["NewImage"]
    assert new_image["status"] == {"S": ["COMPLETED", "FAILED", "CANCELLED"]}
    # Recording the outcome does not re-trigger; on the leaf, where exists matching works.
    assert new_image["callback_status"] == {"S": [{"exists": False}]}


def test_callbacks_sign_with_a_generated_secret_they_alone_may_read(template: Template):
    secret_id, secret = only(template, "AWS::SecretsManager::Secret")
    generated = secret["Properties"]["GenerateSecretString"]
    assert generated["PasswordLength"] >= 32 and "SecretString" not in secret["Properties"]
    variables = only(template, "AWS::Lambda::Function", {"Handler": HANDLERS["callbacks"]})[1]["Properties"][
        "Environment"
    ]["Variables"]
    assert variables["CALLBACK_SECRET_ARN"] == {"Ref": secret_id}
    assert "CALLBACK_REQUIRE_HTTPS" not in variables  # deployed: https and public addresses only (the default)
    assert "CALLBACK_ALLOW_LOOPBACK" not in variables
    readers = [
        p
        for p in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": secret_id} in [s["Resource"] for s in p["Properties"]["PolicyDocument"]["Statement"]]
    ]
    assert len(readers) == 1


# -- stages and WAF ----------------------------------------------------------------------


def test_dev_stage_is_disposable_and_has_no_firewall():
    _, template = synth({"stage": "dev"})
    for resource_type in ("AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::Logs::LogGroup"):
        for resource in template.find_resources(resource_type).values():
            assert resource["DeletionPolicy"] == "Delete", resource_type
    assert template.find_resources("AWS::WAFv2::WebACL") == {}
    template.resource_count_is("Custom::S3AutoDeleteObjects", 1)  # the bucket empties itself on destroy
    assert {t["Value"] for t in _tags(template) if t["Key"] == "stage"} == {"dev"}


def _tags(template: Template) -> list[dict]:
    [(_, table)] = [
        t
        for t in template.find_resources("AWS::DynamoDB::Table").items()
        if "GlobalSecondaryIndexes" in t[1]["Properties"]
    ]
    return list(table["Properties"]["Tags"])


def test_prod_stage_is_tagged_and_names_follow_the_stack():
    assert {"Key": "stage", "Value": "prod"} in _tags(synth({"stage": "prod"})[1])


def test_waf_rate_limit_body_limit_and_common_rules_on_the_stage(template: Template):
    _, acl = only(template, "AWS::WAFv2::WebACL")
    props = acl["Properties"]
    assert props["Scope"] == "REGIONAL" and props["DefaultAction"] == {"Allow": {}}
    rules = {rule["Name"]: rule for rule in props["Rules"]}
    assert list(rules) == ["RateLimitPerIp", "BodyTooLarge", "AWSManagedRulesCommonRuleSet"]
    rate = rules["RateLimitPerIp"]
    assert rate["Statement"]["RateBasedStatement"] == {"Limit": 2000, "AggregateKeyType": "IP"}
    assert rate["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429
    size = rules["BodyTooLarge"]["Statement"]["SizeConstraintStatement"]
    assert (size["ComparisonOperator"], size["Size"]) == ("GT", 65536)
    assert size["FieldToMatch"] == {"Body": {"OversizeHandling": "MATCH"}}
    assert rules["BodyTooLarge"]["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 413
    # Bodies up to the limit must reach WAF whole, or the size rule could not see them.
    assert props["AssociationConfig"]["RequestBody"]["API_GATEWAY"]["DefaultSizeInspectionLimit"] == "KB_64"
    common = rules["AWSManagedRulesCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]
    # Its 8 KB body rule would refuse valid jobs (ours, above, enforces the real limit), and so
    # would its other body rules (HTML, ../, IPv4 URLs, the metadata address in an input) and
    # its rule against signed clients without a User-Agent: counted, so they show in metrics.
    counted = {o["Name"] for o in common["RuleActionOverrides"] if o["ActionToUse"] == {"Count": {}}}
    assert len(counted) == len(common["RuleActionOverrides"])
    assert counted == {
        "SizeRestrictions_BODY", "CrossSiteScripting_BODY", "GenericLFI_BODY", "GenericRFI_BODY",
        "EC2MetaDataSSRF_BODY", "NoUserAgent_HEADER",
    }  # fmt: skip
    assert not any(name.endswith(("_URIPATH", "_QUERYARGUMENTS", "_COOKIE")) for name in counted)
    for body in props["CustomResponseBodies"].values():
        assert body["ContentType"] == "APPLICATION_JSON" and "message" in json.loads(body["Content"])
    _, association = only(template, "AWS::WAFv2::WebACLAssociation")
    stage_id = only(template, "AWS::ApiGateway::Stage")[0]
    assert stage_id in json.dumps(association["Properties"]["ResourceArn"])


def test_bodies_beyond_what_waf_can_inspect_are_left_to_the_submit_function():
    _, template = synth({"stage": "prod", "max_request_bytes": 200 * 1024, "max_inline_result_bytes": 64 * 1024})
    _, acl = only(template, "AWS::WAFv2::WebACL")
    assert "BodyTooLarge" not in {rule["Name"] for rule in acl["Properties"]["Rules"]}


# -- dispatch=sqs ------------------------------------------------------------------------


def test_sqs_dispatch_queue_event_source_and_least_privilege():
    _, template = synth({"dispatch": "sqs"})
    queues = template.find_resources("AWS::SQS::Queue")
    [(queue_id, queue)] = [(k, q) for k, q in queues.items() if "RedrivePolicy" in q["Properties"]]
    props = queue["Properties"]
    assert props["SqsManagedSseEnabled"] is True
    assert props["VisibilityTimeout"] == 6 * 900  # six times the worker timeout
    assert props["RedrivePolicy"]["maxReceiveCount"] == 3  # one receive per attempt
    assert props["MessageRetentionPeriod"] >= 3 * 6 * 900  # every attempt fits
    [mapping_props] = [
        m["Properties"]
        for m in template.find_resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    ]
    assert mapping_props["BatchSize"] == 1
    assert mapping_props["ScalingConfig"] == {"MaximumConcurrency": 10}
    assert mapping_props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping_props["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    handlers = {f["Properties"]["Handler"] for f in template.find_resources("AWS::Lambda::Function").values()}
    assert "jobs.handlers.queue_worker.handler" in handlers
    assert HANDLERS["on_failure"] not in handlers and HANDLERS["worker"] not in handlers
    template.resource_count_is("AWS::Lambda::EventInvokeConfig", 0)
    xray = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    submit = _policy_of(template, HANDLERS["submit"])
    assert "lambda:InvokeFunction" not in _actions(submit)
    [send] = [s for s in submit if "sqs:SendMessage" in json.dumps(s["Action"])]
    assert send["Resource"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    worker = _actions(_policy_of(template, "jobs.handlers.queue_worker.handler")) - xray
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "dynamodb:UpdateItem", "s3:PutObject"} <= worker
    submit_env = only(template, "AWS::Lambda::Function", {"Handler": HANDLERS["submit"]})[1]["Properties"]
    variables = submit_env["Environment"]["Variables"]
    assert variables["DISPATCH"] == "sqs" and "JOBS_QUEUE_URL" in variables and "WORKER_FUNCTION_NAME" not in variables


def test_sqs_dispatch_deadline_covers_the_queue_retention():
    from stacks.config import AppConfig

    config = AppConfig.from_mapping({"dispatch": "sqs"})
    assert config.stuck_after_seconds == config.queue_retention_seconds + 900 + 300
    _, template = synth({"dispatch": "sqs"})
    reaper = only(template, "AWS::Lambda::Function", {"Handler": HANDLERS["reaper"]})[1]
    assert reaper["Properties"]["Environment"]["Variables"]["STUCK_AFTER_SECONDS"] == str(config.stuck_after_seconds)


# -- dispatch=stepfunctions --------------------------------------------------------------


def _definition(template: Template) -> dict:
    [(_, machine)] = template.find_resources("AWS::StepFunctions::StateMachine").items()
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    # Function ARNs are GetAtt tokens inside the JSON text; name them by logical id.
    text = "".join(part if isinstance(part, str) else part["Fn::GetAtt"][0] for part in parts)
    return json.loads(text)


def test_stepfunctions_dispatch_runs_prepare_process_finalise_with_timeouts_retries_and_catches():
    _, template = synth({"dispatch": "stepfunctions"})
    [(_, machine)] = template.find_resources("AWS::StepFunctions::StateMachine").items()
    props = machine["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is False  # no job data in logs
    definition = _definition(template)
    states = definition["States"]
    assert definition["StartAt"] == "Prepare"
    assert definition["TimeoutSeconds"] >= 3 * 900
    assert states["Prepare"]["Next"] == "Ready?"
    assert {c["Next"] for c in states["Ready?"]["Choices"]} == {"Process", "Failed"}
    assert states["Process"]["Next"] == "Processed?"
    assert {c["Next"] for c in states["Processed?"]["Choices"]} == {"Finalise", "Failed"}
    assert states["Finalise"]["Next"] == "Done"
    for name, timeout in (("Prepare", 60), ("Process", 930), ("Finalise", 60)):
        task = states[name]
        assert task["TimeoutSeconds"] == timeout
        assert "Handler" not in task["Resource"]
        assert task["Parameters"]["execution.$"] == "$$.Execution.Name"  # the attempt id
        [catch] = task["Catch"]
        assert catch["ErrorEquals"] == ["States.ALL"] and catch["Next"] == f"{name}Failed"
        assert states[f"{name}Failed"]["Result"] == name.lower()  # the failing step, for the job
        assert states[f"{name}Failed"]["Next"] == "RecordFailure"
        assert any("Lambda.ServiceException" in r["ErrorEquals"] for r in task["Retry"])
        # A SnapStart version Lambda is (re)initialising is waited for, not a failed job; and
        # a throttled invoke waits its turn for minutes, with capped delays.
        assert any("Lambda.SnapStartNotReadyException" in r["ErrorEquals"] for r in task["Retry"])
        [throttled] = [r for r in task["Retry"] if "Lambda.TooManyRequestsException" in r["ErrorEquals"]]
        assert throttled["MaxAttempts"] == 12 and throttled["MaxDelaySeconds"] == 60
    [task_retry] = [r for r in states["Process"]["Retry"] if "TransientTaskError" in r["ErrorEquals"]]
    # Lambda reports a raised exception by its class name: the names the process step raises.
    from jobs.registry import TransientTaskError
    from jobs.steps import TimedOut

    # And a process that died or outlived the function: Lambda's names, and Step Functions' documented one.
    crashed = {"Runtime.ExitError", "Runtime.OutOfMemory", "Sandbox.Timedout", "Lambda.Unknown"}
    assert (
        set(task_retry["ErrorEquals"]) == {TransientTaskError.__name__, TimedOut.__name__, "States.Timeout"} | crashed
    )
    assert task_retry["MaxAttempts"] == 2 and task_retry["BackoffRate"] == 2  # worker_retry_attempts
    assert states["RecordFailure"]["Next"] == "Failed"
    assert states["Failed"]["Type"] == "Fail"
    handlers = {f["Properties"]["Handler"] for f in template.find_resources("AWS::Lambda::Function").values()}
    steps = {f"jobs.handlers.steps.{n}" for n in ("prepare", "process", "finalise", "record_failure")}
    assert steps <= handlers
    assert HANDLERS["worker"] not in handlers and HANDLERS["on_failure"] not in handlers
    process = only(template, "AWS::Lambda::Function", {"Handler": "jobs.handlers.steps.process"})[1]
    assert process["Properties"]["Timeout"] == 900


def test_stepfunctions_dispatch_least_privilege():
    _, template = synth({"dispatch": "stepfunctions"})
    xray = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    machine_id = next(iter(template.find_resources("AWS::StepFunctions::StateMachine")))
    submit = _policy_of(template, HANDLERS["submit"])
    assert "lambda:InvokeFunction" not in _actions(submit)
    [start] = [s for s in submit if s["Action"] == "states:StartExecution"]
    assert start["Resource"] == {"Ref": machine_id}
    variables = only(template, "AWS::Lambda::Function", {"Handler": HANDLERS["submit"]})[1]["Properties"][
        "Environment"
    ]["Variables"]
    assert variables["DISPATCH"] == "stepfunctions" and variables["STATE_MACHINE_ARN"] == {"Ref": machine_id}
    for name in ("prepare", "finalise", "record_failure"):
        assert _actions(_policy_of(template, f"jobs.handlers.steps.{name}")) - xray == {
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
        }
    assert _actions(_policy_of(template, "jobs.handlers.steps.process")) - xray == {
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "s3:PutObject",
    }
    machine_policies = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in template.find_resources("AWS::IAM::Policy").values()
        if any(
            "lambda:InvokeFunction" in json.dumps(s["Action"]) for s in p["Properties"]["PolicyDocument"]["Statement"]
        )
    ]
    [machine] = machine_policies
    invoked = {
        ref["Fn::GetAtt"][0]
        for s in machine
        if s["Action"] == "lambda:InvokeFunction"
        for ref in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
        if isinstance(ref, dict) and "Fn::GetAtt" in ref
    }
    assert len(invoked) == 4  # the four step functions, nothing else


def test_stepfunctions_deadline_covers_the_whole_execution():
    from stacks.config import AppConfig

    config = AppConfig.from_mapping({"dispatch": "stepfunctions"})
    assert config.stuck_after_seconds == config.workflow_timeout_seconds + 300
    _, template = synth({"dispatch": "stepfunctions"})
    assert _definition(template)["TimeoutSeconds"] == config.workflow_timeout_seconds


# -- notify=websocket --------------------------------------------------------------------


def test_websocket_notify_api_iam_connect_connections_table_and_push_from_the_stream():
    _, template = synth({"notify": "websocket"})
    [(api_id, api)] = template.find_resources("AWS::ApiGatewayV2::Api").items()
    assert api["Properties"]["ProtocolType"] == "WEBSOCKET"
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in template.find_resources("AWS::ApiGatewayV2::Route").values()
    }
    assert set(routes) == {"$connect", "$disconnect"}
    assert routes["$connect"]["AuthorizationType"] == "AWS_IAM"
    [stage] = template.find_resources("AWS::ApiGatewayV2::Stage").values()
    assert "AccessLogSettings" in stage["Properties"]
    assert stage["Properties"]["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
    [table] = [t for k, t in template.find_resources("AWS::DynamoDB::Table").items() if "Connections" in k]
    props = table["Properties"]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    [index] = props["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "job-connections" and index["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    push = function_id(template, "jobs.handlers.websocket.push")
    [mapping] = [
        m["Properties"]
        for m in template.find_resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": push}
    ]
    assert "StreamArn" in json.dumps(mapping["EventSourceArn"])
    assert mapping["MaximumRecordAgeInSeconds"] == 60  # a stale push is worthless
    assert json.loads(mapping["FilterCriteria"]["Filters"][0]["Pattern"]) == {"eventName": ["MODIFY"]}
    variables = only(template, "AWS::Lambda::Function", {"Handler": "jobs.handlers.websocket.push"})[1]["Properties"][
        "Environment"
    ]["Variables"]
    assert "WEBSOCKET_CALLBACK_URL" in variables and "CONNECTIONS_TABLE_NAME" in variables
    for handler in (HANDLERS["submit"], HANDLERS["status"]):
        env = only(template, "AWS::Lambda::Function", {"Handler": handler})[1]["Properties"]["Environment"]
        assert "WEBSOCKET_URL" in env["Variables"]  # answers carry the Link to subscribe
    assert "WebSocketUrl" in template.find_outputs("*")
    assert api_id


def test_websocket_notify_least_privilege():
    _, template = synth({"notify": "websocket"})
    xray = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    assert _actions(_policy_of(template, "jobs.handlers.websocket.connect")) - xray == {
        "dynamodb:PutItem",
        "dynamodb:GetItem",
    }
    assert _actions(_policy_of(template, "jobs.handlers.websocket.disconnect")) - xray == {"dynamodb:DeleteItem"}
    push = _policy_of(template, "jobs.handlers.websocket.push")
    assert _actions(push) - xray == {
        "dynamodb:DeleteItem",
        "dynamodb:Query",
        "s3:GetObject",
        "execute-api:ManageConnections",
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
    }
    [manage] = [s for s in push if s["Action"] == "execute-api:ManageConnections"]
    assert "@connections/*" in json.dumps(manage["Resource"])


def test_without_websocket_there_is_no_websocket_api():
    _, template = synth({})
    template.resource_count_is("AWS::ApiGatewayV2::Api", 0)
    env = only(template, "AWS::Lambda::Function", {"Handler": HANDLERS["status"]})[1]["Properties"]["Environment"]
    assert "WEBSOCKET_URL" not in env["Variables"]


def test_stepfunctions_dispatch_alarms_on_executions_that_never_recorded_their_end():
    _, template = synth({"dispatch": "stepfunctions"})
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    [alarm] = [a for k, a in alarms.items() if "WorkflowExecutionsTimedOutOrAborted" in k]
    metrics = {m.get("MetricStat", {}).get("Metric", {}).get("MetricName") for m in alarm["Properties"]["Metrics"]}
    assert {"ExecutionsTimedOut", "ExecutionsAborted"} <= metrics
    for name in ("Prepare", "Finalise", "RecordFailure", "Worker"):  # Worker: the Process step's function
        assert any(f"{name}Errors" in k for k in alarms), name


# -- deploy-time correctness (what only AWS would catch) -----------------------------------


def test_api_gateway_gets_its_account_logging_role_retained_and_stages_wait_for_it():
    _, template = synth({"notify": "websocket"})  # dev: everything else is destroyed on delete
    account_id, account = only(template, "AWS::ApiGateway::Account")
    assert account["DeletionPolicy"] == "Retain"
    role_id = account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    role = template.to_json()["Resources"][role_id]
    assert role["DeletionPolicy"] == "Retain"
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "apigateway.amazonaws.com"
    }
    assert "AmazonAPIGatewayPushToCloudWatchLogs" in json.dumps(role["Properties"]["ManagedPolicyArns"])
    for stage_type in ("AWS::ApiGateway::Stage", "AWS::ApiGatewayV2::Stage"):
        _, stage = only(template, stage_type)
        assert account_id in stage["DependsOn"]


def test_the_account_setting_waits_for_an_api():
    _, template = synth()
    _, account = only(template, "AWS::ApiGateway::Account")
    [api_id] = template.find_resources("AWS::ApiGateway::RestApi")
    assert api_id in account["DependsOn"]


def test_stepfunctions_caps_the_step_that_runs_the_task():
    _, template = synth({"dispatch": "stepfunctions", "worker_reserved_concurrency": 5})
    _, process = only(template, "AWS::Lambda::Function", {"Handler": "jobs.handlers.steps.process"})
    assert process["Properties"]["ReservedConcurrentExecutions"] == 5
    _, prepare = only(template, "AWS::Lambda::Function", {"Handler": "jobs.handlers.steps.prepare"})
    assert "ReservedConcurrentExecutions" not in prepare["Properties"]


def test_the_account_logging_role_can_be_left_to_the_account():
    _, template = synth({"apigateway_cloudwatch_role": "false"})
    template.resource_count_is("AWS::ApiGateway::Account", 0)


def test_apis_and_alarms_are_named_after_the_stack():
    _, template = synth({"notify": "websocket"})
    only(template, "AWS::ApiGateway::RestApi", {"Name": "AsyncJobs"})
    only(template, "AWS::ApiGatewayV2::Api", {"Name": "AsyncJobs-websocket"})
    names = [a["Properties"]["AlarmName"] for a in template.find_resources("AWS::CloudWatch::Alarm").values()]
    assert names and all(name.startswith("AsyncJobs-") for name in names)
    assert "AsyncJobs-Api5xxErrors" in names


def test_a_changed_request_model_makes_a_new_deployment(monkeypatch, tmp_path):
    import stacks.api

    def deployment_id() -> str:
        _, template = fresh_synth()
        [(logical_id, _)] = template.find_resources("AWS::ApiGateway::Deployment").items()
        return logical_id

    before = deployment_id()
    schema = json.loads(stacks.api.SUBMIT_REQUEST_SCHEMA.read_text())
    schema["properties"]["note"] = {"type": "string"}
    changed = tmp_path / "submit_request.json"
    changed.write_text(json.dumps(schema))
    monkeypatch.setattr(stacks.api, "SUBMIT_REQUEST_SCHEMA", changed)
    after = deployment_id()
    assert after != before
    _, template = fresh_synth()  # and the stage serves the new one
    only(template, "AWS::ApiGateway::Stage", {"DeploymentId": {"Ref": after}})


def test_a_partition_without_the_public_powertools_layer_fails_at_synth():
    import aws_cdk as cdk
    import pytest

    from stacks.async_jobs_stack import AsyncJobsStack
    from stacks.config import AppConfig, ConfigError

    app = cdk.App()
    with pytest.raises(ConfigError, match="not published in the 'aws-cn' partition"):
        AsyncJobsStack(
            app,
            "AsyncJobs",
            config=AppConfig.from_context(app.node.try_get_context),
            env=cdk.Environment(account="123456789012", region="cn-north-1"),
        )


def test_an_environment_agnostic_stack_looks_the_layer_publisher_up_per_partition(template: Template):
    # CloudFormation resolves Fn::FindInMap before creating anything: in a partition the
    # mapping lacks, the deployment is refused at once, naming the mapping.
    assert template.to_json()["Mappings"]["PowertoolsLayerPublisher"] == {"aws": {"account": "017000801446"}}


# -- cold-start options --------------------------------------------------------------------

API_HANDLERS = ("submit", "status", "cancel")


def integration_targets(template: Template) -> set[str]:
    """The logical ids the REST methods' integration URIs name (a function's or an alias's)."""
    targets = set()
    for method in template.find_resources("AWS::ApiGateway::Method").values():
        for part in method["Properties"]["Integration"]["Uri"]["Fn::Join"][1]:
            if isinstance(part, dict) and "Ref" in part and not part["Ref"].startswith("AWS::"):
                targets.add(part["Ref"])
            if isinstance(part, dict) and "Fn::GetAtt" in part:
                targets.add(part["Fn::GetAtt"][0])
    return targets


def test_without_a_cold_start_option_the_api_invokes_the_functions(template: Template):
    assert template.find_resources("AWS::Lambda::Alias") == {}
    assert template.find_resources("AWS::Lambda::Version") == {}
    assert integration_targets(template) == {function_id(template, HANDLERS[name]) for name in API_HANDLERS}
    for function in template.find_resources("AWS::Lambda::Function").values():
        assert "SnapStart" not in function["Properties"]


def test_snapstart_restores_the_api_functions_published_versions_through_a_live_alias():
    _, template = synth({"api_cold_start": "snapstart"})
    aliases = template.find_resources("AWS::Lambda::Alias")
    assert integration_targets(template) == set(aliases)
    for name in API_HANDLERS:
        function = function_id(template, HANDLERS[name])
        props = template.to_json()["Resources"][function]["Properties"]
        assert props["SnapStart"] == {"ApplyOn": "PublishedVersions"}
        [alias_id] = [i for i, a in aliases.items() if a["Properties"]["FunctionName"] == {"Ref": function}]
        alias = aliases[alias_id]["Properties"]
        assert alias["Name"] == "live" and "ProvisionedConcurrencyConfig" not in alias
        version_id = alias["FunctionVersion"]["Fn::GetAtt"][0]
        version = template.to_json()["Resources"][version_id]
        # A replaced version (and its cached snapshot, billed while it exists) is deleted.
        assert version["Properties"]["FunctionName"] == {"Ref": function}
        assert version["DeletionPolicy"] == "Delete"
        # API Gateway may invoke the alias: the permission names the alias itself.
        permissions = template.find_resources(
            "AWS::Lambda::Permission", {"Properties": {"FunctionName": {"Ref": alias_id}}}
        )
        assert len(permissions) >= 2  # the stage's and the console test's, per method
    for name in ("worker", "on_failure", "reaper", "callbacks"):  # not behind the API: unchanged
        assert "SnapStart" not in template.to_json()["Resources"][function_id(template, HANDLERS[name])]["Properties"]


def test_provisioned_concurrency_keeps_the_live_alias_warm():
    _, template = synth({"api_cold_start": "provisioned", "api_provisioned_concurrency": 2})
    aliases = template.find_resources("AWS::Lambda::Alias")
    assert len(aliases) == 3 and integration_targets(template) == set(aliases)
    for alias in aliases.values():
        assert alias["Properties"]["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": 2}
    for function in template.find_resources("AWS::Lambda::Function").values():
        assert "SnapStart" not in function["Properties"]  # Lambda refuses both on one version


def test_snapstart_is_refused_where_lambda_has_none():
    for region, refused in (("ap-southeast-6", True), ("eu-west-1", False)):
        app = cdk.App(context={"api_cold_start": "snapstart"})
        config = AppConfig.from_context(app.node.try_get_context)
        environment = cdk.Environment(account="123456789012", region=region)
        if refused:
            with pytest.raises(ConfigError, match="SnapStart is not available in ap-southeast-6"):
                AsyncJobsStack(app, "AsyncJobs", config=config, env=environment)
        else:
            AsyncJobsStack(app, "AsyncJobs", config=config, env=environment)


def test_the_code_asset_holds_the_function_code_and_nothing_else(cdk_out):
    # Every function deploys the same asset (lambdas/ as is): no tests, docs or caches in it.
    code_dirs = {spec.code_dir for spec in load(cdk_out).functions.values()}
    assert len(code_dirs) == 1
    [code_dir] = code_dirs
    files = sorted(p.relative_to(code_dir).as_posix() for p in code_dir.rglob("*") if p.is_file())
    assert files and all(f.startswith("jobs/") for f in files), files
    assert [f for f in files if not f.endswith(".py")] == ["jobs/schemas/submit_request.json"]
    assert not [f for f in files if "test" in f or "__pycache__" in f]


def test_a_template_rule_refuses_snapstart_in_regions_without_it():
    # The stack is deployed to whatever region the CLI names: CloudFormation checks it.
    _, template = synth({"worker_cold_start": "snapstart"})
    [assertion] = template.to_json()["Rules"]["SnapStartRegion"]["Assertions"]
    assert assertion["Assert"] == {
        "Fn::Not": [{"Fn::Contains": [["ap-east-2", "ap-southeast-6"], {"Ref": "AWS::Region"}]}]
    }
    _, without = synth({"api_cold_start": "provisioned"})
    assert "SnapStartRegion" not in without.to_json().get("Rules", {})


def test_the_jobs_stream_has_no_more_readers_than_dynamodb_advises_per_shard():
    """ "You can design for up to two simultaneous processes to read from the same DynamoDB
    Streams shard at the same time. Exceeding this limit can result in request throttling"
    ('Quotas in Amazon DynamoDB',
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html). The
    capacity model (bench/capacity.py) counts the same readers."""
    from bench.capacity import STREAM_READERS_PER_SHARD, Workload, stream_readers

    for notify in ("none", "websocket"):
        _, variant = synth({"notify": notify})
        [table_id] = [
            logical_id
            for logical_id, table in variant.find_resources("AWS::DynamoDB::Table").items()
            if "StreamSpecification" in table["Properties"] and "JobsTable" in logical_id
        ]
        readers = [
            mapping
            for mapping in variant.find_resources("AWS::Lambda::EventSourceMapping").values()
            if mapping["Properties"].get("EventSourceArn") == {"Fn::GetAtt": [table_id, "StreamArn"]}
        ]
        assert len(readers) == len(stream_readers(Workload(1, notify=notify))) <= STREAM_READERS_PER_SHARD
