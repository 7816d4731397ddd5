"""The callback URL guard against a table of cases (issue #16): every special-purpose block
of IANA's IPv4 and IPv6 registries, every IPv6 form that embeds an IPv4 address, the
legacy numeric forms of IPv4, internationalised names and paths, ports; and the callback
pipeline under hypothesis: any string is either refused at submit or delivered or failed
with a reason, never an exception out of the batch."""

from __future__ import annotations

import http.server
import ipaddress
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from jobs.callbacks import (
    SPECIAL_PURPOSE,
    CallbackSender,
    CallbackTarget,
    UnsafeCallbackUrl,
    check_callback_url,
    refusal,
)
from jobs.naming import AppName
from tests.unit.test_callbacks import DEPLOYED, LOCAL

REFUSED_ADDRESSES = [
    # IPv4 special-purpose blocks (one address inside each)
    "0.0.0.0", "0.1.2.3", "10.1.2.3", "100.64.0.1", "127.0.0.1", "127.255.255.254", "169.254.169.254",  # noqa: S104
    "172.16.0.1", "172.31.255.255", "192.0.0.8", "192.0.0.170", "192.0.2.1", "192.31.196.1", "192.52.193.1",
    "192.88.99.1", "192.168.1.1", "192.175.48.1", "198.18.0.1", "198.19.255.255", "198.51.100.7",
    "203.0.113.9", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
    # IPv6 outside global unicast, and the special blocks inside it
    "::", "::1", "::a9fe:a9fe", "::127.0.0.1", "100::1", "64:ff9b:1::1", "fc00::1", "fd12:3456::1",
    "fe80::1", "fec0::1", "ff02::1", "2001::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:2::1",
    "2001:db8::1", "2002:7f00:1::1", "2002:a9fe:a9fe::1", "3fff::1", "5f00::1",
    # IPv6 forms that embed a non-public IPv4 address: mapped, translated, NAT64
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:0:127.0.0.1", "::ffff:0:a9fe:a9fe", "64:ff9b::a9fe:a9fe",
    "::ffff:0:8.8.8.8",  # IPv4-translated (RFC 2765): routed as IPv6, outside global unicast
    "64:ff9b::7f00:1", "64:ff9b::a00:1",
]  # fmt: skip
PUBLIC_ADDRESSES = [
    "93.184.215.14", "8.8.8.8", "1.1.1.1", "2606:4700::1111", "2a00:1450:4001:82b::200e",
    "::ffff:93.184.215.14", "64:ff9b::5db8:d70e",  # 93.184.215.14, mapped and through NAT64
]  # fmt: skip


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_special_purpose_addresses_are_refused(address: str) -> None:
    assert refusal(ipaddress.ip_address(address), DEPLOYED) is not None
    bracketed = f"[{address}]" if ":" in address else address
    with pytest.raises(UnsafeCallbackUrl, match="public address"):
        check_callback_url(f"https://{bracketed}/hook", DEPLOYED)


@pytest.mark.parametrize("address", PUBLIC_ADDRESSES)
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal(ipaddress.ip_address(address), DEPLOYED) is None


def test_every_block_of_the_table_is_refused_at_its_first_and_last_address() -> None:
    for network_text, _, _ in SPECIAL_PURPOSE:
        network = ipaddress.ip_network(network_text)
        for address in (network[0], network[-1]):
            assert refusal(address, DEPLOYED) is not None, address


def test_the_verdicts_do_not_depend_on_the_ipaddress_modules_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    """The table decides: flags that differ between Python versions change nothing."""
    for cls in (ipaddress.IPv4Address, ipaddress.IPv6Address):
        for flag in ("is_global", "is_private", "is_reserved", "is_loopback", "is_link_local", "is_site_local"):
            if hasattr(cls, flag):
                monkeypatch.setattr(cls, flag, property(lambda _self: False))
    for address in REFUSED_ADDRESSES:
        assert refusal(ipaddress.ip_address(address), DEPLOYED) is not None, address
    for address in PUBLIC_ADDRESSES:
        assert refusal(ipaddress.ip_address(address), DEPLOYED) is None, address


