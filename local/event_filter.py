"""Lambda event filtering (an event source mapping's ``FilterCriteria``), for the local runtime.

Covers the pattern syntax the app's template uses, with the same meaning as in AWS: a
record passes when any filter matches; in a pattern, every key must match; a list of
values matches when any element does (a literal equals the value; ``{"exists": bool}``,
``{"anything-but": [...]}``, ``{"prefix": "..."}`` test it). An unknown operator never
matches, so a pattern this module does not understand filters out rather than in.
"""

from __future__ import annotations

import json
from typing import Any

_MISSING = object()


def matches(pattern: dict[str, Any], event: Any) -> bool:
    """True when ``event`` matches ``pattern``."""
    if not isinstance(event, dict):
        return False
    for key, expected in pattern.items():
        value = event.get(key, _MISSING)
        if isinstance(expected, dict):
            # No object here: none of the leaves below it exist (only "exists": false holds).
            if not matches(expected, value if isinstance(value, dict) else {}):
                return False
        elif isinstance(expected, list):
            if not any(_matches_one(rule, value) for rule in expected):
                return False
        else:
            return False  # a pattern's leaves are always lists
    return True


def _matches_one(rule: Any, value: Any) -> bool:
    # Rules test leaves only: the engine flattens an event into the paths of its leaf values,
    # so an object (an intermediate node) is no value at all; ``exists`` "only works on leaf
    # nodes" (EventBridge User Guide, "Content filtering in event patterns": exists matching;
    # Lambda's event filtering shares the syntax). ``{"exists": false}`` on an object matches.
    if isinstance(value, dict):
        value = _MISSING
    if isinstance(rule, dict):
        if "exists" in rule:
            return (value is not _MISSING) == bool(rule["exists"])
        if value is _MISSING:
            return False
        if "anything-but" in rule:
            excluded = rule["anything-but"]
            return value not in (excluded if isinstance(excluded, list) else [excluded])
        if "prefix" in rule:
            return isinstance(value, str) and value.startswith(rule["prefix"])
        return False
    return value is not _MISSING and value == rule


def passes(filters: list[dict[str, Any]], event: dict[str, Any]) -> bool:
    """True when there are no filters or any of them matches (``FilterCriteria.Filters``)."""
    return not filters or any(matches(f, event) for f in filters)


def parse_filters(properties: dict[str, Any]) -> list[dict[str, Any]]:
    """The patterns of an event source mapping's ``FilterCriteria`` (stored as JSON text)."""
    found = properties.get("FilterCriteria", {}).get("Filters", [])
    return [json.loads(f["Pattern"]) if isinstance(f["Pattern"], str) else f["Pattern"] for f in found]
