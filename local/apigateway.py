"""API Gateway REST, locally: routing, IAM identity, validation, throttling, proxy events.

Answers the way a deployed REST API does where the client can tell: the stage prefix in
the URL, 403 ``Missing Authentication Token`` for unknown routes and unsigned requests to
IAM-authorized methods, 400 from the request validator, 429 from stage throttling, 504
``Endpoint request timed out`` past the integration timeout, and 502 ``Internal server
error`` when the function fails or returns a malformed response.

SigV4 signatures are NOT verified locally: the caller is the access key named in the
``Authorization`` header. Never expose this server beyond 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jsonschema

from local.sandbox import InvocationResult
from local.template import ACCOUNT_ID, ApiSpec, MethodSpec

CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


@dataclass
class HttpRequest:
    method: str
    target: str  # path and query, as received
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str = "127.0.0.1"

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return values[-1] if values else None


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def caller_identity(authorization: str | None, default_identity: str | None = None) -> dict[str, Any] | None:
    """The ``identity`` API Gateway puts in the event for an IAM-authorised request: the
    caller is named after the SigV4 access key (signatures are not verified locally)."""
    found = CREDENTIAL.search(authorization or "")
    if found:
        access_key = found.group(1)
        user_arn = f"arn:aws:iam::{ACCOUNT_ID}:user/{access_key}"
    elif default_identity:
        access_key, user_arn = "LOCALDEFAULTIDENTITY", default_identity
    else:
        return None
    caller = user_arn.rsplit("/", 1)[-1]
    return {"accessKey": access_key, "accountId": ACCOUNT_ID, "caller": caller, "user": caller, "userArn": user_arn}


def json_response(status: int, body: dict[str, Any], extra: list[tuple[str, str]] | None = None) -> HttpResponse:
    return HttpResponse(status, [("Content-Type", "application/json"), *(extra or [])], json.dumps(body).encode())


def _not_json(name: str) -> Any:
    """``NaN``/``Infinity``, which Python's parser takes and JSON (and API Gateway) does not."""
    raise ValueError(f"{name} is not JSON")


