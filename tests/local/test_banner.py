"""The ``make run`` banner suggests a job the served API accepts: the first documented task,
with an input its schema takes, or where to add a task when there is none."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema

from local.banner import PLACEHOLDER_TASK, example_for, first_task, try_lines
from stacks.openapi import _plain


def document_with(tmp_path: Path, *tasks: tuple[str, dict[str, Any]]) -> Path:
    alternatives = [
        {"properties": {"task": {"type": "string", "enum": [name]}, "input": schema}} for name, schema in tasks
    ]
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps({"components": {"schemas": {"SubmitJobRequest": {"oneOf": alternatives}}}}))
    return path


def test_the_first_task_is_suggested_with_its_example(tmp_path: Path) -> None:
    """As OpenAPI 3.0 carries a task's JSON Schema ``examples``: the first, as ``example``."""
    seconds = {"type": "object", "properties": {"seconds": {"type": "number", "minimum": 0, "examples": [5]}}}
    openapi = document_with(tmp_path, ("sleep", _plain({**seconds, "required": ["seconds"]})), ("other", {}))
    text = try_lines("http://127.0.0.1:3000/v1/", "ASYNC_JOBS_API_URL", openapi)
    assert "export ASYNC_JOBS_API_URL=http://127.0.0.1:3000/v1/" in text
    assert ".venv/bin/jobs submit sleep --input '{\"seconds\": 5}' --wait" in text
    assert '-d \'{"task": "sleep", "input": {"seconds": 5}}\'' in text


def test_a_forks_only_task_is_suggested_with_an_input_made_from_its_schema(tmp_path: Path) -> None:
    schema = {
        "type": "object",
        "properties": {
            "text": {"type": "string", "minLength": 3},
            "times": {"type": "integer", "minimum": 2},
            "mode": {"enum": ["fast", "slow"]},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "optional": {"type": "boolean"},
        },
        "required": ["text", "times", "mode", "tags"],
        "additionalProperties": False,
    }
    found = first_task(document_with(tmp_path, ("word-count", schema), ("other", {"type": "object"})))
    assert found == ("word-count", {"text": "xxx", "times": 2, "mode": "fast", "tags": ["x"]})
    jsonschema.validate(found[1], schema)


def test_an_input_that_cannot_be_made_up_points_at_the_schema(tmp_path: Path) -> None:
    schema = {
        "type": "object",
        "properties": {"code": {"type": "string", "pattern": "^[0-9]{4}$"}},
        "required": ["code"],
    }
    openapi = document_with(tmp_path, ("lookup", schema))
    assert first_task(openapi) == ("lookup", None)
    text = try_lines("http://127.0.0.1:3000/v1/", "X_API_URL", openapi)
    assert "jobs submit lookup --input '{...}'" in text and "see its schema in docs/openapi.json" in text


def test_no_task_registered_says_where_to_add_one(tmp_path: Path) -> None:
    for openapi in (document_with(tmp_path), tmp_path / "missing.json"):
        text = try_lines("http://127.0.0.1:3000/v1/", "X_API_URL", openapi)
        assert "No task is registered yet: add yours in lambdas/jobs/tasks.py" in text
        assert f"jobs submit {PLACEHOLDER_TASK}" in text
        assert not re.search(r"submit (sleep|pipeline|fail|primes|report|sales_report)\b", text)


def test_example_for_prefers_the_schemas_own_values() -> None:
    assert example_for({"type": "number", "example": 5, "default": 1}) == 5
    assert example_for({"type": "number", "default": 1}) == 1
    assert example_for({"type": "number", "minimum": 0.5}) == 0.5
    assert example_for({"type": "integer"}) == 1
