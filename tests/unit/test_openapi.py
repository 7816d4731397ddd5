"""The OpenAPI document: current, valid, and built from the schemas the code validates with."""

import json
import subprocess
import sys

from jobs.registry import REGISTRY
from jobs.schemas import submit_request_schema
from stacks.openapi import OPENAPI_FILE, ROOT, _plain, build, job_schema, render


def test_the_committed_document_is_current():
    # make test rebuilds it before the tests run; this catches a stale copy run outside make.
    # Built in a fresh interpreter: this one runs the tests' tasks, the document the app's.
    fresh = subprocess.run(
        [sys.executable, "-m", "stacks.openapi"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert OPENAPI_FILE.read_text() == fresh, "docs/openapi.json is stale: run `make openapi`"
    assert render(build()) != fresh  # the tests' tasks are not the app's: the check above is not vacuous


def without_examples(schema: object) -> object:
    if isinstance(schema, dict):
        return {k: without_examples(v) for k, v in schema.items() if k not in ("example", "examples")}
    return [without_examples(v) for v in schema] if isinstance(schema, list) else schema


def test_json_schema_examples_become_openapi_3_0_examples():
    """OpenAPI 3.0's schema object has one ``example``; ``examples`` (JSON Schema's list) is 3.1's."""
    schema = {
        "type": "object",
        "properties": {
            "examples": {"type": "array", "items": {"type": "integer", "examples": [3, 4]}},
            "seconds": {"type": "number", "examples": [5]},
        },
    }
    assert _plain(schema) == {
        "type": "object",
        "properties": {
            "examples": {"type": "array", "items": {"type": "integer", "example": 3}},  # a property may be named so
            "seconds": {"type": "number", "example": 5},
        },
    }
    assert '"examples": [' not in render(build())


def test_submit_body_has_one_alternative_per_task_with_its_own_input_schema():
    alternatives = build()["components"]["schemas"]["SubmitJobRequest"]["oneOf"]
    assert [a["properties"]["task"]["enum"] for a in alternatives] == [[name] for name in REGISTRY]  # as registered
    for alternative in alternatives:
        [name] = alternative["properties"]["task"]["enum"]
        expected = {k: v for k, v in REGISTRY[name].input_schema.items() if k not in ("$schema", "title")}
        assert without_examples(alternative["properties"]["input"]) == without_examples(expected)
        assert alternative["properties"]["task"]["pattern"] == submit_request_schema()["properties"]["task"]["pattern"]


def test_job_answers_are_the_schema_the_handler_tests_check():
    document = build()
    job = document["components"]["schemas"]["Job"]
    assert job["properties"] == job_schema()["properties"]
    assert set(job["properties"]["status"]["enum"]) == {"PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"}
    operations = {(path, method) for path, item in document["paths"].items() for method in item}
    assert operations == {("/jobs", "post"), ("/jobs", "get"), ("/jobs/{job_id}", "get"), ("/jobs/{job_id}", "delete")}
    for item in document["paths"].values():
        for operation in item.values():
            for status, answer in operation["responses"].items():
                if int(status) >= 400:
                    assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_limits_come_from_the_configuration():
    from stacks.config import AppConfig

    document = build(AppConfig.from_mapping({"max_request_bytes": 4096}))
    assert document["paths"]["/jobs"]["post"]["requestBody"]["description"] == "At most 4096 bytes"
    json.dumps(document)  # plain JSON throughout
