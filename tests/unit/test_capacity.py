"""The capacity model (bench/capacity.py): each ceiling where the code's own counts and
AWS's documented limits put it."""

from __future__ import annotations

import pytest

from bench.capacity import (
    ACTIVE_SHARDS,
    OWNER_SHARDS,
    ROOT,
    STREAM_READERS_PER_SHARD,
    Settings,
    Workload,
    first_ceiling,
    limits,
    main,
    owner_index_writes_per_job,
    rows,
    scale_table,
    stream_readers,
)
from jobs import repository

UNCAPPED = Settings(api_throttle_rate_limit=10_000, lambda_account_concurrency=100_000, worker_max_concurrency=1000)


def test_before_issue_18_one_caller_was_capped_by_its_own_key_in_the_owner_index():
    workload = Workload(
        jobs_per_second=1000, job_seconds=1, polls_per_job=1, progress_writes_per_job=5, legacy_owner_index=True
    )
    row, most = first_ceiling(workload, UNCAPPED)
    assert row.what.startswith("owner-jobs (legacy) index: the busiest owner's key")
    # Every write of a job (create, claim, 5 progress, end) wrote the owner's index key too,
    # and one key takes 1,000 writes a second at most.
    assert owner_index_writes_per_job(workload) == 8
    assert most == pytest.approx(1000 / 8)


def test_now_one_callers_index_key_takes_16000_jobs_a_second_and_is_never_the_first_ceiling():
    workload = Workload(jobs_per_second=1000, job_seconds=1, polls_per_job=1, progress_writes_per_job=5)
    [owner_key] = [r for r in rows(workload, UNCAPPED) if r.what.startswith("owner-shards index: the busiest")]
    # Created once (keys only), over 16 keys.
    assert owner_index_writes_per_job(workload) == 1
    assert owner_key.most_jobs_per_second(workload) == pytest.approx(16 * 1000)
    # The table's own write quota (40,000 units a second, 8 writes a job) comes well before.
    [table] = [r for r in rows(workload, UNCAPPED) if r.what == "jobs table: writes"]
    assert table.most_jobs_per_second(workload) == pytest.approx(40_000 / 8)
    assert not first_ceiling(workload, UNCAPPED)[0].what.startswith("owner-shards")


def test_the_model_counts_the_shards_the_code_uses():
    assert (ACTIVE_SHARDS, OWNER_SHARDS) == (repository.ACTIVE_SHARDS, repository.OWNER_SHARDS)


def test_the_deployments_own_throttle_is_named_when_it_comes_first():
    workload = Workload(jobs_per_second=10, polls_per_job=5)
    settings = Settings(api_throttle_rate_limit=50, lambda_account_concurrency=1000, worker_max_concurrency=10)
    row, most = first_ceiling(workload, settings)
    assert row.cap_name == "api_throttle_rate_limit"
    assert most == pytest.approx(50 / 6)


@pytest.mark.parametrize(
    ("dispatch", "expected"),
    [
        ("stepfunctions", {"Step Functions: StartExecution", "Step Functions: state transitions"}),
        ("durable", {"durable executions: starts", "durable executions: checkpoint calls"}),
        ("sqs", {"jobs queue: messages in flight"}),
    ],
)
def test_each_dispatcher_brings_its_own_quotas(dispatch: str, expected: set[str]):
    assert expected <= {row.what for row in rows(Workload(jobs_per_second=1, dispatch=dispatch), UNCAPPED)}


def test_every_limit_names_its_aws_source():
    for region in ("large", "other"):
        for limit in limits(region).values():
            assert "https://docs.aws.amazon.com/" in limit.source and limit.value > 0 and limit.remedy


def test_the_script_prints_the_first_ceiling(capsys: pytest.CaptureFixture[str]):
    assert main(["--jobs-per-second", "10", "--dispatch", "durable"]) == 0
    assert "first ceiling:" in capsys.readouterr().out


def test_websocket_push_brings_its_connection_quota_and_table():
    found = {row.what for row in rows(Workload(jobs_per_second=1, notify="websocket"), UNCAPPED)}
    assert {"WebSocket: new connections", "connections table: writes"} <= found


def test_websocket_push_is_the_second_and_last_reader_the_jobs_stream_can_take():
    assert stream_readers(Workload(1)) == ["callbacks"]
    assert len(stream_readers(Workload(1, notify="websocket"))) == STREAM_READERS_PER_SHARD


def test_the_readmes_scale_table_is_the_models():
    readme = (ROOT / "README.md").read_text()
    copy = readme.split("<!-- scale-table -->\n", 1)[1].split("<!-- /scale-table -->", 1)[0]
    assert copy.rstrip("\n").splitlines() == scale_table(Settings.from_cdk_json())
