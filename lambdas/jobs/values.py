"""How a setting's value is read and checked: one set of parsers for the CDK config
(``stacks/config.py``, from ``cdk.json``) and the functions' settings (``jobs/settings.py``,
from environment variables), so a bound is written once and both sides enforce it.

A parser takes the setting's label (for the message) and the raw value (a string from the
environment, or any JSON value from ``cdk.json``) and returns the value or raises
:class:`InvalidValue`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from jobs.naming import AppName

T = TypeVar("T")
Parser = Callable[[str, Any], T]


class InvalidValue(ValueError):
    """A value is malformed or out of range; the message names the setting."""


# An integer as text: ASCII digits with an optional minus, nothing else. Python's int()
# also takes "3_600", " 300 ", "+300" and other scripts' digits ("٣٠٠"), and True: a
# mistyped setting must fail, not become a number.
INTEGER_TEXT = re.compile(r"-?[0-9]+")


def integer(minimum: int, maximum: int) -> Parser[int]:
    def parse(label: str, raw: Any) -> int:
        whole = (
            (isinstance(raw, int) and not isinstance(raw, bool))
            or (isinstance(raw, float) and raw.is_integer())
            or (isinstance(raw, str) and INTEGER_TEXT.fullmatch(raw) is not None)
        )
        if not whole:
            raise InvalidValue(f"{label} must be an integer, got {raw!r}")
        value = int(raw)
        if not minimum <= value <= maximum:
            raise InvalidValue(f"{label} must be between {minimum} and {maximum}, got {value}")
        return value

    return parse


def optional_integer(minimum: int, maximum: int) -> Parser[int | None]:
    """An integer, or None for an empty value, ``none`` or ``null``."""
    parse_integer = integer(minimum, maximum)

    def parse(label: str, raw: Any) -> int | None:
        if raw is None or raw == "" or str(raw).lower() in {"none", "null"}:
            return None
        return parse_integer(label, raw)

    return parse


def capacity(minimum: float, maximum: float) -> Parser[float]:
    """A number of Aurora capacity units: ``minimum`` to ``maximum`` in steps of 0.5."""

    def parse(label: str, raw: Any) -> float:
        try:
            value = float(raw)
        except (TypeError, ValueError) as error:
            raise InvalidValue(f"{label} must be a number of ACUs, got {raw!r}") from error
        if isinstance(raw, bool) or not minimum <= value <= maximum or (value * 2) % 1:
            raise InvalidValue(f"{label} must be between {minimum:g} and {maximum:g} in steps of 0.5, got {raw!r}")
        return value

    return parse


def choice(*choices: str) -> Parser[str]:
    def parse(label: str, raw: Any) -> str:
        value = str(raw).lower()
        if value not in choices:
            raise InvalidValue(f"{label} must be one of {', '.join(choices)}, got {raw!r}")
        return value

    return parse


def one_of(*choices: int) -> Parser[int]:
    parse_integer = integer(min(choices), max(choices))

    def parse(label: str, raw: Any) -> int:
        value = parse_integer(label, raw)
        if value not in choices:
            raise InvalidValue(f"{label} must be one of {', '.join(map(str, choices))}, got {raw!r}")
        return value

    return parse


def aws_ids(prefix: str) -> Parser[list[str]]:
    """A list of AWS resource ids (``subnet-0abc...``), from a JSON list or a comma-separated
    string (``-c vpc_subnet_ids=subnet-1,subnet-2``); empty is an empty list."""
    pattern = re.compile(rf"^{prefix}-[0-9a-f]{{8,17}}$")

    def parse(label: str, raw: Any) -> list[str]:
        if raw is None or raw == "":
            return []
        items = raw if isinstance(raw, list) else str(raw).split(",")
        found = [str(item).strip() for item in items]
        wrong = [item for item in found if not pattern.match(item)]
        if wrong:
            raise InvalidValue(f"{label} must be {prefix}-... ids, got {', '.join(map(repr, wrong))}")
        if len(set(found)) != len(found):
            raise InvalidValue(f"{label} lists an id twice")
        return found

    return parse


def aws_id(prefix: str) -> Parser[str | None]:
    """One AWS resource id (``vpc-0abc...``), or None when empty."""
    parse_list = aws_ids(prefix)

    def parse(label: str, raw: Any) -> str | None:
        found = parse_list(label, raw)
        if len(found) > 1:
            raise InvalidValue(f"{label} must be one {prefix}-... id")
        return found[0] if found else None

    return parse


def boolean(label: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    value = str(raw).lower()
    if value not in {"true", "false"}:
        raise InvalidValue(f"{label} must be true or false, got {raw!r}")
    return value == "true"


def text(label: str, raw: Any) -> str:
    """Any non-empty string (a resource's name, URL or ARN)."""
    if raw is None or str(raw) == "":
        raise InvalidValue(f"{label} must not be empty")
    return str(raw)


EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def email(label: str, raw: Any) -> str | None:
    if raw is None or raw == "":
        return None
    value = str(raw)
    if not EMAIL.match(value):
        raise InvalidValue(f"{label} must be an e-mail address, got {raw!r}")
    return value


def stage_name(label: str, raw: Any) -> str:
    value = str(raw)
    if not re.fullmatch(r"[A-Za-z0-9_]{1,64}", value):
        raise InvalidValue(f"{label} must be letters, digits or underscores, got {raw!r}")
    return value


def app_name(label: str, raw: Any) -> AppName:
    try:
        return AppName(str(raw))
    except ValueError as error:
        raise InvalidValue(f"{label}: {error}") from error
