"""The JSON this app speaks, in requests and in results: RFC 8259 text in UTF-8 that any
strict parser reads back the same, which I-JSON (RFC 7493) spells out.

* no ``NaN`` or ``Infinity`` (not JSON at all; Python writes them unless told not to);
* no lone surrogate (``"\\ud800"`` is valid JSON grammar but no Unicode character, and
  DynamoDB, which stores every string as UTF-8, refuses it);
* no number beyond a double (JavaScript's ``JSON.parse`` reads ``1e400`` as Infinity);
* at most :data:`MAX_JSON_DEPTH` levels of nesting: Python's parser recurses, and fails
  with ``RecursionError`` somewhere near a thousand levels, so a deeper result that the
  worker could still write would be a 500 on every later ``GET``.

Pure Python, no AWS: the API reads requests with it, the runner writes results with it.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

MAX_JSON_DEPTH = 64
# A JSON string (escapes included), to take strings out before counting brackets or digits.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")
# Integers long enough to exceed a double's range (its largest has 309 digits).
_LONG_INTEGER = re.compile(r"\d{309,}")


class NotStrictJson(ValueError):
    """The value or text is not JSON this app accepts; the message says why."""


def nesting(text: str) -> int:
    """The deepest ``[``/``{`` nesting of a JSON text, brackets inside strings ignored
    (counted before parsing, so a deep document never reaches a recursive parser)."""
    return _bracket_depth(_STRING.sub("", text))


def _bracket_depth(outside_strings: str) -> int:
    depth = deepest = 0
    for char in _NOT_A_BRACKET.sub("", outside_strings):
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def dumps(value: Any) -> str:
    """``value`` as compact strict JSON, or :class:`NotStrictJson` saying why it cannot be."""
    try:
        text = json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    except RecursionError:
        raise NotStrictJson(f"it nests deeper than {MAX_JSON_DEPTH} levels") from None
    except (TypeError, ValueError) as error:  # an object JSON has no form for; NaN, Infinity
        raise NotStrictJson(str(error)) from None
    check_text(text)
    return text


def check_text(text: str) -> None:
    """Raise :class:`NotStrictJson` unless ``text`` (JSON, as Python's parser reads or
    writes it) is UTF-8-encodable, within a double's range and :data:`MAX_JSON_DEPTH` deep."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise NotStrictJson("it holds a lone surrogate (\\ud800 to \\udfff), which is no Unicode character") from None
    outside_strings = _STRING.sub("", text)  # once, for the depth and the numbers
    if _bracket_depth(outside_strings) > MAX_JSON_DEPTH:
        raise NotStrictJson(f"it nests deeper than {MAX_JSON_DEPTH} levels")
    if any(int(digits) > sys.float_info.max for digits in _LONG_INTEGER.findall(outside_strings)):
        raise NotStrictJson("it holds a number too large for a double")
