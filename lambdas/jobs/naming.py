"""The app's name and every form derived from it, in one place.

``app_name`` in cdk.json (lower-case words joined by hyphens: ``async-jobs``) names the
stack (``AsyncJobs-<stage>``), its tags and descriptions, the metrics namespace, the WAF
and dashboard names, the webhook headers (``X-Async-Jobs-Signature``) and the ``jobs``
CLI's environment variable (``ASYNC_JOBS_API_URL``). A fork renames itself there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Each word starts with a letter: "acme-2go" and "acme2go" would otherwise both be
# "Acme2go", one stack name for two apps (deploying one would update the other's stack).
WORDS = re.compile(r"[a-z][a-z0-9]*(?:-[a-z][a-z0-9]*)*")
# Leaves room in CloudFormation's 128-character stack names, WAF's 128-character metric
# names and the 255-character metrics namespace for everything appended to it.
MAX_LENGTH = 32


@dataclass(frozen=True)
class AppName:
    """``AppName("acme-reports")``: ``.pascal`` AcmeReports, ``.header`` Acme-Reports,
    ``.env_prefix`` ACME_REPORTS."""

    value: str

    def __post_init__(self) -> None:
        if not (WORDS.fullmatch(self.value) and len(self.value) <= MAX_LENGTH):
            raise ValueError(
                f"an app name is lower-case words (each a letter, then letters or digits) joined by hyphens, "
                f"at most {MAX_LENGTH} characters, e.g. acme-reports; got {self.value!r}"
            )

    def __str__(self) -> str:
        return self.value

    @property
    def pascal(self) -> str:
        """Stack names, the metrics namespace, WAF metric names: ``AsyncJobs``."""
        return "".join(word.capitalize() for word in self.value.split("-"))

    @property
    def header(self) -> str:
        """HTTP header words: ``Async-Jobs`` (``X-Async-Jobs-Signature``)."""
        return "-".join(word.capitalize() for word in self.value.split("-"))

    @property
    def env_prefix(self) -> str:
        """Environment variables: ``ASYNC_JOBS`` (``ASYNC_JOBS_API_URL``)."""
        return self.value.upper().replace("-", "_")

    @property
    def api_url_variable(self) -> str:
        """Where the ``jobs`` CLI and the deployed tests read the API's URL."""
        return f"{self.env_prefix}_API_URL"
