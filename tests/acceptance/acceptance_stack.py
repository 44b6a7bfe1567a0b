"""The product as an outsider runs it: `ppsbot bot` and `ppsbot worker` as subprocesses with
settings from the environment only, our PPS simulator as the appliances, and the strict fake
Slack of acceptance_fake_slack.py. Requests are signed here from SLACK.md's rules.

The fake Slack and the simulator run on an event loop in a background thread, so the tests
themselves are plain synchronous functions driving everything over HTTP.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
import itertools
import json
import os
import re
import signal
import socket
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
import redis
import uvicorn
import yaml

from sim.pps.config import parse_config
from sim.pps.simulator import Simulator
from tests.acceptance.acceptance_fake_slack import KNOWN, Ephemeral, FakeSlack, Msg, block_problems
from tests.fakes import (
    PPSBOT,
    REDIS_URL,
    blob,
    bound_socket,
    buttons,
    child_env,
    free_port,
    has_buttons,
    serve,
    sim_firmware,
    url_of,
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


def slack_contract_problems(st: Stack) -> list[str]:
    """What the bot sent so far that breaks SLACK.md / DESIGN §3: what the fake refused
    (token, text fallback, Block Kit, thread_ts), methods nobody documented, a traceback
    or a secret in a call, top-level posts or card updates without `pps_job` metadata."""
    calls, msgs, _ = st.slack.snapshot()
    out = list(st.slack.problems)
    secrets = [SECRET, TOKEN, *(c.password for c in st.sim.clusters.values())]
    for c in calls:
        if c.method not in KNOWN:
            out.append(f"called {c.method}, which the contract does not name")
        raw = json.dumps(c.args, ensure_ascii=False)
        if "Traceback" in raw or 'File "' in raw:
            out.append(f"{c.method}: a traceback reached Slack: {raw[:300]}")
        out.extend(f"{c.method}: a secret reached Slack" for x in secrets if x in raw)
    # Nothing posted twice: a step's "done" reply, a button (its value names job and gate).
    done = collections.Counter((c.args.get("thread_ts"), c.args.get("text")) for c in calls
                               if c.ok and c.method == "chat.postMessage"
                               and str(c.args.get("text", "")).startswith("✅"))
    out.extend(f"posted {n} times: {t}" for (_, t), n in done.items() if n > 1)
    values = collections.Counter(
        v for c in calls if c.ok and c.method == "chat.postMessage"
        for v in {e.get("value") for b in c.args.get("blocks") or []
                  if b.get("type") == "actions" for e in b.get("elements", [])})
    out.extend(f"buttons posted {n} times: {v}" for v, n in values.items() if n > 1)
    cards = {(m.channel, m.ts) for m in msgs if m.thread_ts is None}
    per_job = collections.Counter(
        (m.metadata or {}).get("event_payload", {}).get("job_id") for m in msgs
        if m.thread_ts is None)
    out.extend(f"{n} cards for job {j}" for j, n in per_job.items() if n > 1)
    for c in calls:
        top_post = c.method == "chat.postMessage" and not c.args.get("thread_ts")
        card_update = c.method == "chat.update" and (c.args.get("channel"), c.args.get("ts")) \
            in cards
        if not (top_post or card_update):
            continue
        meta = c.args.get("metadata") or {}
        payload = meta.get("event_payload") or {}
        if meta.get("event_type") != "pps_job" or not {"job_id", "cluster", "state",
                                                         "step"} <= set(payload):
            out.append(f"{c.method} of a card without pps_job metadata: {meta!r}")
    return out


def order_problems(st: Stack) -> list[str]:
    """The card never runs ahead of the channel: when an edit shows the job waiting on a
    human, the message with the buttons is already posted; when it shows the job finished,
    the summary is (for a job failed with logins still off: the alarm). So a client that
    follows the card's `pps_job` metadata and then looks for the message finds it. The
    card's first post is not checked: a notifier posting it late renders the job as it
    is by then."""
    calls, msgs, _ = st.slack.snapshot()
    cards = {m.ts: m for m in msgs if m.thread_ts is None}
    buttons_posted: dict[str, int] = collections.Counter()
    summaries: dict[str, set[str]] = collections.defaultdict(set)
    episodes: dict[str, int] = collections.Counter()
    last: dict[str, tuple[str, str]] = {}
    out = []
    for c in calls:
        if not c.ok:
            continue
        blocks = json.dumps(c.args.get("blocks") or [])
        parent = str(c.args.get("thread_ts") or "")
        if c.method == "chat.postMessage" and parent in cards:
            if '"pps_approve"' in blocks or '"pps_confirm"' in blocks:
                buttons_posted[parent] += 1
            if c.args.get("reply_broadcast") and '"header"' in blocks and not str(
                    c.args.get("text")).startswith("Dry run"):  # the summary, not the plan
                summaries[parent].add("posted")
            if c.args.get("reply_broadcast") and "still disabled" in str(c.args.get("text")):
                summaries[parent].add("logins alarm")  # a failed job that is not over yet
            continue
        if c.method != "chat.update" or c.args.get("ts") not in cards:
            continue
        ts = str(c.args["ts"])
        payload = (c.args.get("metadata") or {}).get("event_payload") or {}
        now = (str(payload.get("state")), str(payload.get("step")))
        if now[0] == "awaiting_approval" and last.get(ts) != now:
            episodes[ts] += 1
            if buttons_posted[ts] < episodes[ts]:
                out.append(f"card {payload.get('job_id')} showed {now} before its request"
                           + _trace(calls, ts))
        if now[0] in ("succeeded", "failed", "cancelled") and not summaries[ts]:
            out.append(f"card {payload.get('job_id')} showed {now[0]} before the summary"
                       + _trace(calls, ts))
        last[ts] = now
    return out


def _trace(calls: list[Any], card_ts: str) -> str:
    lines = []
    for c in calls:
        if card_ts in (c.args.get("ts"), c.args.get("thread_ts")):
            p = (c.args.get("metadata") or {}).get("event_payload") or {}
            lines.append(f"  {c.at:.3f} {c.method} ok={c.ok} {p.get('state')}/{p.get('step')} "
                         f"{str(c.args.get('text'))[:70]}")
    return "\n" + "\n".join(lines)


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


def launch(tmp: Path, sim_clusters: dict[str, Any], *, channels: dict[str, str],
           workers: int, users_info: bool, extra_env: dict[str, str],
           minimal: bool = False, inventory_extra: dict[str, dict[str, Any]] | None = None,
           ) -> Stack:
    """Start simulator + fake Slack in a thread, then the bot and workers as processes.

    `minimal`: only the settings DESIGN §3 names that a new user would set (no backup dir,
    no log format) and `SLACK_API_URL` without its trailing slash."""
    loop = Loop()
    slack = FakeSlack(TOKEN, users_info=users_info, groups={GROUP: [A2, REQ]})
    sim = Simulator(parse_config({"clusters": sim_clusters}, tmp))
    slack_sock = bound_socket()
    slack_url = url_of(slack_sock)

    async def up() -> tuple[uvicorn.Server, asyncio.Task[None]]:
        await sim.start()
        return await serve(slack.app, slack_sock, lifespan="off")

    server, serving = loop.run(up())
    inv = sim.inventory(sim_firmware(tmp, folder="firmware"))
    for cluster, channel in channels.items():
        inv["clusters"][cluster]["channel"] = channel
    for cluster, extra in (inventory_extra or {}).items():
        inv["clusters"][cluster].update(extra)
    (tmp / "inventory.yml").write_text(yaml.safe_dump(inv))
    prefix = f"ppsacc:{uuid.uuid4().hex[:8]}:"
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp),
        "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": f"{slack_url}/api/", "REDIS_URL": REDIS_URL,
        "PPS_REDIS_PREFIX": prefix, "PPS_INVENTORY": str(tmp / "inventory.yml"),
        "PPS_CHANNEL": PPS_CHANNEL, "PPS_APPROVERS": f"{A1},{GROUP}",
        "PPS_SETTLE_SECONDS": "0.5", "PPS_POLL_SECONDS": "0.2",
        "PPS_REBOOT_TIMEOUT_SECONDS": "20", "PPS_REMINDER_SECONDS": "0.5",
        "PPS_LEASE_SECONDS": "0.6", "PPS_BACKUP_DIR": str(tmp / "backups"),
        "PORT": str(port), "LOG_FORMAT": "json", **sim.credentials_env(), **extra_env,
    }
    if minimal:
        del env["PPS_BACKUP_DIR"], env["LOG_FORMAT"]
        env["SLACK_API_URL"] = f"{slack_url}/api"
    st = Stack(tmp, loop, slack, sim, env, prefix, f"http://127.0.0.1:{port}", slack_url,
               shutdown=lambda: _shutdown(loop, sim, server, serving, slack_sock),
               minimal=minimal)
    try:
        st.start("bot", "bot")
        for i in range(workers):
            st.start(f"worker{i + 1}", "worker", "--name", f"acc-w{i + 1}")
        wait_until("the bot's /healthz", lambda: _healthy(st), 20, 0.1)
    except BaseException:
        teardown(st)
        raise
    return st


def _healthy(st: Stack) -> bool:
    for name, p in st.procs.items():
        if p.poll() is not None:
            raise AssertionError(f"{name} exited {p.returncode}:\n{st.logs()}")
    try:
        return st.http.get(f"{st.bot_url}/healthz").status_code == 200
    except httpx.HTTPError:
        return False


def _shutdown(loop: Loop, sim: Simulator, server: uvicorn.Server,
              serving: asyncio.Task[None], sock: socket.socket) -> None:
    async def down() -> None:
        server.should_exit = True
        await sim.stop()
        await serving

    try:
        loop.run(down())
    finally:
        loop.close()
        sock.close()


def teardown(st: Stack) -> None:
    """Stop processes and servers; delete this run's Redis keys."""
    try:
        st.stop()
    finally:
        st.shutdown()
        r = redis.Redis.from_url(REDIS_URL)
        try:
            for key in r.scan_iter(match=f"{st.prefix}*", count=500):
                r.delete(key)
        finally:
            r.close()
