"""The escalation webhook client: POST one PagerDuty Events API v2 body, say how it went.

A 2xx answer is delivered; 429, 5xx, a timeout or a network error is worth retrying; any
other answer (400: the body was refused, 401/403/404: wrong URL or key) is not. Neither
the body (it may hold the routing key) nor the URL (it may hold a token) is logged or put
into an outcome: only the status and the exception type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Delivery:
    """How one POST went: `ok`, else whether a retry may help, and a loggable reason."""

    ok: bool
    retry: bool
    reason: str


async def post_event(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> Delivery:
    """POST `body` as JSON to `url`."""
    try:
        resp = await client.post(url, json=body, timeout=TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        return Delivery(False, True, type(exc).__name__)
    status = resp.status_code
    if 200 <= status < 300:
        return Delivery(True, False, str(status))
    return Delivery(False, status == 429 or status >= 500 or status == 408, f"HTTP {status}")
