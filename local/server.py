"""The local runtime: the synthesized app served on 127.0.0.1 with AWS emulated.

moto's server plays DynamoDB (with streams), SQS, S3, Secrets Manager and the other AWS
APIs the handlers call; this module creates the template's tables, queues, buckets and
secrets in it, serves Lambda's ``Invoke`` API itself, plays the event source mappings
(SQS queues, DynamoDB streams) and scheduled rules, and puts each REST API stage on
``PORT``. The handlers run unchanged: they only see environment variables
(``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_LAMBDA``) that point boto3 at the emulated endpoints.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Event, Thread
from typing import Any
from urllib.parse import unquote

import boto3

from local.apigateway import HttpRequest, HttpResponse, LocalRestApi
from local.event_filter import passes
from local.faults import FaultPlan, ThrottlingProxy
from local.lambda_service import FunctionNotFound, FunctionRuntime, LambdaService
from local.template import (
    ACCOUNT_ID,
    REGION,
    AppTemplate,
    QueueMappingSpec,
    Resolver,
    ScheduleSpec,
    StreamMappingSpec,
    load,
)
from local.websocket import LocalWebSocketApi, aws_host, local_api_id

log = logging.getLogger("local")
HOST = "127.0.0.1"
# The API's OpenAPI document (make openapi), served at /openapi.json beside the stage.
OPENAPI_FILE = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"
# Credentials the emulated services accept; real ones never leave this machine.
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "LOCALRUNTIME", "AWS_SECRET_ACCESS_KEY": "local"}
# Here the only network is loopback: webhook callbacks may go to http and private
# addresses (a deployed stack allows neither; see lambdas/jobs/callbacks.py).
LOCAL_CALLBACK_POLICY = {"CALLBACK_REQUIRE_HTTPS": "false", "CALLBACK_ALLOW_PRIVATE_NETWORKS": "true"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # lingering TIME_WAIT sockets must not block a restart; a live listener still does


def _serve(port: int, handle: Any) -> _Server:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = HttpRequest(self.command, self.path, list(self.headers.items()), body, self.client_address[0])
            response: HttpResponse = handle(request)
            self.send_response(response.status)
            for name, value in response.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _any  # noqa: N815  (the stdlib's names)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug(format, *args)

    server = _Server((HOST, port), Handler)
    Thread(target=server.serve_forever, name=f"http-{port}", daemon=True).start()
    return server


class LocalRuntime:
    """Start with :meth:`start`, stop with :meth:`stop`; ``api_url`` is the stage's base URL."""

    def __init__(
        self,
        cdk_out: Path,
        port: int = 3000,
        stack_name: str | None = None,
        default_identity: str | None = None,
        retry_base_delay: float = 1.0,
        extra_environment: dict[str, str] | None = None,
        schedule_interval: float | None = None,
        faults: FaultPlan | None = None,
        preload: Sequence[str] = (),
    ) -> None:
        """``schedule_interval`` replaces every EventBridge rule's rate (tests use seconds);
        ``faults`` injects crashes, hangs and DynamoDB throttling (``local/faults.py``);
        ``preload`` names modules each sandbox imports before its handler (the tests'
        own tasks, ``tests/support/tasks.py``, in place of the app's)."""
        self.faults = faults
        self._preload = tuple(preload)
        self._throttling_proxy: ThrottlingProxy | None = None
        self.template: AppTemplate = load(cdk_out, stack_name)
        self._schedule_interval = schedule_interval
        self._stopping = Event()
        self._port = port
        self._default_identity = default_identity
        self._retry_base_delay = retry_base_delay
        self._extra_environment = extra_environment or {}
        self._servers: list[_Server] = []
        self._moto: subprocess.Popen[bytes] | None = None
        self.api: LocalRestApi | None = None
        self.lambdas: LambdaService | None = None
        self.queue_urls: dict[str, str] = {}
        self.websockets: list[LocalWebSocketApi] = []
        self._local_urls: dict[str, str] = {}  # AWS URL prefix -> this runtime's
        self.stream_arns: dict[str, str] = {}
        self.secret_arns: dict[str, str] = {}
        self.state_machine_arns: dict[str, str] = {}

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> LocalRuntime:
        # Bind the public port first, so a taken port fails before anything else starts.
        api_server = _serve(self._port, self._handle_api)
        self._servers.append(api_server)
        self._port = api_server.server_address[1]

        lambda_server = _serve(0, self._handle_lambda)
        self._servers.append(lambda_server)
        self.lambda_endpoint = f"http://{HOST}:{lambda_server.server_address[1]}"
        # moto's Step Functions interpreter runs a Task by calling Lambda's Invoke API on
        # localhost:$MOTO_PORT; pointed at the Lambda front door, it invokes our functions.
        self._moto, self.aws_endpoint = _start_moto(lambda_port=lambda_server.server_address[1])

        self._provision()
        self._create_state_machines()
        self._start_websocket_apis()
        if self.faults is not None and self.faults.throttle > 0:
            self._throttling_proxy = ThrottlingProxy(self.aws_endpoint, self.faults)
        resolver = self._resolver()
        runtimes = {}
        for name, spec in self.template.functions.items():
            environment = {key: self._localize(str(resolver.resolve(value))) for key, value in spec.environment.items()}
            # Template values win over the runtime's defaults; extra_environment (tools, benchmarks) wins over both.
            merged = {**self._base_environment(spec.name, spec.memory_mb), **environment, **self._extra_environment}
            if self._throttling_proxy is not None and self.faults is not None and self.faults.applies_to(spec.handler):
                merged["AWS_ENDPOINT_URL_DYNAMODB"] = self._throttling_proxy.url  # boto3's per-service endpoint
            runtimes[name] = FunctionRuntime(spec, merged, self.faults, self._preload)
        self.lambdas = LambdaService(runtimes, self._send_to_queue, self._retry_base_delay)
        if self.template.apis:
            self.api = LocalRestApi(self.template.apis[0], self._invoke_for_api, self._default_identity)
        for mapping in self.template.queue_mappings:
            for poller in range(mapping.max_concurrency):
                Thread(
                    target=self._poll_queue, args=(mapping,), name=f"esm-{mapping.queue}-{poller}", daemon=True
                ).start()
        for stream in self.template.stream_mappings:
            Thread(target=self._poll_stream, args=(stream,), name=f"esm-{stream.table}", daemon=True).start()
        for schedule in self.template.schedules:
            Thread(target=self._run_schedule, args=(schedule,), name=f"rule-{schedule.logical_id}", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        for websocket in self.websockets:
            websocket.stop()
        for server in self._servers:
            server.shutdown()
            server.server_close()
        if self.api:
            self.api.stop()
        if self.lambdas:
            self.lambdas.stop()
        if self._throttling_proxy:
            self._throttling_proxy.stop()
        if self._moto:
            self._moto.terminate()
            try:
                self._moto.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._moto.kill()

    @property
    def port(self) -> int:
        return self._port

    @property
    def api_url(self) -> str:
        stage = self.template.apis[0].stage_name if self.template.apis else ""
        return f"http://{HOST}:{self._port}/{stage}/"

    def aws_client(self, service: Any) -> Any:
        """A boto3 client for the emulated AWS (for tests and tooling)."""
        return boto3.client(
            service,
            endpoint_url=self.aws_endpoint,
            region_name=REGION,
            aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    @property
    def websocket_url(self) -> str | None:
        """``ws://`` URL of the WebSocket API's stage (``notify=websocket``), if there is one."""
        if not self.websockets:
            return None
        api = self.websockets[0]
        return self._localize(f"wss://{aws_host(local_api_id(api.spec.logical_id))}/{api.spec.stage_name}")

    # -- wiring ----------------------------------------------------------------------------

    def _start_websocket_apis(self) -> None:
        """Each WebSocket API on a port of its own, its management API on another. URLs the
        template builds for them (``wss://<id>.execute-api...``, the ``https://`` callback
        URL) are rewritten to these ports (``_localize``)."""
        for spec in self.template.websocket_apis:
            api = LocalWebSocketApi(spec, self._invoke_for_websocket, self._default_identity)
            port = api.start()
            management = _serve(0, api.manage)
            self._servers.append(management)
            host = aws_host(local_api_id(spec.logical_id))
            self._local_urls[f"wss://{host}"] = f"ws://{HOST}:{port}"
            self._local_urls[f"https://{host}"] = f"http://{HOST}:{management.server_address[1]}"
            self.websockets.append(api)

    def _localize(self, value: str) -> str:
        for aws_url, local_url in self._local_urls.items():
            value = value.replace(aws_url, local_url)
        return value

    def _invoke_for_websocket(self, function: str, event: dict[str, Any]) -> Any:
        assert self.lambdas is not None
        return self.lambdas.invoke(function, event, slot_timeout=10)

    def _base_environment(self, function_name: str, memory_mb: int) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TZ", "SYSTEMROOT"}}
        return {
            **inherited,
            **LOCAL_CREDENTIALS,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": self.aws_endpoint,
            "AWS_ENDPOINT_URL_LAMBDA": self.lambda_endpoint,
            "AWS_LAMBDA_FUNCTION_NAME": function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "PYTHONUNBUFFERED": "1",
            **LOCAL_CALLBACK_POLICY,
        }

    def _create_state_machines(self) -> None:
        """Each state machine of the template in moto, with moto's ASL interpreter on: a
        started execution really runs, its Task states invoking the local functions."""
        if not self.template.state_machines:
            return
        config = json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode()
        request = urllib.request.Request(f"{self.aws_endpoint}/moto-api/config", data=config, method="POST")  # noqa: S310
        urllib.request.urlopen(request, timeout=10).close()  # noqa: S310  loopback
        stepfunctions = self.aws_client("stepfunctions")
        resolver = self._resolver()
        for logical_id, properties in self.template.state_machines.items():
            definition = resolver.resolve(properties["DefinitionString"])
            self.state_machine_arns[logical_id] = stepfunctions.create_state_machine(
                name=logical_id,
                definition=definition,
                roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/{logical_id}",  # not checked locally
                type=str(properties.get("StateMachineType", "STANDARD")),
            )["stateMachineArn"]

    def _provision(self) -> None:
        dynamodb = self.aws_client("dynamodb")
        for name, table in self.template.tables.items():
            create_table(dynamodb, name, table.properties)
            stream = dynamodb.describe_table(TableName=name)["Table"].get("LatestStreamArn")
            if stream:
                self.stream_arns[name] = stream
        secretsmanager = self.aws_client("secretsmanager")
        for name, properties in self.template.secrets.items():
            value = properties.get("SecretString") or secrets.token_urlsafe(48)  # as GenerateSecretString would
            self.secret_arns[name] = secretsmanager.create_secret(Name=name, SecretString=value)["ARN"]
        s3 = self.aws_client("s3")
        for name in self.template.buckets:
            s3.create_bucket(Bucket=bucket_name(name))
        sqs = self.aws_client("sqs")
        # Dead-letter queues first: a queue's redrive policy names its DLQ's ARN.
        ordered = sorted(self.template.queues.items(), key=lambda item: item[1].dead_letter_queue is not None)
        for name, queue in ordered:
            attributes: dict[str, str] = {
                key: str(queue.properties[key])
                for key in ("MessageRetentionPeriod", "VisibilityTimeout", "DelaySeconds")
                if key in queue.properties
            }
            if queue.dead_letter_queue is not None:
                receives = int(queue.properties["RedrivePolicy"]["maxReceiveCount"])
                attributes["RedrivePolicy"] = json.dumps(
                    {"deadLetterTargetArn": queue_arn(queue.dead_letter_queue), "maxReceiveCount": receives}
                )
            self.queue_urls[name] = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]

    def _resolver(self) -> Resolver:
        refs: dict[str, str] = {}
        attributes: dict[tuple[str, str], str] = {}
        for name, spec in self.template.functions.items():
            refs[name] = spec.name
            attributes[(name, "Arn")] = spec.arn
        for name, (function, alias) in self.template.aliases.items():
            refs[name] = f"{self.template.functions[function].arn}:{alias}"  # an alias's Ref is its ARN
        for name in self.template.tables:
            refs[name] = name
            attributes[(name, "Arn")] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}"
        for name, arn in self.stream_arns.items():
            attributes[(name, "StreamArn")] = arn
        for name, arn in self.secret_arns.items():
            refs[name] = arn  # a secret's Ref is its ARN
        for websocket in self.template.websocket_apis:
            refs[websocket.logical_id] = local_api_id(websocket.logical_id)
        for name in self.template.buckets:
            refs[name] = bucket_name(name)
            attributes[(name, "Arn")] = f"arn:aws:s3:::{bucket_name(name)}"
        for name, arn in self.state_machine_arns.items():
            refs[name] = arn  # a state machine's Ref is its ARN
            attributes[(name, "Name")] = arn.rsplit(":", 1)[-1]
        for name, url in self.queue_urls.items():
            refs[name] = url
            attributes[(name, "Arn")] = queue_arn(name)
            attributes[(name, "QueueName")] = name
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        return Resolver(refs, attributes, pseudo)

    def _run_schedule(self, schedule: ScheduleSpec) -> None:
        """EventBridge's scheduled rule: an asynchronous invoke of each target, every interval."""
        interval = self._schedule_interval or schedule.interval_seconds
        while not self._stopping.wait(interval):
            assert self.lambdas is not None
            event = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": ACCOUNT_ID,
                "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": REGION,
                "resources": [schedule.arn],
                "detail": {},
            }
            for function in schedule.functions:
                self.lambdas.invoke_async(function, event)

    def _poll_queue(self, mapping: QueueMappingSpec) -> None:
        """An SQS event source mapping: receive a batch, invoke the function with it, delete
        what succeeded (all of it, or all but the reported batch item failures). Messages
        not deleted come back after the queue's visibility timeout; the queue's redrive
        policy moves them to its dead-letter queue after ``maxReceiveCount`` receives."""
        sqs = self.aws_client("sqs")
        url = self.queue_urls[mapping.queue]
        arn = queue_arn(mapping.queue)
        while not self._stopping.is_set():
            try:
                batch = sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=mapping.batch_size,
                    WaitTimeSeconds=1,
                    MessageSystemAttributeNames=["All"],
                ).get("Messages", [])
            except Exception:  # the emulator is stopping or busy: try again
                if not self._stopping.wait(0.5):
                    log.debug("receive from %s failed; retrying", mapping.queue, exc_info=True)
                continue
            if not batch or self.lambdas is None:
                continue
            event = {"Records": [sqs_record(message, arn) for message in batch]}
            result = self.lambdas.invoke(mapping.function, event)
            if result is None or not result.ok:
                continue  # the whole batch comes back after the visibility timeout
            failed: set[str] = set()
            if mapping.report_batch_item_failures and isinstance(result.payload, dict):
                failed = {str(f.get("itemIdentifier")) for f in result.payload.get("batchItemFailures") or []}
            done = [m for m in batch if m["MessageId"] not in failed]
            for start in range(0, len(done), 10):
                entries = [
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])
                ]
                sqs.delete_message_batch(QueueUrl=url, Entries=entries)

    def _poll_stream(self, mapping: StreamMappingSpec) -> None:
        """A DynamoDB stream event source mapping: read the shard in order, drop records the
        filter criteria reject, invoke the function with batches of the rest. A failed batch
        is retried (from the first reported batch item failure, if the function reports
        them) up to the mapping's retry limit; then a pointer to it goes to the on-failure
        queue and reading goes on, as in AWS."""
        streams = self.aws_client("dynamodbstreams")
        arn = self.stream_arns[mapping.table]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard, ShardIteratorType=mapping.starting_position
        )["ShardIterator"]
        while not self._stopping.is_set():
            try:
                page = streams.get_records(ShardIterator=iterator, Limit=1000)
            except Exception:  # the emulator is stopping or busy: try again
                if not self._stopping.wait(0.5):
                    log.debug("reading the stream of %s failed; retrying", mapping.table, exc_info=True)
                continue
            iterator = page["NextShardIterator"]
            records = [stream_record(record, arn) for record in page.get("Records", [])]
            wanted = [record for record in records if passes(mapping.filters, record)]
            for start in range(0, len(wanted), mapping.batch_size):
                self._deliver_stream_batch(mapping, wanted[start : start + mapping.batch_size], shard, arn)
            if not records:
                self._stopping.wait(0.2)

    def _deliver_stream_batch(
        self, mapping: StreamMappingSpec, batch: list[dict[str, Any]], shard: str, arn: str
    ) -> None:
        retries = 0
        while batch and not self._stopping.is_set() and self.lambdas is not None:
            result = self.lambdas.invoke(mapping.function, {"Records": batch})
            if result is not None and result.ok:
                failed = []
                if mapping.report_batch_item_failures and isinstance(result.payload, dict):
                    failed = [str(f.get("itemIdentifier")) for f in result.payload.get("batchItemFailures") or []]
                if not failed:
                    return
                first = min(int(sequence) for sequence in failed)
                batch = [r for r in batch if int(r["dynamodb"]["SequenceNumber"]) >= first]
            retries += 1
            if 0 <= mapping.max_retry_attempts < retries:
                log.warning("stream batch for %s given up after %d retries", mapping.function, retries - 1)
                if mapping.on_failure in self.queue_urls:
                    self._send_to_queue(mapping.on_failure, json.dumps(stream_failure(batch, shard, arn)))
                return
            self._stopping.wait(self._retry_base_delay * retries)

    def _send_to_queue(self, queue: str, body: str) -> None:
        self.aws_client("sqs").send_message(QueueUrl=self.queue_urls[queue], MessageBody=body)

    def _invoke_for_api(self, function: str, event: dict[str, Any], wait: float) -> Any:
        assert self.lambdas is not None
        return self.lambdas.invoke(function, event, slot_timeout=wait)

    # -- HTTP front doors ------------------------------------------------------------------

    def _handle_api(self, request: HttpRequest) -> HttpResponse:
        if request.method == "GET" and request.target.split("?")[0] == "/openapi.json" and OPENAPI_FILE.exists():
            document = json.loads(OPENAPI_FILE.read_text())
            # This runtime's own address first, so tools pointed at the document call it.
            document["servers"].insert(0, {"url": self.api_url.rstrip("/"), "description": "this local runtime"})
            return HttpResponse(200, [("Content-Type", "application/json")], json.dumps(document).encode())
        if self.api is None:
            return HttpResponse(503, [], b"")
        return self.api.handle(request)

    def _handle_lambda(self, request: HttpRequest) -> HttpResponse:
        """Lambda's Invoke API: POST /2015-03-31/functions/{name}/invocations."""
        assert self.lambdas is not None
        parts = request.target.split("?")[0].strip("/").split("/")
        if request.method != "POST" or len(parts) != 4 or parts[1] != "functions" or parts[3] != "invocations":
            return _lambda_error(404, "ResourceNotFoundException", f"unsupported Lambda call {request.target}")
        name = unquote(parts[2])
        try:
            payload = json.loads(request.body or b"null")
        except ValueError:
            return _lambda_error(400, "InvalidRequestContentException", "Could not parse request body into json")
        invocation_type = request.header("X-Amz-Invocation-Type") or "RequestResponse"
        try:
            if invocation_type == "Event":
                request_id = self.lambdas.invoke_async(name, payload)
                return HttpResponse(202, [("x-amzn-RequestId", request_id)], b"")
            runtime = self.lambdas.runtime(name)
            # A function with reserved concurrency refuses the invoke beyond it (429), as in AWS.
            # Without, AWS scales it out of the account's pool (1,000 by default), which this
            # machine cannot: the runtime's own cap of sandboxes makes callers wait instead of
            # answering a 429 AWS would not send (Step Functions' Task states invoke here).
            slot_timeout = 0 if runtime.spec.reserved_concurrency is not None else runtime.spec.timeout_seconds
            result = self.lambdas.invoke(name, payload, slot_timeout=slot_timeout)
        except FunctionNotFound:
            return _lambda_error(404, "ResourceNotFoundException", f"Function not found: {name}")
        if result is None:
            return _lambda_error(429, "TooManyRequestsException", "Rate Exceeded.")
        headers = [("Content-Type", "application/json"), ("X-Amz-Executed-Version", "$LATEST")]
        if not result.ok:
            headers.append(("X-Amz-Function-Error", "Unhandled"))
        return HttpResponse(200, headers, json.dumps(result.payload).encode())


