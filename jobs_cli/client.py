"""A small SigV4-signing HTTP client for the jobs API (standard library + botocore)."""

from __future__ import annotations

import ipaddress
import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.session import Session

# Used only against a local runtime (loopback) when no AWS credentials exist: the local
# runtime takes the caller from the access key and does not verify signatures.
LOCAL_CREDENTIALS = Credentials("LOCALDEVELOPER", "local")
REGION_IN_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com")


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: Any

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class JobsClient:
    """Signs every request for ``execute-api`` with the standard AWS credential chain."""

    def __init__(
        self,
        api_url: str,
        region: str | None = None,
        timeout: float = 35,
        credentials: Credentials | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/") + "/"
        found = REGION_IN_HOST.search(self.api_url)
        session = Session()
        self.region = (
            region or (found.group(1) if found else None) or session.get_config_variable("region") or "us-east-1"
        )
        credentials = credentials or session.get_credentials()
        if credentials is None and is_loopback(self.api_url):
            credentials = LOCAL_CREDENTIALS
        if credentials is None:
            raise ApiError(0, "no AWS credentials found (configure a profile, SSO or environment variables)")
        self._credentials = credentials
        self._timeout = timeout

    def handshake_headers(self, url: str) -> dict[str, str]:
        """SigV4 headers for a WebSocket handshake to ``url`` (``ws``/``wss``): API Gateway
        checks them as those of the handshake's GET over http(s)."""
        signed = AWSRequest(method="GET", url=re.sub(r"^ws", "http", url), headers={})
        SigV4Auth(self._credentials, "execute-api", self.region).add_auth(signed)
        return dict(signed.headers)

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Response:
        url = urljoin(self.api_url, path)
        data = json.dumps(body).encode() if body is not None else None
        all_headers = {"Accept": "application/json", **(headers or {})}
        if data is not None:
            all_headers.setdefault("Content-Type", "application/json")
        signed = AWSRequest(method=method, url=url, data=data, headers=all_headers)
        SigV4Auth(self._credentials, "execute-api", self.region).add_auth(signed)
        request = urllib.request.Request(url, data=data, method=method, headers=dict(signed.headers))  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as reply:  # noqa: S310  http(s) API URL
                return Response(reply.status, dict(reply.headers), _json(reply.read()))
        except urllib.error.HTTPError as error:
            return Response(error.code, dict(error.headers), _json(error.read()))

    def submit(
        self,
        task: str,
        task_input: dict[str, Any],
        idempotency_key: str | None = None,
        callback_url: str | None = None,
    ) -> Response:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        body: dict[str, Any] = {"task": task, "input": task_input}
        if callback_url:
            body["callback_url"] = callback_url
        return self.request("POST", "jobs", body, headers)

    def status(self, job_id: str) -> Response:
        return self.request("GET", f"jobs/{job_id}")

    def list_jobs(self, status: str | None = None, limit: int | None = None, next_token: str | None = None) -> Response:
        query = {"status": status, "limit": limit, "next_token": next_token}
        encoded = urlencode({k: v for k, v in query.items() if v is not None})
        return self.request("GET", f"jobs?{encoded}" if encoded else "jobs")

    def fetch_result(self, job: dict[str, Any]) -> Any:
        """A completed job's result: inline, or downloaded from its presigned ``result_url``
        (unsigned: the URL carries its own signature, valid for ``result_url_expires_in`` s)."""
        url = job.get("result_url")
        if not url:
            return job.get("result")
        if urlsplit(url).scheme not in ("https", "http"):
            raise ApiError(0, f"unexpected result_url {url!r}")
        with urllib.request.urlopen(url, timeout=self._timeout) as reply:  # noqa: S310  scheme checked above
            return json.loads(reply.read())

    def cancel(self, job_id: str) -> Response:
        return self.request("DELETE", f"jobs/{job_id}")


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return {"message": raw.decode(errors="replace")}