def test_the_local_policy_lets_loopback_through_and_nothing_else() -> None:
    loopback = {"127.0.0.1", "127.255.255.254", "::1", "::ffff:127.0.0.1"}
    for address in loopback:
        assert refusal(ipaddress.ip_address(address), LOCAL) is None, address
    # The machine's own network may still reach the rest (the metadata address, private
    # ranges): the local runtime must not, any more than a deployed stack.
    for address in [*REFUSED_ADDRESSES, "fd00:ec2::254", "::ffff:169.254.169.254"]:
        if address not in loopback:
            assert refusal(ipaddress.ip_address(address), LOCAL) is not None, address
    assert check_callback_url("http://localhost:8080/hook", LOCAL).host == "localhost"
    for url in ("http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "http://printer.local/"):
        with pytest.raises(UnsafeCallbackUrl, match="public address"):
            check_callback_url(url, LOCAL)


@pytest.mark.parametrize(
    "host",
    ["127.1", "2130706433", "0x7f000001", "0177.0.0.1", "0", "10.1", "1.2.3.04", "0x7f.1", "host.0x10", "a.123"],
)
def test_legacy_numeric_forms_of_ipv4_are_refused_at_submit(host: str) -> None:
    with pytest.raises(UnsafeCallbackUrl, match=r"usual form|public address"):
        check_callback_url(f"https://{host}/hook", DEPLOYED)


@pytest.mark.parametrize("host", ["localhost", "localhost.", "LOCALHOST", "a.localhost.", "printer.local."])
def test_names_of_this_machine_or_network_are_refused_with_or_without_the_trailing_dot(host: str) -> None:
    with pytest.raises(UnsafeCallbackUrl, match="public address"):
        check_callback_url(f"https://{host}/hook", DEPLOYED)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://a..example.com/", "valid domain name"),
        ("https://" + "a" * 64 + ".example.com/", "valid domain name"),
        ("https://exa_mple.com\u3002/", "valid domain name"),
        ("https://host.example.com/a b", "spaces or control characters"),
        ("https://host.example.com/\x00", "spaces or control characters"),
        ("https://host.example.com/\x7f", "spaces or control characters"),
        ("https://host.example.com:0/", "port"),
        ("https://host.example.com:25/", "port"),
        ("https://host.example.com:1023/", "port"),
        ("https://host.example.com:65536/", "valid URL"),
        ("https://exa$mple.com/", "valid domain name"),
        ("https://example.com/\ud800", "valid URL"),  # a lone surrogate, as "\ud800" in the JSON body
        ("https://example.com/?q=\udfff", "valid URL"),
        ("https://[2606:4700::1%25eth0]/", "network interface"),
        ("https://[fe80::1%25eth0]/", "network interface"),
        ("https://[::ffff:8.8.8.8%251]/", "network interface"),
    ],
)
def test_urls_that_cannot_be_sent_are_refused_at_submit(url: str, reason: str) -> None:
    with pytest.raises(UnsafeCallbackUrl, match=reason):
        check_callback_url(url, DEPLOYED)


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("https://café.example.com/hook", "https://xn--caf-dma.example.com/hook"),
        ("https://HOOKS.Example.COM/x", "https://hooks.example.com/x"),
        ("https://hooks.example.com/café?q=é", "https://hooks.example.com/caf%C3%A9?q=%C3%A9"),
        ("https://hooks.example.com/a%20b", "https://hooks.example.com/a%20b"),  # escapes kept
        ("https://hooks.example.com", "https://hooks.example.com/"),
        ("https://hooks.example.com:443/x", "https://hooks.example.com/x"),
        ("https://hooks.example.com:80/x", "https://hooks.example.com:80/x"),
        ("https://hooks.example.com:8443/x", "https://hooks.example.com:8443/x"),
        ("https://[2606:4700:0::1111]/x", "https://[2606:4700::1111]/x"),
    ],
)
def test_sendable_urls_are_kept_in_the_form_they_will_be_called(url: str, normalised: str) -> None:
    target = check_callback_url(url, DEPLOYED)
    assert target.url == normalised
    assert target.url.isascii()
    assert check_callback_url(target.url, DEPLOYED) == target  # normalising twice changes nothing


# -- the pipeline under hypothesis -----------------------------------------------------


class _Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


