"""Webhook callbacks: when a job with a ``callback_url`` finishes, its final document is
POSTed there, signed, retried with backoff, and the outcome recorded on the job.

Signature (verify it in your receiver with :func:`verify_signature`, or by hand):

    X-Async-Jobs-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

The timestamp is signed with the body so a captured request cannot be replayed later
(receivers reject timestamps older than a few minutes). ``X-Async-Jobs-Delivery`` is the
same for every retry of one delivery: receivers use it to ignore duplicates. The headers
carry the app's name (``app_name``: ``acme-reports`` sends ``X-Acme-Reports-Signature``).

A callback URL is where this service sends requests from inside your network, so it is
checked twice: when the job is submitted (scheme, form, literal addresses) and again just
before each delivery, after DNS resolution, connecting to the very address that passed
(no private, loopback, link-local or otherwise non-public address; https only unless the
deployment allows http, which only the local runtime does).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import random
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from jobs.naming import AppName

MAX_URL_LENGTH = 2048
# Receivers should refuse signatures older than this (seconds): replay protection.
DEFAULT_TOLERANCE_SECONDS = 300


class UnsafeCallbackUrl(ValueError):
    """The URL may not be called back: malformed, not https, or not a public address."""


@dataclass(frozen=True)
class CallbackPolicy:
    """Which URLs may be called: https only and public addresses only, unless relaxed
    (the local runtime, whose only network is loopback, relaxes both)."""

    require_https: bool = True
    allow_private_networks: bool = False


@dataclass(frozen=True)
class CallbackTarget:
    scheme: str
    host: str
    port: int
    path: str  # path and query


def check_callback_url(url: str, policy: CallbackPolicy) -> CallbackTarget:
    """Check what can be checked without DNS; raises :class:`UnsafeCallbackUrl`."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise UnsafeCallbackUrl(f"callback_url must be a URL of at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UnsafeCallbackUrl(f"callback_url is not a valid URL: {error}") from None
    allowed = ("https",) if policy.require_https else ("https", "http")
    if parts.scheme not in allowed:
        raise UnsafeCallbackUrl(f"callback_url must use {' or '.join(allowed)}")
    if not parts.hostname:
        raise UnsafeCallbackUrl("callback_url must name a host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeCallbackUrl("callback_url must not carry credentials; the request is signed instead")
    if parts.fragment:
        raise UnsafeCallbackUrl("callback_url must not have a fragment")
    host = parts.hostname
    literal = _ip_literal(host)
    if literal is not None:
        _check_address(literal, policy)
    elif not policy.allow_private_networks and (host == "localhost" or host.endswith((".localhost", ".local"))):
        raise UnsafeCallbackUrl("callback_url must be a public address")
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    return CallbackTarget(parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path)


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _check_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address, policy: CallbackPolicy) -> None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    if address.is_unspecified or address.is_multicast:
        raise UnsafeCallbackUrl("callback_url must be a unicast address")
    if policy.allow_private_networks:
        return
    if not address.is_global or address.is_link_local or address.is_loopback or address.is_private:
        # is_global excludes private, shared (100.64/10), reserved and documentation ranges.
        raise UnsafeCallbackUrl("callback_url must be a public address (no private, loopback or link-local)")


def resolve_public(target: CallbackTarget, policy: CallbackPolicy) -> str:
    """The address to connect to: the host's first address, after checking every address
    it resolves to (one bad address is enough to refuse: DNS may rotate)."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise UnsafeCallbackUrl(f"callback_url host {target.host!r} does not resolve") from error
    addresses = [str(info[4][0]) for info in infos]
    for address in addresses:
        parsed = _ip_literal(address.split("%")[0])
        if parsed is None:
            raise UnsafeCallbackUrl(f"callback_url host {target.host!r} resolved to {address!r}")
        _check_address(parsed, policy)
    return addresses[0]


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The value of the signature header (:func:`signature_header`) for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    secret: bytes,
    header: str,
    body: bytes,
    now: float | None = None,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """For receivers: True when ``header`` is a valid, fresh signature of ``body``."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance_seconds:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


@dataclass(frozen=True)
class DeliveryOutcome:
    """How a callback went: ``DELIVERED`` (a 2xx answer) or ``FAILED``, after ``attempts``."""

    status: str
    attempts: int
    response_status: int | None = None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status == "DELIVERED"


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to an address checked beforehand, with the certificate checked for the URL's
    host name: DNS is not asked again, so it cannot answer differently the second time."""

    def __init__(self, address: str, host: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, address: str, host: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


def signature_header(app: AppName) -> str:
    """``X-Async-Jobs-Signature``: the signature of the body and the time it was sent."""
    return f"X-{app.header}-Signature"


def delivery_header(app: AppName) -> str:
    """``X-Async-Jobs-Delivery``: the same on every retry of one delivery."""
    return f"X-{app.header}-Delivery"


class CallbackSender:
    """POSTs a job document to its callback URL, retrying what a retry can fix (connection
    errors, timeouts, 429 and 5xx answers) with exponential backoff and full jitter."""

    def __init__(
        self,
        app: AppName,
        secret: Callable[[], bytes],
        policy: CallbackPolicy,
        max_attempts: int,
        timeout_seconds: float,
        backoff_base_seconds: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._app = app
        self._secret = secret
        self._policy = policy
        self._max_attempts = max_attempts
        self._timeout = timeout_seconds
        self._backoff_base = backoff_base_seconds
        self._sleep = sleep

    def deliver(self, url: str, document: dict[str, Any], delivery_id: str) -> DeliveryOutcome:
        body = json.dumps(document, separators=(",", ":")).encode()
        try:
            target = check_callback_url(url, self._policy)
        except UnsafeCallbackUrl as refusal:
            return DeliveryOutcome("FAILED", 1, error=str(refusal))
        last = DeliveryOutcome("FAILED", 0, error="not attempted")
        for attempt in range(1, self._max_attempts + 1):
            if attempt > 1:
                self._sleep(random.uniform(0, self._backoff_base * 2 ** (attempt - 2)))  # noqa: S311  jitter, not crypto
            try:
                address = resolve_public(target, self._policy)  # again each time: DNS may change its answer
            except UnsafeCallbackUrl as refusal:
                return DeliveryOutcome("FAILED", attempt, error=str(refusal))  # retrying cannot make it safe
            try:
                status = self._post(target, address, body, delivery_id)
            except (OSError, http.client.HTTPException) as error:
                last = DeliveryOutcome("FAILED", attempt, error=f"{type(error).__name__}: {error}"[:300])
                continue
            if 200 <= status < 300:
                return DeliveryOutcome("DELIVERED", attempt, status)
            last = DeliveryOutcome("FAILED", attempt, status, f"the receiver answered {status}")
            if status != 429 and status < 500:
                break  # the receiver refuses this request; sending it again will not change that
        return last

    def _post(self, target: CallbackTarget, address: str, body: bytes, delivery_id: str) -> int:
        connection_type = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
        connection = connection_type(address, target.host, target.port, self._timeout)
        try:
            connection.request(
                "POST",
                target.path,
                body=body,
                headers={
                    "Content-Type": "application/json",
                    "User-Agent": f"{self._app}-callbacks/1",
                    signature_header(self._app): sign(self._secret(), int(time.time()), body),
                    delivery_header(self._app): delivery_id,
                },
            )
            response = connection.getresponse()
            response.read(64 * 1024)  # the answer's body is not used; read a little so the connection ends cleanly
            return response.status
        finally:
            connection.close()
