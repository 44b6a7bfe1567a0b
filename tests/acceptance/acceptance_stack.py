"""The product as an outsider runs it: `ppsbot bot` and `ppsbot worker` as subprocesses with
settings from the environment only, our PPS simulator as the appliances, and the strict fake
Slack of acceptance_fake_slack.py. Requests are signed here from SLACK.md's rules.

The fake Slack and the simulator run on an event loop in a background thread, so the tests
themselves are plain synchronous functions driving everything over HTTP. `launch` and
`teardown` (acceptance_launch.py) start and stop it all; acceptance_checks.py says what
the bot sent that breaks the contract.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx

from sim.pps.simulator import Simulator
from tests.acceptance.acceptance_fake_slack import Ephemeral, FakeSlack, Msg, block_problems
from tests.fakes import (
    PPSBOT,
    blob,
    buttons,
    child_env,
    has_buttons,
)

SECRET = "acceptance-signing-secret-8d1e"
TOKEN = "xoxb-acceptance-token"
PPS_CHANNEL = "C0PPS"
CMD_CHANNEL = "C0CMD"
REQ, A1, A2, STRANGER = "U0REQ", "U0APPR1", "U0APPR2", "U0STRANGER"
GROUP = "S0APPRS"
TARGET_BUILD = "9.1R18 (build 29865)"
JOB_ID = re.compile(r"`([A-Za-z0-9-]{1,24})`")
FAST = {"install_seconds": 0.2, "reboot_seconds": 0.4, "rejoin_seconds": 0.2}
T = TypeVar("T")


def sign(secret: str, ts: str, body: bytes) -> str:
    """SLACK.md: "v0=" + hex(HMAC_SHA256(secret, "v0:" + ts + ":" + raw_body))."""
    base = b"v0:" + ts.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class Loop:
    """An asyncio loop in a daemon thread; `run(coro)` runs a coroutine there and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def wait_until(what: str, fn: Callable[[], T | None], timeout: float = 20.0,
               every: float = 0.05) -> T:
    """Poll `fn` until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


@dataclass
class Card:
    """A job's status card as the fake channel shows it now."""

    msg: Msg

    @property
    def payload(self) -> dict[str, Any]:
        return dict((self.msg.metadata or {}).get("event_payload") or {})

    @property
    def state(self) -> str:
        return str(self.payload.get("state"))


