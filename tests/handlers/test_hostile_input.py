"""Hostile input never becomes a 5XX (issue #16): every HTTP handler, fed any body, query
string, header and path parameter, answers with a well-formed 2XX or 4XX (503 only for
the documented dispatch failure) whose message is a bounded excerpt.

The parametrized cases are the red team's findings, each of which answered 500 before
the fix; the properties cover their classes."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs.api import MAX_MESSAGE_CHARS
from jobs.handlers import cancel, status, submit
from jobs.strict_json import MAX_JSON_DEPTH
from tests.events import LambdaContext, cancel_event, checked_answer, list_event, status_event, submit_event

pytestmark = pytest.mark.usefixtures("aws")

HANDLERS = {"submit": submit.handler, "status": status.handler, "cancel": cancel.handler}


def answer(handler: str, event: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
    response = HANDLERS[handler](event, LambdaContext(function_name=handler, timeout_seconds=29))
    assert isinstance(response, dict) and isinstance(response["statusCode"], int)
    status_code, body, headers = checked_answer(response)
    assert status_code < 500 or status_code == 503, (status_code, body)
    if status_code >= 400:
        assert len(body["message"]) <= MAX_MESSAGE_CHARS
        assert "Traceback" not in body["message"]
    return status_code, body, headers


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("status_filter", ["pend\u0131ng", "\u00b2", "RUNNING\u0000"])
def test_a_status_filter_that_is_not_an_ascii_status_name_is_a_400(status_filter: str) -> None:
    status_code, body, _ = answer("status", list_event({"status": status_filter}))
    assert status_code == 400 and "status must be one of" in body["message"]


@pytest.mark.parametrize(
    "raw",
    [
        '{"task": "echo", "callback_url": "https://example.com/\\ud800"}',
        '{"task": "echo", "input": {"message": "\\udc00 alone"}}',
        '{"task": "echo", "input": {"\\ud83d": 1}}',
    ],
)
def test_a_lone_surrogate_anywhere_in_a_body_is_a_400_not_a_lost_job(raw: str) -> None:
    # Valid JSON grammar, but no Unicode character: DynamoDB (UTF-8) could not store it, and
    # the job's own writes would fail later (I-JSON, RFC 7493, refuses it).
    status_code, body, _ = answer("submit", submit_event(raw))
    assert status_code == 400 and "lone surrogate" in body["message"]
    paired = '{"task": "echo", "input": {"message": "\\ud83d\\ude00"}}'  # a pair is one character
    assert answer("submit", submit_event(paired))[0] == 202


def test_the_location_is_never_a_network_path() -> None:
    event = submit_event({"task": "sleep", "input": {"seconds": 1}})
    event["requestContext"]["path"] = "//evil.example/jobs"
    status_code, body, headers = answer("submit", event)
    assert status_code == 202
    assert headers["Location"] == f"/evil.example/jobs/{body['job_id']}"  # a path on the API's own host


@pytest.mark.parametrize(
    "limit",
    ["\u00b2", "1" * 5000, "\u0661\u0660", "-1", "0", "101", " 10", "10 ", "1e1", "0x10", "\u0000"],
)
def test_a_list_limit_that_is_not_plain_ascii_digits_in_range_is_a_400(limit: str) -> None:
    status_code, body, _ = answer("status", list_event({"limit": limit}))
    assert status_code == 400, body
    assert "limit must be a whole number" in body["message"]


@pytest.mark.parametrize(
    ("raw_body", "base64_encoded", "message"),
    [
        (deep(1000), False, "nests deeper than"),
        (deep(MAX_JSON_DEPTH + 1), False, "nests deeper than"),
        ('{"task": "sleep", "input": {"seconds": NaN}}', False, "not valid JSON"),
        ('{"task": "sleep", "input": {"seconds": Infinity}}', False, "not valid JSON"),
        ('{"task": "sleep", "input": {"seconds": -Infinity}}', False, "not valid JSON"),
        (base64.b64encode(b'{"task": "\xff\xfe"}').decode(), True, "not valid UTF-8"),
        ("not base64!", True, "not valid base64"),
        ('{"task": "sleep", "input": {"seconds": 1e999999}}', False, "not valid JSON"),  # inf
        ("[1, 2]", False, "must be a JSON object"),
        ('"text"', False, "must be a JSON object"),
        ('{"task": "\ud800"}', False, "not valid UTF-8"),
    ],
)
def test_a_body_that_is_not_strict_shallow_utf8_json_is_a_400(raw_body: str, base64_encoded: bool, message: str):
    event = submit_event(raw_body)
    event["isBase64Encoded"] = base64_encoded
    status_code, body, _ = answer("submit", event)
    assert status_code == 400, body
    assert message in body["message"]


def test_json_nested_within_the_limit_is_still_accepted() -> None:
    nested: Any = 1
    for _ in range(MAX_JSON_DEPTH - 3):  # the request object and "input" are two levels
        nested = [nested]
    status_code, body, _ = answer("submit", submit_event({"task": "echo", "input": {"deep": nested}}))
    assert status_code == 202, body


def test_a_422_quotes_an_excerpt_of_the_input_not_all_of_it() -> None:
    huge = "x" * 3_000  # under the tests' 4 KiB body limit; the deployed limit is 64 KiB
    status_code, body, _ = answer("submit", submit_event({"task": "sleep", "input": {"seconds": huge}}))
    assert status_code == 422
    assert body["message"].startswith("invalid input for task 'sleep'")
    assert body["message"].endswith("…")


def test_the_location_is_a_path_never_built_from_the_clients_host_or_scheme() -> None:
    event = submit_event(
        {"task": "sleep", "input": {"seconds": 1}},
        headers={"Host": "evil.example", "X-Forwarded-Proto": "javascript"},
    )
    status_code, body, headers = answer("submit", event)
    assert status_code == 202
    assert headers["Location"] == f"/v1/jobs/{body['job_id']}"


# -- the classes -----------------------------------------------------------------------

TEXT = st.text(max_size=300)
HOSTILE_TEXT = st.one_of(
    TEXT,
    st.text(alphabet=st.characters(codec="utf-8"), max_size=50),
    st.sampled_from(["\u00b2", "\u0661", "%C2%B2", "1" * 5000, "\x00", "\ud800", "NaN", deep(2000), "é" * 3000]),
)
QUERY = st.dictionaries(st.sampled_from(["limit", "status", "next_token", "x", "é"]), HOSTILE_TEXT, max_size=4)
HEADERS = st.dictionaries(
    st.sampled_from(["Content-Type", "Host", "X-Forwarded-Proto", "Idempotency-Key", "Accept", "X-Ünicode"]),
    HOSTILE_TEXT,
    max_size=4,
)


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, bool]:
    """A body as API Gateway passes it: text, or base64 of any bytes."""
    if draw(st.booleans()):
        return base64.b64encode(draw(st.binary(max_size=2000))).decode(), True
    shaped = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
        max_leaves=20,
    ).map(json.dumps)
    task_like = st.fixed_dictionaries(
        {"task": st.sampled_from(["sleep", "echo", "nope", ""]) | TEXT},
        optional={"input": st.dictionaries(TEXT, st.integers() | TEXT, max_size=3), "callback_url": HOSTILE_TEXT},
    ).map(json.dumps)
    return draw(st.one_of(HOSTILE_TEXT, shaped, task_like)), False


HYPOTHESIS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@HYPOTHESIS
@given(body=bodies(), headers=HEADERS, query=QUERY)
def test_submit_answers_any_request_with_a_2xx_or_4xx(body: tuple[str, bool], headers, query) -> None:
    event = submit_event(body[0], headers={"Content-Type": "application/json", **headers}, query=query or None)
    event["isBase64Encoded"] = body[1]
    answer("submit", event)


# A {job_id} path parameter is one non-empty path segment (API Gateway matches no "/" in it).
JOB_IDS = HOSTILE_TEXT.filter(lambda text: text != "" and "/" not in text)


@HYPOTHESIS
@given(job_id=JOB_IDS, headers=HEADERS, query=QUERY)
def test_status_and_cancel_answer_any_job_id_with_a_4xx(job_id: str, headers, query) -> None:
    for handler, event in (
        ("status", status_event(job_id, headers=headers, query=query or None)),
        ("cancel", cancel_event(job_id, headers=headers, query=query or None)),
    ):
        status_code, _, _ = answer(handler, event)
        assert 400 <= status_code < 500


@HYPOTHESIS
@given(query=QUERY, headers=HEADERS)
def test_listing_answers_any_query_with_a_200_or_400(query, headers) -> None:
    status_code, _, _ = answer("status", list_event(query or None, headers=headers))
    assert status_code in (200, 400)
