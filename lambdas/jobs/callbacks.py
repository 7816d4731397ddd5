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
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote, urlsplit

from jobs.naming import AppName

MAX_URL_LENGTH = 2048
# Receivers should refuse signatures older than this (seconds): replay protection.
DEFAULT_TOLERANCE_SECONDS = 300

# The addresses a callback may never reach, from IANA's IPv4 and IPv6 Special-Purpose
# Address Registries (RFC 6890 and its updates), with multicast and the reserved blocks.
# This table decides, not the ``ipaddress`` module's flags (``is_global``, ``is_private``),
# which have changed between Python versions. The local runtime's relaxed policy lets
# loopback through, and nothing else here.
SPECIAL_PURPOSE: tuple[tuple[str, str, bool], ...] = (
    # IPv4 (network, what it is, unicast)
    ("0.0.0.0/8", "'this network'", False),
    ("10.0.0.0/8", "private-use", True),
    ("100.64.0.0/10", "shared address space (carrier-grade NAT)", True),
    ("127.0.0.0/8", "loopback", True),
    ("169.254.0.0/16", "link-local (the instance metadata service)", True),
    ("172.16.0.0/12", "private-use", True),
    ("192.0.0.0/24", "IETF protocol assignments", True),
    ("192.0.2.0/24", "documentation (TEST-NET-1)", True),
    ("192.31.196.0/24", "AS112-v4", True),
    ("192.52.193.0/24", "AMT", True),
    ("192.88.99.0/24", "deprecated 6to4 relay anycast", True),
    ("192.168.0.0/16", "private-use", True),
    ("192.175.48.0/24", "direct delegation AS112 service", True),
    ("198.18.0.0/15", "benchmarking", True),
    ("198.51.100.0/24", "documentation (TEST-NET-2)", True),
    ("203.0.113.0/24", "documentation (TEST-NET-3)", True),
    ("224.0.0.0/4", "multicast", False),
    ("240.0.0.0/4", "reserved", False),
    # IPv6. Outside 2000::/3 (global unicast) nothing is allowed at all, which covers
    # ::/128, ::1, the IPv4-compatible ::/96, 100::/64, 64:ff9b:1::/48, fc00::/7, fe80::/10,
    # fec0::/10 and ff00::/8; these are the special blocks inside it.
    ("2001::/23", "IETF protocol assignments (Teredo, benchmarking, ORCHID...)", True),
    ("2001:db8::/32", "documentation", True),
    ("2002::/16", "6to4", True),
    ("3fff::/20", "documentation", True),
)
_SPECIAL = tuple((ipaddress.ip_network(network), name, unicast) for network, name, unicast in SPECIAL_PURPOSE)
GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")
# What the local runtime's relaxed policy lets through: this machine, and nothing else.
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
MULTICAST_V6 = ipaddress.ip_network("ff00::/8")
UNSPECIFIED_V6 = ipaddress.ip_network("::/128")
# IPv6 forms whose last 32 bits are an IPv4 address that the packet reaches: IPv4-mapped
# (::ffff:0:0/96) and the NAT64 well-known prefix (64:ff9b::/96, which RFC 6052 reserves
# for global IPv4 addresses). The embedded address is checked as the IPv4 address it is.
# Other forms (IPv4-compatible, IPv4-translated) lie outside global unicast: refused.
EMBEDDING_IPV4 = tuple(ipaddress.ip_network(n) for n in ("::ffff:0:0/96", "64:ff9b::/96"))
# Ports a callback may use: the web's own, and unprivileged ones. The privileged ports
# below 1024 belong to other protocols (SMTP, SSH, ...), which a crafted request could
# speak to; port 0 is no port.
WEB_PORTS = (80, 443)
FIRST_UNPRIVILEGED_PORT = 1024
# A host whose last label is a number is an IPv4 address in one of the legacy forms that
# resolvers still accept (127.1, 2130706433, 0x7f000001, 0177.0.0.1), never a domain name.
NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
HOST_NAME = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$")
# Characters a URL may not carry raw: controls, space and DEL. http.client refuses them.
UNSENDABLE = re.compile(r"[\x00-\x20\x7f]")
# What stays as it is when percent-encoding a path or query (RFC 3986's reserved and
# unreserved characters, and "%" so that existing escapes are kept).
URL_SAFE = "/:@!$&'()*+,;=-._~%?"


