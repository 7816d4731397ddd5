"""The WebSocket side of ``jobs watch`` (``notify=websocket``).

A stack with WebSocket push answers ``GET /jobs/{id}`` with a ``Link`` header
(``rel="monitor"``) naming its WebSocket URL. :func:`over_websocket` connects there with a
SigV4-signed handshake, hands each pushed job document to ``show`` and returns the final
one; the server closes the connection once the job has finished. Anything else (no
``websockets`` package, a refused or dropped connection) returns None, and the caller
polls instead.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Collection
from typing import Any

try:  # optional: without it, jobs watch polls
    from websockets.exceptions import WebSocketException
    from websockets.sync.client import connect

    HAVE_WEBSOCKETS = True
except ImportError:  # pragma: no cover - the dev requirements install it
    HAVE_WEBSOCKETS = False

from jobs_cli.client import Response

LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?monitor"?')


def monitor_url(response: Response) -> str | None:
    """The WebSocket URL a status answer links to (``Link: <wss://...>; rel="monitor"``)."""
    found = LINK.search(response.header("Link") or "")
    return found.group(1) if found else None


def over_websocket(
    url: str,
    headers: dict[str, str],
    deadline: float,
    show: Callable[[dict[str, Any]], None],
    terminal: Collection[str],
) -> dict[str, Any] | None:
    """The job's final state as pushed to ``url``, or None to fall back to polling."""
    if not HAVE_WEBSOCKETS:
        return None
    try:
        with connect(url, additional_headers=headers, open_timeout=10) as socket:
            while (remaining := deadline - time.monotonic()) > 0:
                job = json.loads(socket.recv(timeout=remaining))
                if not isinstance(job, dict):
                    continue
                show(job)
                if job.get("status") in terminal:
                    return job
    except (OSError, TimeoutError, ValueError, WebSocketException):
        return None  # refused, dropped or timed out: polling takes over (or reports the timeout)
    return None
