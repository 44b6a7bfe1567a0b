"""What the bot sent the fake Slack that breaks the contract (SLACK.md, DESIGN §3): refused
calls, undocumented methods, tracebacks or secrets, repeats, cards without metadata, and a
card that runs ahead of its channel. Read from the calls the fake recorded so far."""

from __future__ import annotations

import collections
import json
from typing import Any

from tests.acceptance.acceptance_fake_slack import KNOWN
from tests.acceptance.acceptance_stack import SECRET, TOKEN, Stack
from tests.fakes import blob


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
        raw = blob(c.args)
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
