"""The ``jobs`` client: polling with Retry-After and backoff, transient answers, safe submit retries, exit codes."""

from __future__ import annotations

import io
import itertools
import json
from typing import Any

import pytest

from jobs.naming import AppName
from jobs_cli import main as cli
from jobs_cli.app_name import api_url_variable, api_url_variable_for
from jobs_cli.client import ApiError, JobsClient, Response, is_loopback
from stacks.config import default_context


def job(status: str, percent: int | None = None, **extra: Any) -> Response:
    body: dict[str, Any] = {"job_id": "j-1", "status": status, **extra}
    if percent is not None:
        body["progress"] = {"percent": percent}
    headers = {"Retry-After": "2"} if status in ("PENDING", "RUNNING") else {}
    return Response(200, headers, body)


class FakeClient:
    """Answers from a script and records what was asked."""

    def __init__(self, answers: list[Response]) -> None:
        self._answers = iter(answers)
        self.submissions: list[tuple[str, dict[str, Any], str | None]] = []
        self.cancelled: list[str] = []
        self.listed: list[tuple[str | None, int | None, str | None]] = []

    def status(self, job_id: str) -> Response:
        return next(self._answers)

    def submit(
        self, task: str, task_input: dict[str, Any], key: str | None = None, callback_url: str | None = None
    ) -> Response:
        self.submissions.append((task, task_input, key))
        return next(self._answers)

    def list_jobs(self, status: str | None = None, limit: int | None = None, next_token: str | None = None) -> Response:
        self.listed.append((status, limit, next_token))
        return next(self._answers)

    def fetch_result(self, job: dict[str, Any]) -> Any:
        return JobsClient.fetch_result(self, job)  # type: ignore[arg-type]

    _timeout = 5

    def cancel(self, job_id: str) -> Response:
        self.cancelled.append(job_id)
        return next(self._answers)


def waiter(client: FakeClient, sleeps: list[float], out: io.StringIO | None = None) -> cli.Waiter:
    return cli.Waiter(client, out=out or io.StringIO(), sleep=sleeps.append)  # type: ignore[arg-type]


def test_backoff_starts_at_retry_after_grows_and_is_capped():
    delays = list(itertools.islice(cli.backoff_delays(2.0, cap=10.0), 30))
    assert all(2.0 <= d <= 10.0 for d in delays)
    assert max(delays[-10:]) > 5  # grew well past the first Retry-After
    assert len(set(delays)) > 1  # jittered


def test_waiter_draws_progress_until_completed():
    client = FakeClient(
        [job("PENDING"), job("RUNNING", 40), job("RUNNING", 40), job("COMPLETED", 100, result={"x": 1})]
    )
    sleeps: list[float] = []
    out = io.StringIO()
    finished = waiter(client, sleeps, out).wait("j-1", timeout=600)
    assert finished is not None and finished["result"] == {"x": 1}
    lines = out.getvalue().splitlines()
    assert [line.split("] ")[1].split()[0] for line in lines] == ["0%", "40%", "100%"]  # unchanged lines not repeated
    assert len(sleeps) == 3 and all(s >= 2 for s in sleeps)  # Retry-After: 2 is the floor


def test_waiter_rides_out_throttling_and_brief_unavailability():
    throttled = Response(429, {"Retry-After": "3"}, {"message": "Too Many Requests"})
    unavailable = Response(503, {}, {"message": "Service Unavailable"})
    client = FakeClient([throttled, unavailable, job("FAILED", error={"type": "X", "message": "y"})])
    sleeps: list[float] = []
    finished = waiter(client, sleeps).wait("j-1", timeout=600)
    assert finished is not None and finished["status"] == "FAILED"
    assert sleeps == [3.0, 1.0]


def test_waiter_gives_up_at_its_timeout():
    client = FakeClient([job("RUNNING", 10)] * 5)
    assert waiter(client, []).wait("j-1", timeout=1) is None  # the first delay (>= 2 s) would pass the deadline


def test_waiter_raises_on_a_real_error():
    client = FakeClient([Response(404, {}, {"message": "job j-1 not found"})])
    with pytest.raises(ApiError, match="404: job j-1 not found"):
        waiter(client, []).wait("j-1", timeout=60)


def test_submit_retries_with_one_idempotency_key():
    accepted = Response(202, {}, {"job_id": "j-1", "status": "PENDING"})
    client = FakeClient([Response(503, {"Retry-After": "5"}, {"message": "busy"}), accepted])
    sleeps: list[float] = []
    assert cli.submit_job(client, "sleep", {}, None, sleep=sleeps.append)["job_id"] == "j-1"  # type: ignore[arg-type]
    [(_, _, first_key), (_, _, second_key)] = client.submissions
    assert first_key and first_key == second_key
    assert sleeps and sleeps[0] >= 5


def test_submit_does_not_retry_client_errors():
    client = FakeClient([Response(422, {}, {"message": "unknown task 'nope'"})])
    with pytest.raises(ApiError, match="422"):
        cli.submit_job(client, "nope", {}, "k", sleep=pytest.fail)  # type: ignore[arg-type]
    assert len(client.submissions) == 1


