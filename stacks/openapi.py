"""The OpenAPI 3 document of the jobs API, built from the schemas the code validates with.

``POST /jobs`` bodies come from ``lambdas/jobs/schemas/submit_request.json`` (API Gateway's
model and the submit function's check) narrowed per task by each task's input schema in
the registry (``lambdas/jobs/tasks.py``); job answers from ``docs/job.schema.json`` (which the
handler tests hold every answer to); limits and statuses from the configuration and the
domain. ``make openapi`` writes it to ``docs/openapi.json``; a test fails when the file
is stale, and the local runtime serves it at ``/openapi.json``.

    python -m stacks.openapi            # print it
    python -m stacks.openapi docs/openapi.json
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

from jobs.model import JobStatus  # stacks/__init__.py puts lambdas/ on the path
from jobs.registry import load_tasks
from jobs.schemas import submit_request_schema
from jobs.service import MAX_LIST_LIMIT
from stacks.config import AppConfig

ROOT = Path(__file__).resolve().parent.parent
OPENAPI_FILE = ROOT / "docs" / "openapi.json"
JOB_SCHEMA_FILE = ROOT / "docs" / "job.schema.json"


def job_schema() -> dict[str, Any]:
    """The JSON schema of a job as the API shows it (documentation and the handler tests)."""
    schema: dict[str, Any] = json.loads(JOB_SCHEMA_FILE.read_text())
    return schema


ERROR = {"$ref": "#/components/schemas/Error"}
JOB = {"$ref": "#/components/schemas/Job"}
ERRORS = {
    400: "Malformed request: bad JSON, schema violation, bad parameter",
    403: "Unsigned request, or no route (API Gateway's Missing Authentication Token)",
    404: "No such job, or not yours",
    409: "Conflict: Idempotency-Key in flight, or the job already finished",
    413: "Request body over the limit: pass large inputs by reference",
    415: "Content-Type is not application/json",
    422: "Unknown task, input not matching the task's schema, or Idempotency-Key reused with another body",
    429: "Throttled (stage throttling or WAF rate rule): retry after a pause",
    503: "Busy (the worker could not be started, or the job store is throttling): retry after Retry-After",
}


def _plain(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema as an OpenAPI 3.0 schema object: no ``$schema``, no ``title``, and
    JSON Schema's ``examples`` list as 3.0's one ``example``."""
    schema = copy.deepcopy(schema)
    for key in ("$schema", "title"):
        schema.pop(key, None)
    plain: dict[str, Any] = _examples_as_example(schema)
    return plain