class TokenBucket:
    """Stage throttling: ``rate`` requests per second with bursts of up to ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._capacity = max(1, burst)
        self._tokens = float(self._capacity)
        self._updated = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
            self._updated = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


Invoker = Callable[[str, dict[str, Any], float], InvocationResult | None]


class LocalRestApi:
    """One REST API stage of the template."""

    def __init__(self, spec: ApiSpec, invoke: Invoker, default_identity: str | None = None) -> None:
        self.spec = spec
        self._invoke = invoke  # (function logical id, event, seconds to wait for a slot)
        self._default_identity = default_identity
        self._bucket = (
            TokenBucket(spec.throttle_rate, spec.throttle_burst or 1) if spec.throttle_rate is not None else None
        )
        self._pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="apigw-integration")
        self.api_id = "local"

    def handle(self, request: HttpRequest) -> HttpResponse:
        started = time.time()
        request_id = str(uuid.uuid4())
        try:
            url = urlsplit(request.target)
        except ValueError:  # e.g. an absolute-form target with a broken host ("http://[/v1/jobs")
            return json_response(400, {"message": "Bad Request"})
        prefix = f"/{self.spec.stage_name}"
        if url.path != prefix and not url.path.startswith(prefix + "/"):
            return self._missing_token()
        path = url.path[len(prefix) :] or "/"
        method, path_parameters = self._route(request.method, path)
        if method is None:
            return self._missing_token()
        if self._bucket is not None and not self._bucket.take():
            return json_response(429, {"message": "Too Many Requests"})

        identity = self._identity(request)
        if method.authorization_type == "AWS_IAM" and identity is None:
            return self._missing_token()

        invalid = self._validate(method, request)
        if invalid is not None:
            return invalid
        event = self._event(request, method, path, path_parameters or {}, identity, request_id, started)
        if method.function is None:
            return json_response(500, {"message": "Internal server error"})
        wait = method.timeout_ms / 1000
        future = self._pool.submit(self._invoke, method.function, event, wait)
        try:
            result = future.result(timeout=wait)
        except FutureTimeout:
            # The function keeps running, as it would in AWS; only the client gives up.
            return json_response(504, {"message": "Endpoint request timed out"})
        if result is None:
            return json_response(504, {"message": "Endpoint request timed out"})
        return self._proxy_response(result, request_id)

    # -- steps -----------------------------------------------------------------------------

    def _route(self, http_method: str, path: str) -> tuple[MethodSpec | None, dict[str, str] | None]:
        for method in self.spec.methods:
            match = method.path_pattern.match(path)
            if match and method.http_method in (http_method, "ANY"):
                return method, match.groupdict() or None
        return None, None

    def _identity(self, request: HttpRequest) -> dict[str, Any] | None:
        return caller_identity(request.header("Authorization"), self._default_identity)

    def _validate(self, method: MethodSpec, request: HttpRequest) -> HttpResponse | None:
        if method.validate_parameters:
            missing = self._missing_parameters(method, request)
            if missing:
                message = f"Missing required request parameters: [{', '.join(missing)}]"
                return self._gateway_response("BAD_REQUEST_PARAMETERS", 400, message, message)
        if not method.validate_body or not method.request_models:
            return None
        content_type = (request.header("Content-Type") or "application/json").split(";")[0].strip().lower()
        schema = method.request_models.get(content_type) or method.request_models.get("$default")
        if schema is None:
            return None
        try:
            body = json.loads(request.body or b"null", parse_constant=_not_json)
            jsonschema.Draft4Validator(schema).validate(body)
        except (ValueError, jsonschema.ValidationError) as error:
            message = getattr(error, "message", None) or "Invalid request body"
            return self._gateway_response("BAD_REQUEST_BODY", 400, f"[{message}]")
        except RecursionError:  # nested too deeply for the parser or the validator
            return self._gateway_response("BAD_REQUEST_BODY", 400, "[Invalid request body]")
        return None

    @staticmethod
    def _missing_parameters(method: MethodSpec, request: HttpRequest) -> list[str]:
        """Required headers and query strings absent from the request (path ones are always there once routed)."""
        query = {name for name, _ in parse_qsl(urlsplit(request.target).query, keep_blank_values=True)}
        missing = []
        for parameter in method.required_parameters:
            _, _, location, name = parameter.split(".", 3)
            if (location == "header" and request.header(name) is None) or (
                location == "querystring" and name not in query
            ):
                missing.append(name)
        return missing

    def _gateway_response(
        self, response_type: str, status: int, validation_error: str, default_message: str = "Invalid request body"
    ) -> HttpResponse:
        configured = self.spec.gateway_responses.get(response_type) or {}
        template = configured.get("ResponseTemplates", {}).get("application/json")
        if template is None:
            return json_response(status, {"message": default_message})
        escaped = json.dumps(validation_error)[1:-1]
        body = template.replace("$context.error.validationErrorString", escaped)
        return HttpResponse(
            int(configured.get("StatusCode", status)), [("Content-Type", "application/json")], body.encode()
        )

    def _event(
        self,
        request: HttpRequest,
        method: MethodSpec,
        path: str,
        path_parameters: dict[str, str],
        identity: dict[str, Any] | None,
        request_id: str,
        started: float,
    ) -> dict[str, Any]:
        """The proxy event (payload 1.0) with AWS's shape."""
        url = urlsplit(request.target)
        multi_headers: dict[str, list[str]] = {}
        for name, value in request.headers:
            multi_headers.setdefault(name, []).append(value)
        # API Gateway adds these; the scheme is how the client reached us.
        for name, value in (("X-Forwarded-Proto", "http"), ("X-Forwarded-For", request.source_ip)):
            if name.lower() not in {k.lower() for k in multi_headers}:
                multi_headers[name] = [value]
        query_pairs = parse_qsl(url.query, keep_blank_values=True)
        multi_query: dict[str, list[str]] = {}
        for name, value in query_pairs:
            multi_query.setdefault(name, []).append(value)
        try:
            body: str | None = request.body.decode() if request.body else None
            is_base64 = False
        except UnicodeDecodeError:
            body, is_base64 = base64.b64encode(request.body).decode(), True
        host = request.header("Host") or "127.0.0.1"
        empty_identity = dict.fromkeys(
            (
                "accessKey",
                "accountId",
                "caller",
                "user",
                "userArn",
                "cognitoAuthenticationProvider",
                "cognitoAuthenticationType",
                "cognitoIdentityId",
                "cognitoIdentityPoolId",
                "principalOrgId",
            ),
        )
        return {
            "resource": method.resource_path,
            "path": path,
            "httpMethod": request.method,
            "headers": {name: values[-1] for name, values in multi_headers.items()},
            "multiValueHeaders": multi_headers,
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": path_parameters or None,
            "stageVariables": None,
            "requestContext": {
                "accountId": ACCOUNT_ID,
                "apiId": self.api_id,
                "domainName": host,
                "domainPrefix": host.split(".")[0],
                "extendedRequestId": request_id,
                "httpMethod": request.method,
                "identity": {
                    **empty_identity,
                    **(identity or {}),
                    "sourceIp": request.source_ip,
                    "userAgent": request.header("User-Agent"),
                },
                "path": url.path,
                "protocol": "HTTP/1.1",
                "requestId": request_id,
                "requestTime": datetime.fromtimestamp(started, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "requestTimeEpoch": int(started * 1000),
                "resourceId": "local",
                "resourcePath": method.resource_path,
                "stage": self.spec.stage_name,
            },
            "body": body,
            "isBase64Encoded": is_base64,
        }

    def _proxy_response(self, result: InvocationResult, request_id: str) -> HttpResponse:
        internal_error = json_response(502, {"message": "Internal server error"})
        payload = result.payload
        if not result.ok or not isinstance(payload, dict) or not isinstance(payload.get("statusCode"), int):
            return internal_error
        headers: list[tuple[str, str]] = []
        for name, values in (payload.get("multiValueHeaders") or {}).items():
            if not isinstance(values, list):
                return internal_error
            headers.extend((name, str(value)) for value in values)
        for name, value in (payload.get("headers") or {}).items():
            headers = [(k, v) for k, v in headers if k.lower() != name.lower()]
            headers.append((name, str(value)))
        body = payload.get("body") or ""
        if not isinstance(body, str):
            return internal_error
        raw = base64.b64decode(body) if payload.get("isBase64Encoded") else body.encode()
        headers.append(("x-amzn-RequestId", request_id))
        if not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("Content-Type", "application/json"))
        return HttpResponse(payload["statusCode"], headers, raw)

    @staticmethod
    def _missing_token() -> HttpResponse:
        return json_response(
            403,
            {"message": "Missing Authentication Token"},
            [("x-amzn-ErrorType", "MissingAuthenticationTokenException")],
        )

    def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
