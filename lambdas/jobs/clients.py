"""The functions' AWS clients: one low-level boto3 client per service and process.

Creating a client costs tens of milliseconds (loading the service's model), so each
function pays only for the services its requests use, once: DynamoDB is created when
``jobs.repository`` is first used (every function reads the jobs table, so that happens at
cold start); the others on the first call that needs them. The same DynamoDB client
serves the job repository, the connections table and Powertools idempotency.

Endpoints and credentials come from boto3's defaults (the local runtime points them at
its emulator with ``AWS_ENDPOINT_URL*``). Inside Lambda, botocore adds the invocation's
``X-Amzn-Trace-Id`` to every request, so the calls a function makes (and the worker
invocation it dispatches) stay in the request's X-Ray trace without any tracing SDK.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient

# A connection to an AWS endpoint takes milliseconds; botocore waits 60 s by default, and
# then retries. A worker in a VPC whose route to a service is missing (no endpoint, no NAT)
# would spend minutes of its attempt on one call; with 5 s it fails fast and says where.
CONNECT_TIMEOUT_SECONDS = 5
BASE_CONFIG = Config(connect_timeout=CONNECT_TIMEOUT_SECONDS)

# SigV4 (required by every region opened since 2014 and by SSE-KMS), addressed to the
# bucket's regional endpoint. Left to its defaults, botocore presigns against the global
# host (<bucket>.s3.amazonaws.com); outside us-east-1, S3 answers that host with a 307
# redirect to the regional one for a new bucket (for up to a day, and always in opt-in
# regions), and the SigV4 signature, bound to the host, then fails (Amazon S3 User Guide,
# "Virtual hosting of buckets" and "Temporary request redirection"). An endpoint set with
# AWS_ENDPOINT_URL_S3 (the local runtime's) still wins over this.
S3_CONFIG = Config(
    signature_version="s3v4", s3={"addressing_style": "virtual", "us_east_1_regional_endpoint": "regional"}
)

_clients: dict[tuple[str, str | None], Any] = {}
# Creating clients from boto3's default session is not thread-safe; the callbacks function
# delivers from a thread pool. Using a created client from several threads is safe.
_lock = threading.Lock()


def _client(service: str, endpoint_url: str | None = None, config: Config | None = None) -> Any:
    key = (service, endpoint_url)
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                merged = BASE_CONFIG.merge(config) if config is not None else BASE_CONFIG
                client = boto3.client(service, endpoint_url=endpoint_url, config=merged)  # type: ignore[call-overload]
                _clients[key] = client
    return client


def dynamodb() -> DynamoDBClient:
    return _client("dynamodb")  # type: ignore[no-any-return]


def lambda_() -> LambdaClient:
    return _client("lambda")  # type: ignore[no-any-return]


def sqs() -> SQSClient:
    return _client("sqs")  # type: ignore[no-any-return]


def stepfunctions() -> SFNClient:
    return _client("stepfunctions")  # type: ignore[no-any-return]


def rds() -> RDSClient:
    """For IAM database auth tokens only: a token is signed here, with the function's own
    credentials, and makes no call (so needs no VPC endpoint)."""
    return _client("rds")  # type: ignore[no-any-return]


def s3() -> S3Client:
    return _client("s3", config=S3_CONFIG)  # type: ignore[no-any-return]


def apigateway_management(endpoint_url: str) -> Any:
    """The WebSocket API's management client (its endpoint is the API's callback URL)."""
    return _client("apigatewaymanagementapi", endpoint_url)


def created() -> list[str]:
    """The services this process has created a client for (the import-footprint tests read it)."""
    return [service for service, _ in _clients]
