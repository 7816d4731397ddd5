"""The capacity model (bench/capacity.py): each ceiling where the code's own counts and
AWS's documented limits put it."""

from __future__ import annotations

import pytest

from bench.capacity import Settings, Workload, first_ceiling, limits, main, owner_index_writes_per_job, rows

UNCAPPED = Settings(api_throttle_rate_limit=10_000, lambda_account_concurrency=100_000, worker_max_concurrency=1000)


def test_one_caller_is_capped_by_its_own_key_in_the_owner_index():
    workload = Workload(jobs_per_second=1000, owners=1, job_seconds=1, polls_per_job=1, progress_writes_per_job=5)
    row, most = first_ceiling(workload, UNCAPPED)
    assert row.what.startswith("owner-jobs index: the busiest owner's key")
    # Every write of a job (create, claim, 5 progress, end) writes the owner's index key too,
    # and one key takes 1,000 writes a second at most.
    assert owner_index_writes_per_job(workload) == 8
    assert most == pytest.approx(1000 / 8)


def test_many_callers_or_more_shards_move_the_ceiling_elsewhere():
    many = Workload(jobs_per_second=1000, owners=10_000, job_seconds=1, polls_per_job=1)
    assert not first_ceiling(many, UNCAPPED)[0].what.startswith("owner-jobs")
    sharded = Workload(jobs_per_second=1000, owners=1, job_seconds=1, polls_per_job=1, owner_shards=16)
    [owner_key] = [r for r in rows(sharded, UNCAPPED) if r.what.startswith("owner-jobs index: the busiest")]
    assert owner_key.most_jobs_per_second(sharded) == pytest.approx(16 * 1000 / 8)


def test_the_deployments_own_throttle_is_named_when_it_comes_first():
    workload = Workload(jobs_per_second=10, polls_per_job=5)
    settings = Settings(api_throttle_rate_limit=50, lambda_account_concurrency=1000, worker_max_concurrency=10)
    row, most = first_ceiling(workload, settings)
    assert (row.cap_name, most) == ("api_throttle_rate_limit", pytest.approx(50 / 6))


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