def queue_arn(logical_id: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{logical_id}"


def sqs_record(message: dict[str, Any], arn: str) -> dict[str, Any]:
    """One record of the event an SQS event source mapping sends."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": REGION,
    }


def stream_record(record: dict[str, Any], arn: str) -> dict[str, Any]:
    """A stream record as the event source mapping hands it to a function (JSON-ready)."""
    dynamodb = dict(record["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = int(created.timestamp())
    return {**record, "dynamodb": dynamodb, "eventSourceARN": arn}


def stream_failure(batch: list[dict[str, Any]], shard: str, arn: str) -> dict[str, Any]:
    """The on-failure destination's message for a stream batch: where to find its records."""
    sequences = [r["dynamodb"]["SequenceNumber"] for r in batch]
    return {
        "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": 1},
        "DDBStreamBatchInfo": {
            "shardId": shard,
            "startSequenceNumber": min(sequences, key=int),
            "endSequenceNumber": max(sequences, key=int),
            "batchSize": len(batch),
            "streamArn": arn,
        },
    }


def bucket_name(logical_id: str) -> str:
    """A valid S3 bucket name for a template bucket (lower case, at most 63 characters)."""
    return logical_id.lower()[:63]


def create_table(dynamodb: Any, name: str, properties: dict[str, Any]) -> None:
    """Create a table as the template declares it (keys, indexes, TTL), on demand."""
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": properties["KeySchema"],
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if properties.get("GlobalSecondaryIndexes"):
        request["GlobalSecondaryIndexes"] = [
            {k: v for k, v in index.items() if k != "ProvisionedThroughput"}
            for index in properties["GlobalSecondaryIndexes"]
        ]
    if properties.get("StreamSpecification"):
        request["StreamSpecification"] = {"StreamEnabled": True, **properties["StreamSpecification"]}
    dynamodb.create_table(**request)
    ttl = properties.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)


