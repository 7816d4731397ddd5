"""Bad-input fuzzing: schemathesis generates requests from docs/openapi.json, valid and not,
and sends them, signed, to the app in the local runtime. No answer may be a 5XX or carry a
stack trace; every answer must match the document (status codes, JSON shapes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks
from schemathesis.core.result import Ok

from local.server import LocalRuntime
from local.template import REGION
from tests.support import TEST_TASKS

pytestmark = pytest.mark.e2e

TRACE_MARKERS = ("Traceback (most recent call last)", 'File "/', "site-packages", "botocore.exceptions")


class SignedSession(requests.Session):
    """Every request SigV4-signed for execute-api, as a real client would send it."""

    def __init__(self, access_key: str) -> None:
        super().__init__()
        self._credentials = Credentials(access_key, "secret")
        self.statuses: list[int] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        body = request.body.encode() if isinstance(request.body, str) else request.body
        signed = AWSRequest(method=request.method, url=request.url, data=body, headers=dict(request.headers))
        SigV4Auth(self._credentials, "execute-api", REGION).add_auth(signed)
        request.headers.update(dict(signed.headers))
        response = super().send(request, **kwargs)
        self.statuses.append(response.status_code)
        return response


@pytest.fixture(scope="module")
def fuzz_runtime(cdk_out: Path) -> Iterator[LocalRuntime]:
    """A runtime of its own: fuzzed jobs (an hour of sleep, millions of rows) must not
    queue up in front of other tests' jobs."""
    runtime = LocalRuntime(cdk_out, port=0, retry_base_delay=0.2, preload=TEST_TASKS).start()
    yield runtime
    runtime.stop()


@schemathesis.check
def no_stack_trace(ctx: Any, response: Any, case: Any) -> None:
    text = response.text
    for marker in TRACE_MARKERS:
        if marker in text:
            raise AssertionError(f"the answer leaks internals ({marker!r}): {text[:300]}")


CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    no_stack_trace,
]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_no_generated_request_gets_a_5xx_or_a_stack_trace(fuzz_runtime: LocalRuntime, mode: GenerationMode) -> None:
    root = "/".join(fuzz_runtime.api_url.split("/", 3)[:3])
    schema = schemathesis.openapi.from_url(root + "/openapi.json")  # the document as the runtime serves it
    session = SignedSession("FUZZER")
    operations = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
    assert len(operations) == 4
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def send(case: schemathesis.Case) -> None:
            case.call_and_validate(session=session, checks=CHECKS)

        before = len(session.statuses)
        send()
        assert len(session.statuses) - before >= 10, f"too few requests reached {operation.label}"
    answered = set(session.statuses)
    assert max(answered) < 500
    # The generator reached both sides: accepted requests and refused ones.
    if mode is GenerationMode.POSITIVE:
        assert answered & {200, 202}, answered
    assert answered & {400, 404, 409, 413, 415, 422}, answered