def _examples_as_example(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return schema
    plain = {key: value for key, value in schema.items() if key != "examples"}
    if isinstance(schema.get("examples"), list) and schema["examples"]:
        plain["example"] = schema["examples"][0]
    for key in ("items", "additionalProperties", "not"):
        if key in plain:
            plain[key] = _examples_as_example(plain[key])
    for key in ("properties", "patternProperties"):
        if isinstance(plain.get(key), dict):
            plain[key] = {name: _examples_as_example(value) for name, value in plain[key].items()}
    for key in ("allOf", "anyOf", "oneOf"):
        if isinstance(plain.get(key), list):
            plain[key] = [_examples_as_example(value) for value in plain[key]]
    return plain


def _errors(*statuses: int) -> dict[str, Any]:
    return {
        str(status): {"description": ERRORS[status], "content": {"application/json": {"schema": ERROR}}}
        for status in statuses
    }


def _job_answer(status: int, description: str, retry_after: bool, location: bool = False) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if location:
        headers["Location"] = {
            "description": "The job's path (/<stage>/jobs/<job_id>), to resolve against the URL called",
            "schema": {"type": "string", "format": "uri-reference"},
        }
    if retry_after:
        headers["Retry-After"] = {
            "description": "Seconds to wait before polling again (absent once the job is finished)",
            "schema": {"type": "integer"},
        }
        headers["Link"] = {
            "description": 'Stacks with WebSocket push (notify=websocket): <wss://...?job_id=...>; rel="monitor", '
            "where a SigV4-signed WebSocket receives each change of the job",
            "schema": {"type": "string"},
        }
    answer: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": JOB}}}
    if headers:
        answer["headers"] = headers
    return {str(status): answer}


def _submit_body() -> dict[str, Any]:
    """One alternative per registered task, in the order ``tasks.py`` registers them (the
    ``make run`` banner suggests the first): its name, and its own input schema."""
    envelope = submit_request_schema()
    alternatives = []
    for name, definition in load_tasks().items():
        alternatives.append(
            {
                "title": name,
                "description": definition.description,
                "type": "object",
                "properties": {
                    "task": {**envelope["properties"]["task"], "enum": [name]},
                    "input": _plain(definition.input_schema),
                },
                "required": ["task", "input"],
                "additionalProperties": False,
            }
        )
    return {"oneOf": alternatives}


def build(config: AppConfig | None = None) -> dict[str, Any]:
    """The document, for ``config`` (the cdk.json defaults when None)."""
    config = config or AppConfig.from_mapping({})
    window = config.tuning.idempotency_window_seconds
    job_id = {
        "name": "job_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "format": "uuid"},
        "description": "The job_id that POST /jobs returned",
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": config.app_name,
            "version": "1.0.0",
            "description": (
                "Asynchronous request-reply for long-running work: POST a job, get 202 at once, poll "
                "GET /jobs/{job_id} every Retry-After seconds until it is COMPLETED, FAILED or CANCELLED. "
                "Every request is signed with AWS SigV4 (service execute-api)."
            ),
        },
        "servers": [
            {"url": f"http://127.0.0.1:3000/{config.api_stage_name}", "description": "make run (local runtime)"},
            {
                "url": f"https://{{api_id}}.execute-api.{{region}}.amazonaws.com/{config.api_stage_name}",
                "description": "A deployed stack (output ApiUrl)",
                "variables": {"api_id": {"default": "abc123"}, "region": {"default": "eu-west-1"}},
            },
        ],
        "security": [{"sigv4": []}],
        "paths": {
            "/jobs": {
                "post": {
                    "operationId": "submitJob",
                    "summary": "Submit a job; answered 202 at once",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "description": f"Same key, caller and body within {window} s: "
                            "the same job, never a second one",
                            "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,128}$"},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "description": f"At most {config.tuning.max_request_bytes} bytes",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SubmitJobRequest"}}},
                    },
                    "responses": {
                        **_job_answer(
                            202, "Accepted: the job, PENDING; Location is its path", retry_after=True, location=True
                        ),
                        **_errors(400, 403, 409, 413, 415, 422, 429, 503),
                    },
                },
                "get": {
                    "operationId": "listJobs",
                    "summary": "Your jobs, newest first, a page at a time",
                    "parameters": [
                        {
                            "name": "status",
                            "in": "query",
                            "schema": {"type": "string", "enum": [status.value for status in JobStatus]},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIST_LIMIT, "default": 20},
                        },
                        {
                            "name": "next_token",
                            "in": "query",
                            "description": "From the previous page; absent on the last one",
                            "schema": {"type": "string", "maxLength": 200},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "A page of jobs (without results)",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobList"}}},
                        },
                        **_errors(400, 403, 429, 503),
                    },
                },
            },
            "/jobs/{job_id}": {
                "get": {
                    "operationId": "getJob",
                    "summary": "A job's status, progress, and result or error",
                    "parameters": [job_id],
                    "responses": {**_job_answer(200, "The job", retry_after=True), **_errors(400, 403, 404, 429, 503)},
                },
                "delete": {
                    "operationId": "cancelJob",
                    "summary": "Cancel a job: at once if PENDING, at its next progress report if RUNNING",
                    "parameters": [job_id],
                    "responses": {
                        **_job_answer(202, "Cancelled, or cancellation requested", retry_after=True),
                        **_errors(400, 403, 404, 409, 429, 503),
                    },
                },
            },
        },
        "components": {
            "securitySchemes": {
                "sigv4": {
                    "type": "apiKey",
                    "name": "Authorization",
                    "in": "header",
                    "description": "AWS Signature Version 4 for service execute-api (AWS_IAM authorization)",
                    "x-amazon-apigateway-authtype": "awsSigv4",
                }
            },
            "schemas": {
                "SubmitJobRequest": _submit_body(),
                "Job": _plain(job_schema()),
                "JobList": {
                    "type": "object",
                    "properties": {
                        "jobs": {"type": "array", "items": JOB},
                        "next_token": {"type": "string"},
                    },
                    "required": ["jobs"],
                    "additionalProperties": False,
                },
                "Error": {
                    "type": "object",
                    "properties": {"message": {"type": "string"}},
                    "required": ["message"],
                    "additionalProperties": False,
                },
            },
        },
    }


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    text = render(build())
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(text)
    else:
        sys.stdout.write(text)
