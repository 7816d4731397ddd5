"""JSON schemas shared by the Lambda functions and the API Gateway models (``stacks/api.py``).

(The schema of a job as the API answers it is documentation, not function code: it lives in
``docs/job.schema.json``, read by ``stacks/openapi.py`` and the handler tests.)"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).parent
SUBMIT_REQUEST_SCHEMA_FILE = SCHEMA_DIR / "submit_request.json"


@cache
def submit_request_schema() -> dict[str, Any]:
    """The JSON schema (draft 4, as API Gateway requires) of the ``POST /jobs`` body."""
    schema: dict[str, Any] = json.loads(SUBMIT_REQUEST_SCHEMA_FILE.read_text())
    return schema
