"""Callback URLs are checked before anything is sent; deliveries are signed and retried
only when a retry can help."""

from __future__ import annotations

import http.client
from typing import Any

import pytest

from jobs.callbacks import (
    CallbackPolicy,
    CallbackSender,
    CallbackTarget,
    UnsafeCallbackUrl,
    check_callback_url,
    delivery_header,
    resolve_public,
    sign,
    signature_header,
    verify_signature,
)
from jobs.naming import AppName

DEPLOYED = CallbackPolicy()
LOCAL = CallbackPolicy(require_https=False, allow_loopback=True)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/jobs",
        "https://hooks.example.com:8443/jobs?tenant=a",
        "https://93.184.215.14/hook",
        "https://[2606:4700::1111]/hook",
    ],
)
def test_public_https_urls_are_accepted(url: str):
    target = check_callback_url(url, DEPLOYED)
    assert target.scheme == "https"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/jobs", "https"),
        ("ftp://hooks.example.com/jobs", "https"),
        ("https:///no-host", "host"),
        ("https://user:pass@hooks.example.com/", "credentials"),
        ("https://hooks.example.com/#frag", "fragment"),
        ("https://127.0.0.1/hook", "public"),
        ("https://localhost/hook", "public"),
        ("https://printer.local/hook", "public"),
        ("https://10.1.2.3/hook", "public"),
        ("https://172.16.0.1/hook", "public"),
        ("https://192.168.1.1/hook", "public"),
        ("https://169.254.169.254/latest/meta-data", "public"),  # the instance metadata service
        ("https://100.64.0.1/hook", "public"),  # carrier-grade NAT
        ("https://[::1]/hook", "public"),
        ("https://[fe80::1]/hook", "public"),
        ("https://[fd00::1]/hook", "public"),
        ("https://[::ffff:10.0.0.1]/hook", "public"),  # IPv4-mapped private
        ("https://0.0.0.0/hook", "unicast"),
        ("https://224.0.0.1/hook", "unicast"),
        ("https://hooks.example.com:99999/", "valid URL"),
        ("https://" + "a" * 2100 + ".com/", "2048"),
    ],
)
def test_unsafe_urls_are_refused_with_the_reason(url: str, reason: str):
    with pytest.raises(UnsafeCallbackUrl, match=reason):
        check_callback_url(url, DEPLOYED)


def test_the_local_policy_allows_http_to_loopback_only_because_it_is_asked_to():
    assert check_callback_url("http://127.0.0.1:8080/hook", LOCAL) == CallbackTarget("http", "127.0.0.1", 8080, "/hook")
    with pytest.raises(UnsafeCallbackUrl):
        check_callback_url("http://127.0.0.1:8080/hook", DEPLOYED)


def test_names_are_refused_when_any_address_they_resolve_to_is_not_public(monkeypatch: pytest.MonkeyPatch):
    answers = {"mixed.example": ["93.184.215.14", "10.0.0.7"], "public.example": ["93.184.215.14"]}

    def fake_getaddrinfo(host: str, port: int, **_: Any) -> list[Any]:
        return [(2, 1, 6, "", (address, port)) for address in answers[host]]

    monkeypatch.setattr("socket.getaddrinfo", fake_getaddrinfo)
    with pytest.raises(UnsafeCallbackUrl, match="public"):
        resolve_public(CallbackTarget("https", "mixed.example", 443, "/"), DEPLOYED)
    assert resolve_public(CallbackTarget("https", "public.example", 443, "/"), DEPLOYED) == "93.184.215.14"


def test_signatures_verify_only_with_the_same_secret_body_and_a_fresh_timestamp():
    header = sign(b"secret", 1_700_000_000, b'{"a":1}')
    assert header.startswith("t=1700000000,v1=")
    assert verify_signature(b"secret", header, b'{"a":1}', now=1_700_000_010)
    assert not verify_signature(b"other", header, b'{"a":1}', now=1_700_000_010)
    assert not verify_signature(b"secret", header, b'{"a":2}', now=1_700_000_010)
    assert not verify_signature(b"secret", header, b'{"a":1}', now=1_700_000_000 + 301)  # a replay
    assert not verify_signature(b"secret", "garbage", b'{"a":1}', now=1_700_000_000)


class ScriptedSender(CallbackSender):
    """A sender whose network answers come from a script: status codes or exceptions."""

    def __init__(self, script: list[Any], **kwargs: Any) -> None:
        self.sleeps: list[float] = []
        super().__init__(
            app=AppName("acme-reports"),
            secret=lambda: b"secret",
            policy=LOCAL,
            max_attempts=kwargs.pop("max_attempts", 4),
            timeout_seconds=1,
            sleep=self.sleeps.append,
        )
        self.script = script
        self.sent: list[tuple[str, bytes, str]] = []

    def _post(self, target: CallbackTarget, address: str, body: bytes, delivery_id: str, secret: bytes) -> int:
        self.sent.append((target.path, body, delivery_id))
        answer = self.script.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return int(answer)


def test_a_2xx_answer_is_delivered_at_once():
    sender = ScriptedSender([204])
    outcome = sender.deliver("http://127.0.0.1:9999/hook", {"job_id": "x"}, "delivery-1")
    assert (outcome.status, outcome.attempts, outcome.response_status) == ("DELIVERED", 1, 204)
    assert sender.sent == [("/hook", b'{"job_id":"x"}', "delivery-1")]
    assert sender.sleeps == []


def test_server_errors_timeouts_and_429_are_retried_with_growing_backoff():
    sender = ScriptedSender([503, TimeoutError("timed out"), 429, 200])
    outcome = sender.deliver("http://127.0.0.1:9999/hook", {}, "d")
    assert (outcome.status, outcome.attempts) == ("DELIVERED", 4)
    assert len(sender.sleeps) == 3
    assert all(0 <= pause <= 2**i for i, pause in enumerate(sender.sleeps))


def test_a_refusal_is_not_retried():
    sender = ScriptedSender([404])
    outcome = sender.deliver("http://127.0.0.1:9999/hook", {}, "d")
    assert (outcome.status, outcome.attempts, outcome.response_status) == ("FAILED", 1, 404)


def test_giving_up_after_the_last_attempt_keeps_the_last_error():
    sender = ScriptedSender([ConnectionRefusedError("refused"), http.client.RemoteDisconnected("gone")], max_attempts=2)
    outcome = sender.deliver("http://127.0.0.1:9999/hook", {}, "d")
    assert (outcome.status, outcome.attempts) == ("FAILED", 2)
    assert "RemoteDisconnected" in str(outcome.error)


def test_an_unsafe_url_is_never_requested():
    sender = ScriptedSender([200])
    sender._policy = DEPLOYED
    outcome = sender.deliver("https://169.254.169.254/latest/meta-data", {}, "d")
    assert outcome.status == "FAILED"
    assert "public" in str(outcome.error)
    assert sender.sent == []


def test_the_headers_carry_the_apps_name():
    assert signature_header(AppName("async-jobs")) == "X-Async-Jobs-Signature"
    assert delivery_header(AppName("acme-reports")) == "X-Acme-Reports-Delivery"
