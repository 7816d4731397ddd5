"""One caller sending everything has no hot partition (issue #18), at reduced size.

The local runtime gives every partition key of every table and index 10 writes per second
(``local/partitions.py``; DynamoDB gives 1,000, so this is the AWS picture divided by 100),
and one identity submits 60 jobs at 10 per second (1,000 jobs/s in AWS terms), each
reporting progress. The same run against the stack as it was before the owner index was
sharded (``keep_legacy_owner_index`` keeps the old index, written by every write of every
job on the caller's one key) throttles; against the stack as it is, nothing does.
Scenario and figures: ``python -m bench.one_caller [--legacy]``."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.one_caller import CONTEXT, one_caller_run
from tests.conftest import synthesize_app

pytestmark = pytest.mark.e2e
BUDGET = 10  # writes per second per partition key
JOBS, RATE = 60, 10  # jobs per second from the one caller: 3x the old design's ceiling here
LEGACY_JOBS = 30  # the old design's hot key shows in 3 s of submits (every throttled write is retried: slow)
CALLER_KEY = "S:arn:aws:iam::123456789012:user/SERVICE"


def test_before_the_change_the_callers_one_index_key_throttles(tmp_path: Path):
    cdk_out = synthesize_app(tmp_path / "cdk.out", **CONTEXT, keep_legacy_owner_index="true")
    report = one_caller_run(cdk_out, LEGACY_JOBS, RATE, BUDGET)
    assert report.throttled.get(("owner-jobs", CALLER_KEY), 0) > LEGACY_JOBS  # several per job
    assert {space for space, _ in report.throttled} == {"owner-jobs"}  # that one key and nothing else


def test_now_no_key_exceeds_its_budget_nothing_is_lost_and_no_submit_is_refused(tmp_path: Path):
    report = one_caller_run(synthesize_app(tmp_path / "cdk.out", **CONTEXT), JOBS, RATE, BUDGET)
    assert report.refused == []
    assert len(report.submitted) == JOBS and report.not_completed == []
    assert report.throttled == {}
