"""The local runtime filters stream records as Lambda's event filtering does."""

from __future__ import annotations

from pathlib import Path

from local.event_filter import matches, passes
from local.template import load


def record(old_status: str | None, new: dict[str, dict[str, str]], event_name: str = "MODIFY") -> dict:
    dynamodb: dict = {"NewImage": new}
    if old_status is not None:
        dynamodb["OldImage"] = {"status": {"S": old_status}}
    return {"eventName": event_name, "dynamodb": dynamodb}


def test_operators():
    assert matches({"a": ["x", "y"]}, {"a": "y"})
    assert not matches({"a": ["x"]}, {"a": "z"})
    assert matches({"a": [{"exists": False}]}, {})
    assert not matches({"a": [{"exists": False}]}, {"a": 1})
    assert matches({"a": [{"exists": True}]}, {"a": 1})
    assert matches({"a": [{"anything-but": ["x"]}]}, {"a": "y"})
    assert not matches({"a": [{"anything-but": ["x"]}]}, {"a": "x"})
    assert not matches({"a": [{"anything-but": ["x"]}]}, {})
    assert matches({"a": [{"prefix": "ab"}]}, {"a": "abc"})
    assert not matches({"a": [{"unknown-op": 1}]}, {"a": 1})
    # Rules see leaves only: an object is no value, so exists matching on it always says "absent".
    assert matches({"a": [{"exists": False}]}, {"a": {"S": "x"}})
    assert not matches({"a": [{"exists": True}]}, {"a": {"S": "x"}})
    assert not matches({"a": [{"anything-but": ["x"]}]}, {"a": {"S": "y"}})
    assert matches({"a": {"S": [{"exists": False}]}}, {})
    assert not matches({"a": {"S": [{"exists": False}]}}, {"a": {"S": "x"}})
    assert matches({"a": {"b": ["x"]}}, {"a": {"b": "x"}})
    assert not matches({"a": {"b": ["x"]}}, {"a": "x"})
    assert passes([], {"anything": 1})


def test_the_callbacks_filter_passes_only_a_move_into_a_final_status_with_a_callback(cdk_out: Path):
    [mapping] = load(cdk_out).stream_mappings  # as synthesized, read as the local runtime reads it
    assert "Callbacks" in mapping.function
    assert mapping.report_batch_item_failures
    [rule] = mapping.filters
    url = {"S": "https://hooks.example.com/"}
    assert passes([rule], record("RUNNING", {"status": {"S": "COMPLETED"}, "callback_url": url}))
    assert passes([rule], record("PENDING", {"status": {"S": "CANCELLED"}, "callback_url": url}))
    assert not passes([rule], record("RUNNING", {"status": {"S": "RUNNING"}, "callback_url": url}))  # progress
    assert not passes([rule], record("RUNNING", {"status": {"S": "COMPLETED"}}))  # no callback wanted
    recorded = {"status": {"S": "COMPLETED"}, "callback_url": url, "callback_status": {"S": "DELIVERED"}}
    assert not passes([rule], record("COMPLETED", recorded))  # recording the outcome
    # A callback already recorded is never sent again, even on a move into a final status.
    assert not passes([rule], record("RUNNING", recorded))
    assert not passes([rule], record(None, {"status": {"S": "PENDING"}, "callback_url": url}, "INSERT"))
