"""The environment variable the CLI reads its API URL from, named after the app.

The app's name is ``app_name`` in this checkout's ``cdk.json`` (``async-jobs`` →
``ASYNC_JOBS_API_URL``; ``acme-reports`` → ``ACME_REPORTS_API_URL``): a fork that renames
itself there renames this too. The CLI does not import the Lambda package, so it derives
the name as ``jobs.naming.AppName.api_url_variable`` does (a test holds them equal).
"""

from __future__ import annotations

import json
from pathlib import Path

CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"
FALLBACK = "JOBS_API_URL"  # the CLI installed without its checkout


def api_url_variable_for(app_name: str) -> str:
    """``ASYNC_JOBS_API_URL`` for ``async-jobs``."""
    return f"{app_name.upper().replace('-', '_')}_API_URL"


def api_url_variable(cdk_json: Path = CDK_JSON) -> str:
    """The variable for the app this checkout configures."""
    try:
        name = json.loads(cdk_json.read_text())["context"]["settings"]["app_name"]
    except (OSError, ValueError, KeyError, TypeError):
        return FALLBACK
    return api_url_variable_for(str(name))