def _with_root(python_path: str | None) -> str:
    """``PYTHONPATH`` with this repository first, so ``python -m local.moto_server`` runs from anywhere."""
    root = str(Path(__file__).resolve().parent.parent)
    return os.pathsep.join([root, *([python_path] if python_path else [])])


def _start_moto(lambda_port: int, attempts: int = 3) -> tuple[subprocess.Popen[bytes], str]:
    """moto's server in a process of its own, so it has a core to itself rather than sharing
    this process's GIL with the API and Lambda front doors. Returns the process and its URL.

    ``lambda_port``: where moto's own calls to Lambda go (``MOTO_PORT``: its Step Functions
    interpreter invokes functions there)."""
    for _ in range(attempts):
        with socket.socket() as probe:  # a free port; the tiny race with other programs is retried
            probe.bind((HOST, 0))
            port = probe.getsockname()[1]
        process = subprocess.Popen(  # noqa: S603  fixed arguments
            [sys.executable, "-m", "local.moto_server", "-H", HOST, "-p", str(port)],
            env={**os.environ, "MOTO_PORT": str(lambda_port), "PYTHONPATH": _with_root(os.environ.get("PYTHONPATH"))},
            stdout=subprocess.DEVNULL,  # its stderr is ours: what it logs there went wrong (local/moto_server.py)
        )
        endpoint = f"http://{HOST}:{port}"
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=2).close()  # noqa: S310  loopback
                return process, endpoint
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        process.kill()
        process.wait()
    raise RuntimeError("moto's server did not start")


def _lambda_error(status: int, code: str, message: str) -> HttpResponse:
    body = json.dumps({"Type": "User", "message": message}).encode()
    return HttpResponse(status, [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)], body)
