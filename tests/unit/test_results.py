"""Presigned result URLs name the bucket's regional endpoint, in every region.

S3 answers a bucket's global host (``<bucket>.s3.amazonaws.com``) outside us-east-1 with
a 307 to the regional host while the bucket is new (always in opt-in regions), and a
SigV4 signature is bound to the host it was made for: the URL must name the regional one.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from jobs import clients
from jobs.clients import S3_CONFIG
from jobs.results import S3ResultStore


@pytest.fixture(autouse=True)
def no_client_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a fresh process: the store's client is created with this test's environment."""
    monkeypatch.setattr(clients, "_clients", {})


@pytest.fixture
def no_endpoint_override(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_endpoint_override")
@pytest.mark.parametrize(
    ("region", "host"),
    [
        ("eu-west-1", "results.s3.eu-west-1.amazonaws.com"),
        ("us-east-1", "results.s3.us-east-1.amazonaws.com"),
        ("ap-east-1", "results.s3.ap-east-1.amazonaws.com"),  # an opt-in region
    ],
)
def test_presigned_urls_name_the_regional_host_and_sign_with_sigv4(region: str, host: str):
    client = boto3.client("s3", region_name=region, config=S3_CONFIG)
    url = urlsplit(S3ResultStore("results", 300, client).presign("results/j/a.json"))
    assert (url.scheme, url.netloc, url.path) == ("https", host, "/results/j/a.json")
    query = parse_qs(url.query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Credential"][0].split("/")[2:4] == [region, "s3"]  # signed for that region
    assert query["X-Amz-Expires"] == ["300"]


@pytest.mark.usefixtures("no_endpoint_override")
def test_the_store_builds_its_client_with_that_config(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    url = urlsplit(S3ResultStore("results", 60).presign("results/j/a.json"))
    assert url.netloc == "results.s3.eu-central-1.amazonaws.com"


def test_an_endpoint_override_still_wins(monkeypatch: pytest.MonkeyPatch):
    # How the local runtime points the functions at its emulated S3.
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:5000")
    url = urlsplit(S3ResultStore("results", 60).presign("results/j/a.json"))
    assert (url.netloc, url.path) == ("127.0.0.1:5000", "/results/results/j/a.json")  # path style on an IP


def test_every_client_gives_up_connecting_after_a_few_seconds(monkeypatch):
    """A worker in a VPC without a route to a service fails the call in seconds, not in
    botocore's default 60 s per attempt."""
    from jobs import clients

    monkeypatch.setattr(clients, "_clients", {})
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    for client in (clients.dynamodb(), clients.s3(), clients.sqs(), clients.lambda_(), clients.rds()):
        assert client.meta.config.connect_timeout == clients.CONNECT_TIMEOUT_SECONDS  # type: ignore[attr-defined]
    # Merged with S3's own settings.
    assert clients.s3().meta.config.signature_version == "s3v4"  # type: ignore[attr-defined]
