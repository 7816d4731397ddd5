"""What ``make run`` prints once it serves: the URLs, and a first job to try.

The job it suggests is the first task the served API documents (``docs/openapi.json``, which
``make run`` rebuilds from ``lambdas/jobs/tasks.py`` in registration order), with an input
made from the task's schema (its ``example``s where it gives them), so a fork that deleted
the sample tasks is shown its own, and one with no task yet is told where to add one.
Part of the local runtime; nothing here is deployed.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import jsonschema

PLACEHOLDER_TASK = "<your-task>"
TASKS_FILE = "lambdas/jobs/tasks.py"


def first_task(openapi_file: Path) -> tuple[str, dict[str, Any] | None] | None:
    """The first documented task and an input its schema accepts (None when none is made
    up simply); None when the document lists no task or is missing."""
    try:
        document = json.loads(openapi_file.read_text())
        [first, *_] = document["components"]["schemas"]["SubmitJobRequest"]["oneOf"]
        [name] = first["properties"]["task"]["enum"]
        schema = first["properties"]["input"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    example = example_for(schema)
    try:
        jsonschema.validate(example, schema)
    except (jsonschema.ValidationError, jsonschema.SchemaError):
        return str(name), None
    return str(name), example


def example_for(schema: dict[str, Any]) -> Any:
    """A value for ``schema``: its example, default or first enum value, else the least the
    type asks for (the required properties of an object, a number's minimum...)."""
    for key in ("example", "default"):
        if key in schema:
            return schema[key]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: example_for(properties.get(name, {})) for name in schema.get("required", [])}
    if kind in ("number", "integer"):
        least = schema.get("minimum", 1)
        return int(least) if kind == "integer" else least
    if kind == "string":
        return "x" * max(1, int(schema.get("minLength", 1)))
    if kind == "array":
        return [example_for(schema.get("items", {}))] * int(schema.get("minItems", 0))
    if kind == "boolean":
        return False
    return None


def try_lines(api_url: str, api_url_variable: str, openapi_file: Path) -> str:
    """The banner's "Try" paragraph: a submit with the jobs CLI, and the same with curl."""
    found = first_task(openapi_file)
    name, example = found if found else (PLACEHOLDER_TASK, {})
    input_text = json.dumps(example) if example is not None else "{...}"
    lines = ""
    if found is None:
        lines = f"  No task is registered yet: add yours in {TASKS_FILE} and restart.\n\n"
    elif example is None:
        lines = f"  ({name}'s input: see its schema in docs/openapi.json)\n\n"
    body = f'{{"task": {json.dumps(name)}, "input": {input_text}}}'
    return (
        lines + "  Try, in another terminal in this folder:\n"
        f"         export {api_url_variable}={api_url}\n"
        f"         .venv/bin/jobs submit {name} --input {shlex.quote(input_text)} --wait\n"
        "  or with curl:\n"
        f'         curl -s -X POST {api_url}jobs --aws-sigv4 "aws:amz:us-east-1:execute-api" --user LOCAL:local \\\n'
        f"              -H 'Content-Type: application/json' -d {shlex.quote(body)}"
    )