class UnsafeCallbackUrl(ValueError):
    """The URL may not be called back: malformed, not https, or not a public address."""


@dataclass(frozen=True)
class CallbackPolicy:
    """Which URLs may be called: https only and public addresses only, unless relaxed.
    The local runtime relaxes both as far as it needs and no further: ``http://``, and
    loopback (its receivers run on this machine); never another private, link-local or
    special address, which its machine's network might still reach."""

    require_https: bool = True
    allow_loopback: bool = False


@dataclass(frozen=True)
class CallbackTarget:
    scheme: str
    host: str  # ASCII: a domain name (IDNA-encoded) or an IP address
    port: int
    path: str  # path and query, ASCII (non-ASCII percent-encoded)

    @property
    def url(self) -> str:
        """The URL as it will be called: what a job stores and shows."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{host}{port}{self.path}"


def check_callback_url(url: str, policy: CallbackPolicy) -> CallbackTarget:
    """Check what can be checked without DNS, and normalise the URL (an IDNA host, a
    percent-encoded path); raises :class:`UnsafeCallbackUrl` with the reason."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise UnsafeCallbackUrl(f"callback_url must be a URL of at most {MAX_URL_LENGTH} characters")
    if UNSENDABLE.search(url):
        raise UnsafeCallbackUrl("callback_url must not contain spaces or control characters")
    try:
        url.encode("utf-8")  # a lone surrogate ("\ud800" in the JSON) has no encoding
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:  # UnicodeError included
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
    if port is not None and port not in WEB_PORTS and port < FIRST_UNPRIVILEGED_PORT:
        raise UnsafeCallbackUrl(f"callback_url port must be 80, 443 or from {FIRST_UNPRIVILEGED_PORT} up")
    host = _checked_host(parts.hostname, policy)
    path = quote(parts.path or "/", safe=URL_SAFE)
    if parts.query:
        path += "?" + quote(parts.query, safe=URL_SAFE)
    return CallbackTarget(parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path)


def _checked_host(hostname: str, policy: CallbackPolicy) -> str:
    """The host as it will be connected to: an allowed IP address, or a domain name in
    ASCII (IDNA) that is not one of the names that always mean this machine or network."""
    literal = _ip_literal(hostname)
    if literal is not None:
        _check_address(literal, policy)
        return str(literal)
    if "%" in hostname:  # an IPv6 zone (fe80::1%eth0) names an interface of this machine
        raise UnsafeCallbackUrl("callback_url host must not name a network interface")
    name = hostname.rstrip(".")  # "localhost." is localhost
    try:
        ascii_name = name.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise UnsafeCallbackUrl("callback_url host is not a valid domain name") from None
    if not HOST_NAME.match(ascii_name):
        raise UnsafeCallbackUrl("callback_url host is not a valid domain name")
    if NUMERIC_LABEL.match(ascii_name.rsplit(".", 1)[-1]):
        raise UnsafeCallbackUrl("callback_url host must be a domain name or an IP address in its usual form")
    # localhost names mean loopback (RFC 6761); .local names, this network (mDNS).
    is_localhost = ascii_name == "localhost" or ascii_name.endswith(".localhost")
    if ascii_name.endswith(".local") or (is_localhost and not policy.allow_loopback):
        raise UnsafeCallbackUrl("callback_url must be a public address")
    return ascii_name


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``host`` as an IP address, if it is one without an IPv6 zone."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        return None
    return address


def refusal(address: ipaddress.IPv4Address | ipaddress.IPv6Address, policy: CallbackPolicy) -> str | None:
    """Why a callback may not reach ``address`` (None: it may), from the table above."""
    if policy.allow_loopback and any(address.version == n.version and address in n for n in LOOPBACK):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        for prefix in EMBEDDING_IPV4:
            if address in prefix:
                # A mapped address is this machine's IPv4 socket; a NAT64 one goes to a
                # gateway elsewhere, so its loopback is never ours.
                embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
                mapped = prefix == EMBEDDING_IPV4[0]
                return refusal(embedded, policy if mapped else replace(policy, allow_loopback=False))
        if address in MULTICAST_V6 or address in UNSPECIFIED_V6:
            return f"{address} is not a unicast address"
        if address not in GLOBAL_UNICAST_V6:
            return f"{address} is not a global unicast address"
    for network, name, unicast in _SPECIAL:
        if address.version == network.version and address in network:
            if not unicast:
                return f"{address} is not a unicast address ({network}: {name})"
            return f"{address} is not a public address ({network}: {name})"
    return None


