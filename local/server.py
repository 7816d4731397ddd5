"""The local runtime: the synthesized app served on 127.0.0.1 with AWS emulated.

moto's server plays DynamoDB (with streams), SQS, S3, Secrets Manager and the other AWS
APIs the handlers call (``provisioning.py`` creates the template's resources in it); this
module serves Lambda's ``Invoke`` API itself, starts the event source mappings and
scheduled rules (``event_sources.py``), and puts each REST API stage on ``PORT``. The
handlers run unchanged: they only see environment variables (``AWS_ENDPOINT_URL``,
``AWS_ENDPOINT_URL_LAMBDA``) that point boto3 at the emulated endpoints.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import uuid
from collections.abc import Callable, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Event, Thread
from typing import Any
from urllib.parse import unquote

import boto3

from local.apigateway import HttpRequest, HttpResponse, LocalRestApi, json_response
from local.durable import AlreadyStarted, LocalDurableService, is_durable_api, is_handler_invoke
from local.event_filter import matches
from local.event_sources import EventSources
from local.faults import FaultPlan, ThrottlingProxy
from local.lambda_service import FunctionNotFound, FunctionRuntime, LambdaService
from local.partitions import WriteBudget
from local.postgres import LocalPostgres
from local.provisioning import HOST, bucket_name, create_state_machines, provision, queue_arn, start_moto
from local.template import (
    ACCOUNT_ID,
    REGION,
    AppTemplate,
    FunctionSpec,
    Resolver,
    UnsupportedTemplate,
    load,
)
from local.websocket import LocalWebSocketApi, aws_host, local_api_id

log = logging.getLogger("local")
# The API's OpenAPI document (make openapi), served at /openapi.json beside the stage.
OPENAPI_FILE = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"
# Credentials the emulated services accept; real ones never leave this machine.
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "LOCALRUNTIME", "AWS_SECRET_ACCESS_KEY": "local"}
# Here the only network is loopback: webhook callbacks may go to http and private
# addresses (a deployed stack allows neither; see lambdas/jobs/callbacks.py).
LOCAL_CALLBACK_POLICY = {"CALLBACK_REQUIRE_HTTPS": "false", "CALLBACK_ALLOW_LOOPBACK": "true"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # lingering TIME_WAIT sockets must not block a restart; a live listener still does
    # The listen backlog: Python's default of 5 reset connections under a burst of 40
    # submits, which API Gateway never does (the kernel caps it at its somaxconn).
    request_queue_size = 1024


# API Gateway's largest request payload (API Gateway Developer Guide, "Quotas for
# configuring and running a REST API": 10 MB); a larger Content-Length is refused unread.
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
# How long one read or write of a request may wait: a client that announces more body than
# it sends (or stops mid-request) is dropped instead of holding a thread forever.
SOCKET_TIMEOUT_SECONDS = 30


def _serve(port: int, handle: Callable[[HttpRequest], HttpResponse]) -> _Server:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = SOCKET_TIMEOUT_SECONDS  # socketserver sets it on the connection
        raw_requestline: bytes  # set by the stdlib's handle_one_request

        def _any(self) -> None:
            try:
                response = self._answer()
            except TimeoutError:
                self.close_connection = True  # the client went quiet mid-request
                return
            except Exception:  # an emulator bug: say so, never drop the connection unanswered
                log.exception("local front door failed on %s %s", self.command, self.path)
                response = json_response(500, {"message": "Internal server error"})
            self._write(response)

        def _write(self, response: HttpResponse) -> None:
            self.send_response(response.status)
            for name, value in response.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":  # a HEAD answer has headers only, or the next answer is misread
                self.wfile.write(response.body)

        def _answer(self) -> HttpResponse:
            lengths = {value.strip() for value in self.headers.get_all("Content-Length") or ["0"]}
            raw_length = lengths.pop() if len(lengths) == 1 else ""
            if not (raw_length.isascii() and raw_length.isdigit()) or len(raw_length) > 12:
                self.close_connection = True  # where the body ends is unknown: read no further
                return json_response(400, {"message": "Bad Request"})
            if self.headers.get("Transfer-Encoding"):
                # Not decoded here, and never to be read as the next request.
                self.close_connection = True
                return json_response(411, {"message": "Length Required"})
            length = int(raw_length)
            if length > MAX_PAYLOAD_BYTES:
                self.close_connection = True
                return json_response(413, {"message": "Request Too Long"})
            body = self.rfile.read(length) if length else b""
            if len(body) < length:
                raise TimeoutError  # the connection closed before the announced body arrived
            return handle(
                HttpRequest(self.command, self.path, list(self.headers.items()), body, self.client_address[0])
            )

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _any  # noqa: N815  (the stdlib's names)

        def __getattr__(self, name: str) -> Any:
            # Any other method (TRACE, CONNECT, "get", made-up ones) goes to the API too,
            # which answers it as API Gateway does, instead of the stdlib's 501 HTML page.
            if name.startswith("do_"):
                return self._any
            raise AttributeError(name)

        def parse_request(self) -> bool:
            # A server should ignore empty lines before a request line (RFC 9112, 2.2): a
            # stray CRLF after a body must not cost the next request on the connection.
            line: bytes = self.raw_requestline
            for _ in range(8):
                if line not in (b"\r\n", b"\n"):
                    break
                line = self.raw_requestline = self.rfile.readline(65537)
            return super().parse_request()

        def send_response(self, code: int, message: str | None = None) -> None:
            # As the stdlib's, less the Server header naming the Python version.
            self.log_request(code)
            self.send_response_only(code, message)
            self.send_header("Date", self.date_time_string())

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            # The stdlib's protocol errors (a malformed request line, an HTTP version it
            # does not speak) as JSON, like every other answer, instead of an HTML page.
            self.close_connection = True
            if self.request_version not in ("HTTP/1.0", "HTTP/1.1"):
                self.request_version = "HTTP/1.1"  # answer in a version the client can read
            self._write(json_response(code, {"message": message or HTTPStatus(code).phrase}, [("Connection", "close")]))

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
        partition_writes_per_second: float | None = None,
    ) -> None:
        """``schedule_interval`` replaces every EventBridge rule's rate (tests use seconds);
        ``faults`` injects crashes, hangs and DynamoDB throttling (``local/faults.py``);
        ``partition_writes_per_second`` gives every partition key of every table and index
        that many writes per second, as DynamoDB gives each 1,000 (``local/partitions.py``);
        ``preload`` names modules each sandbox imports before its handler (the tests'
        own tasks, ``tests/support/tasks.py``, in place of the app's)."""
        self.faults = faults
        self._preload = tuple(preload)
        self._throttling_proxy: ThrottlingProxy | None = None
        self._partition_writes_per_second = partition_writes_per_second
        self.write_budget: WriteBudget | None = None
        self._budget_proxy: ThrottlingProxy | None = None
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
        self.postgres: LocalPostgres | None = None
        self.durable: LocalDurableService | None = None

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
        self._moto, self.aws_endpoint = start_moto(lambda_port=lambda_server.server_address[1])

        created = provision(self.template, self.aws_client)
        self.queue_urls, self.stream_arns, self.secret_arns = (
            created.queue_urls,
            created.stream_arns,
            created.secret_arns,
        )
        self.state_machine_arns = create_state_machines(
            self.template, self.aws_endpoint, self.aws_client, self._resolver()
        )
        self._start_websocket_apis()
        self._start_database()
        if self._partition_writes_per_second is not None:
            self.write_budget = WriteBudget(self._partition_writes_per_second, self.aws_client("dynamodb"))
            self._budget_proxy = ThrottlingProxy(self.aws_endpoint, None, self.write_budget)
        if self.faults is not None and self.faults.throttle > 0:
            self._throttling_proxy = ThrottlingProxy(self.aws_endpoint, self.faults, self.write_budget)
        resolver = self._resolver()
        runtimes = {}
        for name, spec in self.template.functions.items():
            # AWS_ENDPOINT_URL*: where a deployed function reaches AWS (a VPC endpoint's name);
            # here the runtime's emulated endpoints take their place.
            environment = {
                key: self._localize(str(resolver.resolve(value)))
                for key, value in spec.environment.items()
                if not key.startswith("AWS_ENDPOINT_URL")
            }
            # Template values win over the runtime's defaults; extra_environment (tools, benchmarks) wins over both.
            merged = {**self._base_environment(spec.name, spec.memory_mb), **environment, **self._extra_environment}
            if self.postgres is not None and "DATABASE_HOST" in merged:  # the proxy's port and CA, here
                merged.update(self.postgres.environment())
            if self._throttling_proxy is not None and self.faults is not None and self.faults.applies_to(spec.handler):
                merged["AWS_ENDPOINT_URL_DYNAMODB"] = self._throttling_proxy.url  # boto3's per-service endpoint
            elif self._budget_proxy is not None:
                merged["AWS_ENDPOINT_URL_DYNAMODB"] = self._budget_proxy.url
            runtimes[name] = FunctionRuntime(spec, merged, self.faults, self._preload)
        self.lambdas = LambdaService(runtimes, self._send_to_queue, self._retry_base_delay)
        if self.template.apis:
            self.api = LocalRestApi(self.template.apis[0], self._invoke_for_api, self._default_identity)
        if any(spec.durable for spec in self.template.functions.values()):
            self.durable = LocalDurableService(self.lambda_endpoint, self.put_event, LOCAL_CREDENTIALS)
            self.durable.start_service()
        EventSources(
            self.lambdas,
            self.aws_client,
            self._stopping,
            self.queue_urls,
            self.stream_arns,
            self._send_to_queue,
            self._retry_base_delay,
            self._schedule_interval,
        ).start(self.template)
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
        if self.durable:
            self.durable.stop()
        if self.lambdas:
            self.lambdas.stop()
        for proxy in (self._throttling_proxy, self._budget_proxy):
            if proxy is not None:
                proxy.stop()
        if self.postgres:
            self.postgres.stop()
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

    def _start_database(self) -> None:
        """``database=postgres``: a real PostgreSQL where the RDS Proxy would be, with the
        database and user the functions are configured for (``local/postgres.py``)."""
        if not self.template.database_proxies:
            return
        settings = {
            (str(spec.environment["DATABASE_NAME"]), str(spec.environment["DATABASE_USER"]))
            for spec in self.template.functions.values()
            if "DATABASE_HOST" in spec.environment
        }
        if len(settings) != 1:
            raise UnsupportedTemplate(f"expected one database and user on the functions, found {sorted(settings)}")
        [(database, user)] = settings
        self.postgres = LocalPostgres(database, user, parameters=self.template.database_parameters).start()

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
        for name in self.template.database_proxies:
            attributes[(name, "Endpoint")] = "localhost"  # local/postgres.py listens there
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

    def put_event(self, event: dict[str, Any]) -> None:
        """An event on the default bus: each rule whose pattern matches invokes its target
        functions asynchronously, with the event as the payload (as EventBridge does)."""
        assert self.lambdas is not None
        resolver = self._resolver()
        for rule in self.template.event_rules:
            if matches(resolver.resolve(rule.pattern), event):
                for function in rule.functions:
                    self.lambdas.invoke_async(function, event)

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
        """Lambda's Invoke API: POST /2015-03-31/functions/{name}/invocations; and, for
        durable functions, the durable execution API the SDK calls."""
        assert self.lambdas is not None
        if self.durable is not None and is_durable_api(request):
            return self.durable.handle(request)
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
            spec = self.lambdas.runtime(name).spec
            if spec.durable is not None and not is_handler_invoke(request):
                return self._start_durable_execution(spec, name, request, invocation_type)
            if invocation_type == "Event":
                request_id = self.lambdas.invoke_async(name, payload)
                return HttpResponse(202, [("x-amzn-RequestId", request_id)], b"")
            runtime = self.lambdas.runtime(name)
            # A function with reserved concurrency refuses the invoke beyond it (429), as in AWS.
            # Without, AWS scales it out of the account's pool (1,000 by default), which this
            # machine cannot: the runtime's own cap of sandboxes makes callers wait instead of
            # answering a 429 AWS would not send (Step Functions' Task states invoke here).
            slot_timeout: float | None = (
                0 if runtime.spec.reserved_concurrency is not None else runtime.spec.timeout_seconds
            )
            if is_handler_invoke(request):
                # The durable execution service's own invocation: throttled, it would retry with
                # backoff until the execution's timeout; the local runner gives up after five, so
                # here it waits for a free sandbox instead.
                slot_timeout = None
            result = self.lambdas.invoke(name, payload, slot_timeout=slot_timeout)
        except FunctionNotFound:
            return _lambda_error(404, "ResourceNotFoundException", f"Function not found: {name}")
        if result is None:
            return _lambda_error(429, "TooManyRequestsException", "Rate Exceeded.")
        headers = [("Content-Type", "application/json"), ("X-Amz-Executed-Version", "$LATEST")]
        if not result.ok:
            headers.append(("X-Amz-Function-Error", "Unhandled"))
        return HttpResponse(200, headers, json.dumps(result.payload).encode())

    def _start_durable_execution(
        self, spec: FunctionSpec, name: str, request: HttpRequest, invocation_type: str
    ) -> HttpResponse:
        """An Invoke of a durable function starts an execution (Lambda Developer Guide,
        "Invoking durable Lambda functions"): only through a qualified name, and here only
        asynchronously (synchronously, the caller would wait for the whole execution)."""
        assert self.durable is not None
        qualifier = name.rsplit(":function:", 1)[-1].partition(":")[2]
        if not qualifier:
            return _lambda_error(
                400, "InvalidParameterValueException", "durable functions must be invoked with a qualified name"
            )
        if invocation_type != "Event":
            return _lambda_error(
                400, "InvalidParameterValueException", "the local runtime starts durable executions asynchronously only"
            )
        try:
            arn = self.durable.start(spec, qualifier, request.header("X-Amz-Durable-Execution-Name"), request.body)
        except AlreadyStarted as error:
            return _lambda_error(409, "DurableExecutionAlreadyStartedException", str(error))
        return HttpResponse(202, [("x-amzn-RequestId", str(uuid.uuid4())), ("X-Amz-Durable-Execution-Arn", arn)], b"")


def _lambda_error(status: int, code: str, message: str) -> HttpResponse:
    body = json.dumps({"Type": "User", "message": message}).encode()
    return HttpResponse(status, [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)], body)
