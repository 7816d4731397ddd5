"""The fault plan's seed fixes which invocations fail, however the DynamoDB requests of
concurrent jobs interleave with them (so a run's size can be chosen to prove the behaviour)."""

from __future__ import annotations

import pytest

from local.faults import FaultPlan


def invocation_faults(plan: FaultPlan, invocations: int, requests_between: int) -> list[str | None]:
    faults = []
    for _ in range(invocations):
        for _ in range(requests_between):
            plan.throttles_next_request()
        faults.append(plan.pick_invocation_fault()[0])
    return faults


def test_the_invocation_faults_depend_on_the_seed_alone() -> None:
    def plan() -> FaultPlan:
        return FaultPlan(("worker",), crash=0.10, hang=0.02, throttle=0.05, seed=2026)

    alone, interleaved = invocation_faults(plan(), 200, 0), invocation_faults(plan(), 200, 7)
    assert alone == interleaved
    assert (alone.count("crash"), alone.count("hang")) == (15, 9)  # what tests/e2e/test_faults.py relies on
    assert (alone[:100].count("crash"), alone[:100].count("hang")) == (7, 5)
    assert (alone[:60].count("crash"), alone[:60].count("hang")) == (4, 4)


def test_shares_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        FaultPlan(("worker",), crash=0.8, hang=0.3)