@pytest.mark.parametrize(
    ("final", "code", "stream", "text"),
    [
        (job("COMPLETED", 100, result={"primes": 25}), cli.EXIT_OK, "out", '"primes": 25'),
        (job("FAILED", error={"type": "TaskFailed", "message": "on purpose"}), cli.EXIT_FAILED, "err", "on purpose"),
        (job("CANCELLED"), cli.EXIT_CANCELLED, "err", "j-1 CANCELLED"),
    ],
)
def test_main_exit_code_follows_the_job(monkeypatch, capsys, final, code, stream, text):
    client = FakeClient([final])
    monkeypatch.setattr(cli, "JobsClient", lambda *args: client)
    assert cli.main(["--api-url", "http://127.0.0.1:1/v1/", "wait", "j-1"]) == code
    assert text in getattr(capsys.readouterr(), stream)


def test_cancel_waits_until_a_running_job_has_stopped(monkeypatch, capsys):
    accepted = Response(202, {"Retry-After": "2"}, {"job_id": "j-1", "status": "RUNNING", "cancel_requested": True})
    client = FakeClient([accepted, job("RUNNING", 50, cancel_requested=True), job("CANCELLED")])
    monkeypatch.setattr(cli, "JobsClient", lambda *args: client)
    monkeypatch.setattr("time.sleep", lambda _seconds: None)
    assert cli.main(["--api-url", "http://127.0.0.1:1/v1/", "cancel", "j-1", "--wait"]) == cli.EXIT_CANCELLED
    assert client.cancelled == ["j-1"]


def test_cancelling_a_finished_job_is_an_error(monkeypatch, capsys):
    client = FakeClient([Response(409, {}, {"message": "job j-1 already finished as COMPLETED"})])
    monkeypatch.setattr(cli, "JobsClient", lambda *args: client)
    assert cli.main(["--api-url", "http://127.0.0.1:1/v1/", "cancel", "j-1"]) == cli.EXIT_ERROR
    assert "409: job j-1 already finished as COMPLETED" in capsys.readouterr().err


def test_list_follows_next_token_with_all(monkeypatch, capsys):
    first = Response(
        200,
        {},
        {"jobs": [{"job_id": "j-2", "status": "RUNNING", "created_at": "t2", "task": "sleep"}], "next_token": "n1"},
    )
    last = Response(200, {}, {"jobs": [{"job_id": "j-1", "status": "FAILED", "created_at": "t1", "task": "fail"}]})
    client = FakeClient([first, last])
    monkeypatch.setattr(cli, "JobsClient", lambda *args: client)
    assert cli.main(["--api-url", "http://127.0.0.1:1/v1/", "list", "--limit", "1", "--all"]) == cli.EXIT_OK
    assert client.listed == [(None, 1, None), (None, 1, "n1")]
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [["j-2", "RUNNING"], ["j-1", "FAILED"]]


def test_list_without_all_stops_after_one_page(monkeypatch):
    client = FakeClient([Response(200, {}, {"jobs": [], "next_token": "n1"})])
    monkeypatch.setattr(cli, "JobsClient", lambda *args: client)
    assert cli.main(["--api-url", "http://127.0.0.1:1/v1/", "list", "--status", "FAILED"]) == cli.EXIT_OK
    assert client.listed == [("FAILED", 20, None)]


def test_main_reports_an_unreachable_api(capsys):
    # Port 9 (discard) on loopback: nothing listens, so the connection is refused.
    code = cli.main(["--api-url", "http://127.0.0.1:9/v1/", "status", "j-1"])
    assert code == cli.EXIT_ERROR
    assert "cannot reach http://127.0.0.1:9/v1/" in capsys.readouterr().err


def test_main_needs_an_api_url(monkeypatch):
    monkeypatch.delenv("ASYNC_JOBS_API_URL", raising=False)
    with pytest.raises(SystemExit) as exited:
        cli.main(["status", "j-1"])
    assert exited.value.code == 2


def test_the_api_url_variable_is_named_after_the_app(tmp_path):
    assert api_url_variable() == AppName(default_context()["app_name"]).api_url_variable  # this checkout's cdk.json
    renamed = tmp_path / "cdk.json"
    renamed.write_text(json.dumps({"context": {"settings": {"app_name": "acme-reports"}}}))
    assert api_url_variable(renamed) == "ACME_REPORTS_API_URL"
    assert api_url_variable(tmp_path / "missing.json") == "JOBS_API_URL"
    for name in ("async-jobs", "acme-reports", "x1-y2-z3"):  # derived as the Lambda package derives it
        assert api_url_variable_for(name) == AppName(name).api_url_variable


def test_client_signs_with_sigv4_and_finds_the_region_in_the_url():
    client = JobsClient("https://abc123.execute-api.eu-west-2.amazonaws.com/v1")
    assert client.api_url.endswith("/v1/")
    assert client.region == "eu-west-2"


def test_local_api_works_without_aws_credentials(monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert JobsClient("http://127.0.0.1:3000/v1/")._credentials.access_key == "LOCALDEVELOPER"
    with pytest.raises(ApiError, match="no AWS credentials"):
        JobsClient("https://abc123.execute-api.eu-west-2.amazonaws.com/v1")
    assert is_loopback("http://localhost:3000/") and not is_loopback("https://example.com/")
