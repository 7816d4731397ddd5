"""Results too large to keep on the job item: stored in S3, handed out as presigned URLs.

Each attempt writes its own object (``results/<job_id>/<attempt_id>.json``): a stale
attempt that finishes late can never overwrite the result of the attempt that completed
the job, and its orphaned object expires with the bucket's lifecycle rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from jobs.settings import Settings


# SigV4 (required by every region opened since 2014 and by SSE-KMS), addressed to the
# bucket's regional endpoint. Left to its defaults, botocore presigns against the global
# host (<bucket>.s3.amazonaws.com); outside us-east-1, S3 answers that host with a 307
# redirect to the regional one for a new bucket (for up to a day, and always in opt-in
# regions), and the SigV4 signature, bound to the host, then fails (Amazon S3 User Guide,
# "Virtual hosting of buckets" and "Temporary request redirection"). An endpoint set with
# AWS_ENDPOINT_URL_S3 (the local runtime's) still wins over this.
PRESIGNING_CONFIG = Config(
    signature_version="s3v4", s3={"addressing_style": "virtual", "us_east_1_regional_endpoint": "regional"}
)


class S3ResultStore:
    def __init__(self, bucket: str, url_expiry_seconds: int, client: S3Client | None = None) -> None:
        self._bucket = bucket
        self._url_expiry_seconds = url_expiry_seconds
        self._s3 = client or boto3.client("s3", config=PRESIGNING_CONFIG)

    @classmethod
    def from_settings(cls, settings: Settings) -> S3ResultStore:
        return cls(settings.require("results_bucket_name"), settings.result_url_expiry_seconds)

    @property
    def url_expiry_seconds(self) -> int:
        return self._url_expiry_seconds

    def put(self, job_id: str, attempt_id: str, body: bytes) -> str:
        """Store a result; returns its location (the object key)."""
        key = f"results/{job_id}/{attempt_id}.json"
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType="application/json")
        return key

    def presign(self, location: str) -> str:
        """A URL anyone holding it may GET the result with, for ``url_expiry_seconds``."""
        return self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": location}, ExpiresIn=self._url_expiry_seconds
        )