def _check_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address, policy: CallbackPolicy) -> None:
    reason = refusal(address, policy)
    if reason is not None:
        raise UnsafeCallbackUrl(f"callback_url must be a public address: {reason}")


def resolve_public(target: CallbackTarget, policy: CallbackPolicy) -> str:
    """The address to connect to: the host's first address, after checking every address
    it resolves to (one bad address is enough to refuse: DNS may rotate)."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise UnsafeCallbackUrl(f"callback_url host {target.host!r} does not resolve") from error
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise UnsafeCallbackUrl(f"callback_url host {target.host!r} does not resolve")
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


def _shut_down(connection: http.client.HTTPConnection, expired: threading.Event) -> None:
    """End an attempt that ran out of time: its blocked read returns at once."""
    expired.set()
    sock = connection.sock
    if sock is not None:
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _described(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:300]


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
        except UnsafeCallbackUrl as refused:
            return DeliveryOutcome("FAILED", 1, error=str(refused))
        except Exception as error:  # any other fault of the URL ends this delivery, not the batch
            return DeliveryOutcome("FAILED", 1, error=_described(error))
        # Read once, before anything is sent: a failure here is the deployment's, not this
        # URL's, so it is raised and the stream retries the record.
        secret = self._secret()
        last = DeliveryOutcome("FAILED", 0, error="not attempted")
        for attempt in range(1, self._max_attempts + 1):
            if attempt > 1:
                self._sleep(random.uniform(0, self._backoff_base * 2 ** (attempt - 2)))  # noqa: S311  jitter, not crypto
            try:
                address = resolve_public(target, self._policy)  # again each time: DNS may change its answer
            except UnsafeCallbackUrl as refused:
                return DeliveryOutcome("FAILED", attempt, error=str(refused))  # retrying cannot make it safe
            try:
                status = self._post(target, address, body, delivery_id, secret)
            except http.client.InvalidURL as error:  # the same URL would be refused again
                return DeliveryOutcome("FAILED", attempt, error=_described(error))
            except (OSError, http.client.HTTPException) as error:
                last = DeliveryOutcome("FAILED", attempt, error=_described(error))
                continue
            except Exception as error:  # a fault of this request, never of the batch
                return DeliveryOutcome("FAILED", attempt, error=_described(error))
            if 200 <= status < 300:
                return DeliveryOutcome("DELIVERED", attempt, status)
            last = DeliveryOutcome("FAILED", attempt, status, f"the receiver answered {status}")
            if status != 429 and status < 500:
                break  # the receiver refuses this request; sending it again will not change that
        return last

    def _post(self, target: CallbackTarget, address: str, body: bytes, delivery_id: str, secret: bytes) -> int:
        connection_type = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
        connection = connection_type(address, target.host, target.port, self._timeout)
        # The socket's timeout bounds each read, not the request: a receiver trickling its
        # answer a byte at a time would hold the attempt (and the invocation) for ever. The
        # whole attempt gets the timeout, after which its socket is shut down.
        expired = threading.Event()
        cut_off = threading.Timer(self._timeout, _shut_down, args=(connection, expired))
        cut_off.daemon = True
        cut_off.start()
        try:
            connection.request(
                "POST",
                target.path,
                body=body,
                headers={
                    "Content-Type": "application/json",
                    "User-Agent": f"{self._app}-callbacks/1",
                    signature_header(self._app): sign(secret, int(time.time()), body),
                    delivery_header(self._app): delivery_id,
                },
            )
            response = connection.getresponse()
            response.read(64 * 1024)  # the answer's body is not used; read a little so the connection ends cleanly
        finally:
            cut_off.cancel()
            connection.close()
        if expired.is_set():  # what was read was cut short: not an answer to trust
            raise TimeoutError(f"the receiver did not answer within {self._timeout:g} s")
        return response.status
