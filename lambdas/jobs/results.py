"""Results too large to keep on the job item: stored in S3, handed out as presigned URLs.

Each attempt writes its own object (``results/<job_id>/<attempt_id>.json``): a stale
attempt that finishes late can never overwrite the result of the attempt that completed
the job, and its orphaned object expires with the bucket's lifecycle rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs import clients

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from jobs.settings import Settings


class S3ResultStore:
    def __init__(self, bucket: str, url_expiry_seconds: int, client: S3Client | None = None) -> None:
        self._bucket = bucket
        self._url_expiry_seconds = url_expiry_seconds
        self._client = client  # created on first use: most status requests need no S3

    @property
    def _s3(self) -> S3Client:
        return self._client or clients.s3()

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