@dataclass
class Stack:
    """Running processes plus helpers to drive them like Slack would."""

    tmp: Path
    loop: Loop
    slack: FakeSlack
    sim: Simulator
    env: dict[str, str]
    prefix: str
    bot_url: str
    slack_url: str
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))
    _n: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    shutdown: Callable[[], None] = lambda: None
    minimal: bool = False  # send only the fields SLACK.md names, nothing deprecated

    # -- sending as Slack ----------------------------------------------------------------
    def post_signed(self, body: bytes, *, ts: str | None = None, secret: str = SECRET,
                    headers: dict[str, str] | None = None) -> httpx.Response:
        ts = ts or str(int(time.time()))
        h = {"Content-Type": "application/x-www-form-urlencoded",
             "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sign(secret, ts, body)}
        h.update(headers or {})
        return self.http.post(f"{self.bot_url}/slack/events", content=body, headers=h)

    def command_body(self, user: str, text: str, channel: str = CMD_CHANNEL) -> bytes:
        n = next(self._n)
        fields = {
            "team_id": "T0FAKE", "channel_id": channel, "user_id": user, "command": "/pps",
            "text": text, "api_app_id": "A0APP",
            "response_url": f"{self.slack_url}/response/{n}",
            "trigger_id": f"{n}.{uuid.uuid4().hex[:12]}",
        }
        if not self.minimal:  # the deprecated fields Slack still sends
            fields.update(token="deprecated", team_domain="fake", channel_name="ops",
                          user_name=user.lower())
        else:  # a lazy fake: the same trigger id on every command
            fields["trigger_id"] = "1.1"
        return urlencode(fields).encode()

    def command(self, user: str, text: str, channel: str = CMD_CHANNEL) -> dict[str, Any]:
        """Send `/pps <text>`; return the ack body (asserting a 200 within 3 s)."""
        started = time.monotonic()
        r = self.post_signed(self.command_body(user, text, channel))
        took = time.monotonic() - started
        assert r.status_code == 200, (text, r.status_code, r.text)
        assert took < 3.0, f"ack of {text!r} took {took:.2f}s"
        body: dict[str, Any] = r.json() if r.content else {}
        assert isinstance(body.get("text"), str) and body["text"].strip(), body
        assert not block_problems(body.get("blocks")), block_problems(body.get("blocks"))
        return body

    def upgrade(self, user: str, text: str) -> str:
        """`/pps upgrade ...`; return the job id named in the ephemeral ack."""
        ack = self.command(user, text)
        assert ack.get("response_type") == "ephemeral", ack
        return job_id_in(ack)

    def click(self, user: str, msg: Msg, action_id: str) -> httpx.Response:
        """Click the button `action_id` of `msg` as `user` (a signed block_actions payload)."""
        r = self.post_signed(self.click_body(user, msg, action_id))
        assert r.status_code == 200, (r.status_code, r.text)
        return r

    def click_body(self, user: str, msg: Msg, action_id: str) -> bytes:
        """The form body Slack posts for that click."""
        button = next(e for b in msg.blocks if b.get("type") == "actions"
                      for e in b["elements"] if e.get("action_id") == action_id)
        block_id = next(b.get("block_id") for b in msg.blocks if b.get("type") == "actions"
                        and button in b["elements"])
        n = next(self._n)
        action: dict[str, Any] = {
            "type": "button", "action_id": action_id, "block_id": block_id,
            "value": button.get("value", ""), "text": button["text"],
            "action_ts": f"{time.time():.6f}"}
        payload: dict[str, Any] = {
            "type": "block_actions", "team": {"id": "T0FAKE", "domain": "fake"},
            "user": {"id": user, "username": user.lower(), "team_id": "T0FAKE"},
            "api_app_id": "A0APP", "token": "deprecated", "trigger_id": f"{n}.{uuid.uuid4().hex}",
            "container": {"type": "message", "message_ts": msg.ts, "channel_id": msg.channel,
                          "is_ephemeral": False},
            "channel": {"id": msg.channel, "name": "ops"},
            "message": {"type": "message", "ts": msg.ts, "text": msg.text, "blocks": msg.blocks,
                        **({"thread_ts": msg.thread_ts} if msg.thread_ts else {})},
            "response_url": f"{self.slack_url}/response/{n}",
            "actions": [action],
        }
        if self.minimal:  # only what identifies the click, its clicker and the message
            for k in ("channel", "message", "team", "token", "api_app_id"):
                payload.pop(k)
            # A lazy fake: the same trigger id and action_ts on every click.
            payload["trigger_id"] = "1.1"
            action["action_ts"] = "1700000000.000001"
        return urlencode({"payload": json.dumps(payload)}).encode()

    # -- reading the fake channel ----------------------------------------------------------
    def card(self, job_id: str) -> Card | None:
        _, msgs, _ = self.slack.snapshot()
        for m in msgs:
            if m.thread_ts is None and (m.metadata or {}).get("event_payload", {}).get(
                    "job_id") == job_id:
                return Card(m)
        return None

    def card_in(self, job_id: str, *states: str, timeout: float = 25.0) -> Card:
        def ready() -> Card | None:
            c = self.card(job_id)
            return c if c is not None and c.state in states else None
        try:
            return wait_until(f"card of {job_id} in {states}", ready, timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc} (now {self._card_state(job_id)})") from None

    def _card_state(self, job_id: str) -> str:
        c = self.card(job_id)
        return c.state if c else "no card"

    def thread(self, card: Card) -> list[Msg]:
        _, msgs, _ = self.slack.snapshot()
        return [m for m in msgs if m.channel == card.msg.channel
                and m.thread_ts == card.msg.ts]

    def gate_messages(self, job_id: str) -> list[Msg]:
        """Messages of this job that carry (or carried) approval buttons, oldest first."""
        card = self.card(job_id)
        if card is None:
            return []
        return [m for m in self.thread(card) if _is_approval(m)]

    def open_gate(self, job_id: str, count: int, timeout: float = 25.0) -> Msg:
        """Wait until the job has `count` approval messages and the last one has buttons."""
        def ready() -> Msg | None:
            gates = self.gate_messages(job_id)
            if len(gates) >= count and has_buttons(gates[count - 1]):
                return gates[count - 1]
            return None
        try:
            return wait_until(f"approval message #{count} of {job_id}", ready, timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc} (card {self._card_state(job_id)})") from None

    def with_button(self, job_id: str, action_id: str, after: Msg | None = None,
                    timeout: float = 25.0) -> Msg:
        """Wait for a message in the job's thread, newer than `after`, with a button
        `action_id`; return it."""
        def ready() -> Msg | None:
            card = self.card(job_id)
            for m in self.thread(card) if card else []:
                newer = after is None or float(m.ts) > float(after.ts)
                if newer and any(b.get("action_id") == action_id for b in buttons(m)):
                    return m
            return None
        return wait_until(f"a {action_id} message of {job_id}", ready, timeout)

    def ephemeral_for(self, user: str, contains: str, timeout: float = 10.0) -> Ephemeral:
        def ready() -> Ephemeral | None:
            _, _, eph = self.slack.snapshot()
            return next((e for e in eph if e.user == user and contains in
                         e.text + json.dumps(e.blocks)), None)
        return wait_until(f"ephemeral to {user} containing {contains!r}", ready, timeout)

    # -- the appliances ------------------------------------------------------------------
    def sim_state(self, cluster: str) -> dict[str, Any]:
        return self.sim.cluster(cluster).state_dict()

    def writes(self, cluster: str) -> list[str]:
        """Calls in the simulator's write log (login_permission, install, export, ...)."""
        return [e.call for e in self.sim.cluster(cluster).log]

    def configure(self, cluster: str, changes: dict[str, Any]) -> None:
        self.loop.run(self.sim.configure(cluster, changes))

    # -- processes -------------------------------------------------------------------------
    def start(self, name: str, *args: str) -> None:
        out = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        try:
            self.procs[name] = subprocess.Popen(
                [str(PPSBOT), *args], env=child_env(self.env), cwd=self.tmp, stdout=out,
                stderr=subprocess.STDOUT)
        finally:
            out.close()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n" + p.read_text(errors="replace")[-4000:]
                         for p in sorted(self.tmp.glob("*.log")))

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        self.http.close()


def ack_text(ack: dict[str, Any]) -> str:
    return str(ack.get("text", "")) + blob(ack.get("blocks") or [])


def job_id_in(ack: dict[str, Any]) -> str:
    """The job id an ack names in inline code (DESIGN §4.1); fails when there is none."""
    m = JOB_ID.search(ack_text(ack))
    assert m, ack
    return m.group(1)


def _is_approval(msg: Msg) -> bool:
    # Buttons now, or the decided form (no buttons, "Approval requested:") afterwards.
    return (has_buttons(msg) and any(b.get("action_id") == "pps_approve" for b in buttons(msg))) \
        or ("Approval" in msg.text and "for J" in msg.text)
