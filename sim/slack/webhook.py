"""A receiver for escalation webhooks, shaped like the PagerDuty Events API v2 endpoint.

- `POST /_standin/webhook` takes one event (JSON) and records it: 202 `{"status":
  "success", "message": "Event processed", "dedup_key"}` as PagerDuty answers, or 400
  `{"status": "invalid event", "errors": [...]}` for a body PagerDuty would refuse
  (`event_action` not trigger/acknowledge/resolve, no `dedup_key` on a resolve, a trigger
  without `payload.summary`, `payload.source` or a known `payload.severity`).
- `GET /_standin/webhook` -> `{"calls": [{"at", "status", "body"}, ...]}`, every call as
  received (refused and failed ones too).
- `POST /_standin/webhook/fail {"count": n, "status": 500}` answers the next `n` calls with
  that status (a receiver having trouble), to see the sender retry.

This module imports nothing of the product: it is the receiver's side of the contract.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")


@dataclass
class WebhookCall:
    at: float
    status: int
    body: Any

    def public(self) -> dict[str, Any]:
        return {"at": self.at, "status": self.status, "body": self.body}


def problems(body: Any) -> list[str]:
    """Why PagerDuty would refuse `body` (empty when it would take it)."""
    if not isinstance(body, dict):
        return ["the body is not a JSON object"]
    out = []
    action = body.get("event_action")
    if action not in ACTIONS:
        out.append(f"event_action must be one of {', '.join(ACTIONS)}")
    if action != "trigger" and not body.get("dedup_key"):
        out.append("dedup_key is required for acknowledge and resolve")
    if action == "trigger":
        payload = body.get("payload")
        if not isinstance(payload, dict):
            out.append("payload is required")
        else:
            for name in ("summary", "source"):
                if not isinstance(payload.get(name), str) or not payload.get(name):
                    out.append(f"payload.{name} is required")
            if payload.get("severity") not in SEVERITIES:
                out.append(f"payload.severity must be one of {', '.join(SEVERITIES)}")
    return out


@dataclass
class WebhookReceiver:
    """Records the calls; may be told to fail the next few."""

    calls: list[WebhookCall] = field(default_factory=list)
    _failures: deque[int] = field(default_factory=deque)

    def bodies(self, action: str | None = None) -> list[dict[str, Any]]:
        """The accepted events (of one `event_action` when given), in arrival order."""
        return [c.body for c in self.calls if c.status == 202
                and (action is None or c.body.get("event_action") == action)]

    def fail_next(self, count: int, status: int = 500) -> None:
        self._failures.extend([status] * count)

    async def receive(self, request: Request) -> JSONResponse:
        raw = await request.body()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        if self._failures:
            status = self._failures.popleft()
            self.calls.append(WebhookCall(time.time(), status, body))
            return JSONResponse({"status": "error", "message": "try again later"},
                                status_code=status)
        wrong = problems(body)
        if wrong:
            self.calls.append(WebhookCall(time.time(), 400, body))
            return JSONResponse({"status": "invalid event", "message": "Event object is "
                                 "invalid", "errors": wrong}, status_code=400)
        self.calls.append(WebhookCall(time.time(), 202, body))
        return JSONResponse({"status": "success", "message": "Event processed",
                             "dedup_key": body.get("dedup_key") or "generated"},
                            status_code=202)

    async def list_calls(self, request: Request) -> JSONResponse:
        return JSONResponse({"calls": [c.public() for c in self.calls]})

    async def fail(self, request: Request) -> JSONResponse:
        body = await request.json()
        count = body.get("count") if isinstance(body, dict) else None
        status = body.get("status", 500) if isinstance(body, dict) else 500
        if not isinstance(count, int) or not isinstance(status, int) or count < 0:
            return JSONResponse({"error": "count (>= 0) and status must be integers"},
                                status_code=400)
        self.fail_next(count, status)
        return JSONResponse({"failing": len(self._failures)})

    def routes(self) -> list[Route]:
        return [
            Route("/_standin/webhook", self.receive, methods=["POST"]),
            Route("/_standin/webhook", self.list_calls, methods=["GET"]),
            Route("/_standin/webhook/fail", self.fail, methods=["POST"]),
        ]