class LoopbackSender(CallbackSender):
    """Sends every callback, whatever its host, to the loopback receiver, through the real
    http.client: the URL's path, query and Host header are the generated ones."""

    def __init__(self, port: int) -> None:
        super().__init__(AppName("async-jobs"), lambda: b"secret", LOCAL, 2, 2, sleep=lambda _seconds: None)
        self._port = port

    def _post(self, target: CallbackTarget, address: str, body: bytes, delivery_id: str, secret: bytes) -> int:
        return super()._post(
            CallbackTarget("http", target.host, self._port, target.path), "127.0.0.1", body, delivery_id, secret
        )


PRINTABLE = st.characters(blacklist_categories=("Cc", "Zs"))  # what a sendable URL may hold (surrogates too)
HOSTS = st.one_of(
    st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z]{2,6}){1,2}", fullmatch=True),
    st.sampled_from(["café.fr", "bücher.example", "日本.jp", "xn--caf-dma.fr", "localhost", "127.0.0.1", "[::1]"]),
    st.text(max_size=70),
)
URLS = st.one_of(
    st.text(max_size=120),
    st.builds(
        lambda scheme, host, port, path, query: f"{scheme}://{host}{port}/{path}{query}",
        st.sampled_from(["http", "https", "https", "ftp", ""]),
        HOSTS,
        st.sampled_from(["", "", ":0", ":80", ":8080", ":99999", ":x", ":-1"]),
        st.text(PRINTABLE, max_size=40) | st.text(max_size=20),
        st.just("") | st.text(PRINTABLE, max_size=30).map(lambda text: "?" + text),
    ),
)


@settings(max_examples=300, deadline=None)
@given(url=URLS)
def test_any_callback_url_is_refused_at_submit_or_ends_delivered_or_failed(receiver: int, url: str) -> None:
    try:
        target = check_callback_url(url, LOCAL)
    except UnsafeCallbackUrl as refused:
        assert str(refused).startswith("callback_url ")
        event("refused at submit")
        return
    with pytest.MonkeyPatch.context() as patch:  # every name resolves to loopback: no DNS, no internet
        patch.setattr("socket.getaddrinfo", lambda host, port, *_, **__: [(2, 1, 6, "", ("127.0.0.1", port))])
        outcome = LoopbackSender(receiver).deliver(target.url, {"job_id": "x"}, "d")
    assert outcome.status in ("DELIVERED", "FAILED")
    assert outcome.delivered or outcome.error
    event("delivered" if outcome.delivered else "failed")


def test_a_normalised_international_url_is_delivered_through_http_client(receiver: int) -> None:
    target = check_callback_url("http://café.example/ré sumé?q=ü".replace(" ", ""), LOCAL)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("socket.getaddrinfo", lambda host, port, *_, **__: [(2, 1, 6, "", ("127.0.0.1", port))])
        outcome = LoopbackSender(receiver).deliver(target.url, {"job_id": "x"}, "d")
    assert (outcome.status, outcome.response_status) == ("DELIVERED", 204)


class _Trickler(http.server.BaseHTTPRequestHandler):
    """A receiver that answers one byte at a time, each just within a read timeout."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        try:
            while True:
                self.wfile.write(b"X")
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:
            return

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_receiver_trickling_its_answer_cannot_hold_a_delivery_past_its_attempts() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Trickler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sender = CallbackSender(AppName("async-jobs"), lambda: b"secret", LOCAL, 2, 1, sleep=lambda _seconds: None)
    started = time.monotonic()
    try:
        outcome = sender.deliver(f"http://127.0.0.1:{server.server_address[1]}/hook", {"job_id": "x"}, "d")
    finally:
        server.shutdown()
    assert outcome.status == "FAILED" and outcome.attempts == 2 and outcome.error
    assert time.monotonic() - started < 2 * 1 + 1.5  # two attempts of at most the 1 s timeout each


def test_a_secret_that_cannot_be_read_is_the_deployments_fault_and_is_raised_for_a_retry() -> None:
    def no_secret() -> bytes:
        raise RuntimeError("Secrets Manager is unavailable")

    sender = CallbackSender(AppName("async-jobs"), no_secret, LOCAL, 2, 1, sleep=lambda _seconds: None)
    with pytest.raises(RuntimeError, match="unavailable"):
        sender.deliver("http://127.0.0.1:9999/hook", {"job_id": "x"}, "d")
