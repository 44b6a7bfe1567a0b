// The channel page: reads the stand-in's state (long-poll with a polling fallback), renders
// the channel with threads and ephemerals, sends /pps commands and button clicks as the
// selected user, and shows the app's Home tab (opening it sends `app_home_opened`).
// Stable hooks for tests: #user-select, #command-input, #command-form,
// .msg[data-ts][data-ephemeral][data-event-type][data-job-state], button[data-action-id],
// #confirm-modal/#confirm-ok/#confirm-cancel, #conn[data-version], #command-result[data-status],
// #tab-channel/#tab-home, #home[data-publishes].
"use strict";

(function (PPS) {
  const POLL_FALLBACK_MS = 700;
  const RETRY_MS = 1500;
  const h = PPS.h;
  const $ = (sel) => document.querySelector(sel);
  const params = new URLSearchParams(location.search);

  const S = {
    version: -1,
    users: [],
    channels: {},
    viewer: params.get("user") || document.body.dataset.defaultUser,
    channel: params.get("channel") || document.body.dataset.defaultChannel,
    tab: params.get("tab") === "home" ? "home" : "channel",
    home: null, // the viewer's Home tab as the app last published it
    focusTs: params.get("ts"), // a message to scroll to (links to a card)
    expanded: new Set(),
    seen: new Map(), // ts -> content fingerprint, to flash edited messages
    gen: 0,
    ctl: null,
  };

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  function isBot(id) {
    return !S.users.some((x) => x.id === id) && /bot/i.test(String(id || ""));
  }
  function userName(id) {
    const u = S.users.find((x) => x.id === id);
    if (u) return u.name;
    return isBot(id) ? "pps-bot" : id;
  }

  function tsKey(ts) {
    const [a, b] = String(ts).split(".");
    return [Number(a) || 0, Number(b) || 0];
  }
  function byTs(x, y) {
    const [a1, b1] = tsKey(x.ts);
    const [a2, b2] = tsKey(y.ts);
    return a1 - a2 || b1 - b2;
  }
  function timeOf(ts) {
    const d = new Date(Number(String(ts).split(".")[0]) * 1000);
    return isNaN(d) ? "" : d.toLocaleTimeString([], { hour12: false });
  }

  function setConn(ok, detail) {
    const c = $("#conn");
    c.dataset.connected = ok ? "true" : "false";
    c.dataset.version = String(S.version);
    c.textContent = ok ? "live" : "reconnecting… " + (detail || "");
  }

  // ---- state --------------------------------------------------------------------------

  async function pollLoop() {
    for (;;) {
      const gen = S.gen;
      const ctl = new AbortController();
      S.ctl = ctl;
      const q = new URLSearchParams({ viewer: S.viewer });
      if (S.version >= 0) q.set("since", String(S.version));
      try {
        const r = await fetch("/_standin/state?" + q, { signal: ctl.signal, cache: "no-store" });
        if (!r.ok) throw new Error("HTTP " + r.status);
        const data = await r.json();
        if (gen !== S.gen) continue; // the viewer changed while we waited
        const changed = data.version !== S.version;
        S.version = data.version;
        S.users = data.users || [];
        S.channels = data.channels || {};
        S.home = data.home || null;
        setConn(true);
        if (changed) render();
        else await sleep(POLL_FALLBACK_MS); // the server answered at once: poll politely
      } catch (e) {
        if (e && e.name === "AbortError") continue;
        setConn(false, String(e && e.message ? e.message : e));
        await sleep(RETRY_MS);
      }
    }
  }

  function restartPoll() {
    S.gen += 1;
    S.version = -1;
    if (S.ctl) S.ctl.abort();
  }

  async function postJSON(path, body) {
    const r = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    let data = null;
    try { data = await r.json(); } catch (_) { data = null; }
    return { http: r.status, data };
  }

  // ---- actions ------------------------------------------------------------------------

  function showResult(kind, text) {
    const el = $("#command-result");
    el.dataset.status = kind;
    el.textContent = text;
  }

  function askConfirm(confirm) {
    const modal = $("#confirm-modal");
    $("#confirm-title").textContent = PPS.plain(confirm.title && confirm.title.text) || "Are you sure?";
    const body = $("#confirm-text");
    body.replaceChildren(PPS.textObject(confirm.text || { type: "plain_text", text: "" }, { names: userName }));
    const ok = $("#confirm-ok");
    ok.textContent = PPS.plain(confirm.confirm && confirm.confirm.text) || "Confirm";
    ok.className = confirm.style === "danger" ? "danger" : "primary";
    $("#confirm-cancel").textContent = PPS.plain(confirm.deny && confirm.deny.text) || "Cancel";
    modal.hidden = false;
    ok.focus();
    return new Promise((resolve) => {
      const done = (v) => {
        modal.hidden = true;
        ok.onclick = null;
        $("#confirm-cancel").onclick = null;
        document.removeEventListener("keydown", onKey);
        resolve(v);
      };
      const onKey = (ev) => { if (ev.key === "Escape") done(false); };
      ok.onclick = () => done(true);
      $("#confirm-cancel").onclick = () => done(false);
      document.addEventListener("keydown", onKey);
    });
  }

  async function onAction(el, message, btn) {
    if (el.confirm && !(await askConfirm(el.confirm))) {
      showResult("cancelled", `Cancelled: ${PPS.plain(el.text && el.text.text)}`);
      return;
    }
    btn.disabled = true;
    const body = {
      user_id: S.viewer,
      channel_id: message._channel,
      message_ts: message.ts,
      action_id: el.action_id,
      value: el.value || "",
    };
    try {
      const { http, data } = await postJSON("/_standin/click", body);
      const st = data && data.status !== undefined ? data.status : http;
      const why = data && data.error ? ` (${data.error})` : "";
      showResult(http < 400 && Number(st) < 400 ? "ok" : "error",
        `${userName(S.viewer)} clicked “${PPS.plain(el.text && el.text.text)}” → bot answered ${st}${why}`);
    } catch (e) {
      showResult("error", "click failed: " + e);
    } finally {
      btn.disabled = false;
    }
  }

  async function sendCommand(raw) {
    let text = raw.trim();
    if (!text) return;
    if (text.startsWith("/") && !/^\/pps(\s|$)/.test(text)) {
      showResult("error", "Only /pps is wired to the bot here.");
      return;
    }
    text = text.replace(/^\/pps\s*/, "");
    showResult("sending", `/pps ${text} …`);
    try {
      const { http, data } = await postJSON("/_standin/command", {
        user_id: S.viewer, channel_id: S.channel, text,
      });
      const st = data && data.status !== undefined ? data.status : http;
      const why = data && data.body && data.body.error ? ` (${data.body.error})` : "";
      showResult(http < 400 && Number(st) < 400 ? "ok" : "error",
        `/pps ${text} as ${userName(S.viewer)} → bot answered ${st}${why}`);
    } catch (e) {
      showResult("error", "command failed: " + e);
    }
  }

  // ---- rendering ----------------------------------------------------------------------

  function fingerprint(m) {
    return JSON.stringify([m.text, m.blocks, m.edited]);
  }

  function messageNode(m, replies, opts) {
    const ephemeral = !!m.ephemeral_for;
    const meta = m.metadata && m.metadata.event_payload ? m.metadata : null;
    const fp = fingerprint(m);
    const prev = S.seen.get(m.ts);
    S.seen.set(m.ts, fp);
    const classes = ["msg"];
    if (ephemeral) classes.push("ephemeral");
    if (opts.inThread) classes.push("reply");
    if (prev !== undefined && prev !== fp) classes.push("flash");
    const node = h("article", {
      class: classes.join(" "),
      id: (opts.inThread ? "reply-" : "msg-") + String(m.ts).replace(/\W/g, "-"),
      "data-ts": m.ts,
      "data-thread-ts": m.thread_ts || "",
      "data-user": m.user || "",
      "data-ephemeral": ephemeral ? "true" : "false",
      "data-edited": m.edited ? "true" : "false",
      "data-broadcast": m.reply_broadcast ? "true" : "false",
      "data-event-type": meta ? meta.event_type : "",
      "data-job-id": meta ? meta.event_payload.job_id || "" : "",
      "data-job-state": meta ? meta.event_payload.state || "" : "",
      "data-job-step": meta ? meta.event_payload.step || "" : "",
    });
    const head = h("div", { class: "msg-head" },
      h("span", { class: "author", text: userName(m.user) }),
      isBot(m.user) ? h("span", { class: "app-badge", text: "APP" }) : null,
      h("span", { class: "time", text: timeOf(m.ts) }),
      m.edited ? h("span", { class: "edited", text: "(edited)" }) : null,
      ephemeral ? h("span", { class: "only-you", text: "Only visible to you" }) : null,
      m.reply_broadcast && !opts.inThread ? h("span", { class: "broadcast", text: "replied to a thread" }) : null,
      !opts.inThread && m.thread_ts && m.thread_ts !== m.ts && ephemeral
        ? h("span", { class: "broadcast", text: "in a thread" }) : null,
      meta ? h("span", { class: "meta", text: `${meta.event_type} · ${meta.event_payload.job_id || ""} · ${meta.event_payload.state || ""}` }) : null);
    node.append(head, PPS.renderBlocks(m, { names: userName, onAction, message: m }));
    if (m.files && m.files.length) {  // shared by files.completeUploadExternal (change records)
      node.append(h("div", { class: "files" }, m.files.map((f) =>
        h("a", { class: "file", href: `/_standin/files/${encodeURIComponent(f.id)}`,
                 target: "_blank", "data-file-id": f.id, text: `📄 ${f.title || f.name}` }))));
    }
    if (replies && replies.length) {
      const open = S.expanded.has(m.ts);
      const toggle = h("button", {
        type: "button", class: "thread-toggle", "data-thread-ts": m.ts,
        "aria-expanded": open ? "true" : "false",
        text: open ? `Hide ${replies.length} replies` : `${replies.length} ${replies.length === 1 ? "reply" : "replies"}`,
        onclick: () => { if (S.expanded.has(m.ts)) S.expanded.delete(m.ts); else S.expanded.add(m.ts); render(); },
      });
      node.append(toggle);
      if (open) {
        node.append(h("div", { class: "thread-replies", "data-thread-ts": m.ts },
          replies.map((r) => messageNode(r, null, { inThread: true }))));
      }
    }
    return node;
  }

  function renderChannelSelect() {
    const sel = $("#channel-select");
    const ids = new Set(Object.keys(S.channels));
    ids.add(S.channel);
    const want = [...ids].sort();
    const have = [...sel.options].map((o) => o.value);
    if (want.join() !== have.join()) sel.replaceChildren(...want.map((id) => h("option", { value: id, text: id })));
    sel.value = S.channel;
  }

  function renderUserSelect() {
    const sel = $("#user-select");
    const want = S.users.map((u) => `${u.id}:${u.name}:${u.role}`).join();
    if (sel.dataset.users !== want) {
      sel.replaceChildren(...S.users.map((u) =>
        h("option", { value: u.id, text: `${u.name} (${u.role || "user"})` })));
      if (!S.users.some((u) => u.id === S.viewer)) {
        sel.append(h("option", { value: S.viewer, text: S.viewer }));
      }
      sel.dataset.users = want;
    }
    sel.value = S.viewer;
    const me = S.users.find((u) => u.id === S.viewer);
    const hints = {
      requester: "asks for upgrades; may not approve their own job",
      approver: "may approve or reject gates",
      stranger: "not an approver: clicks are refused",
    };
    $("#user-role").textContent = me ? hints[me.role] || me.role || "" : "";
    document.body.dataset.viewer = S.viewer;
  }

  async function openHome() {
    const problem = await PPS.home.open(S.viewer);
    if (problem) showResult("error", problem);
  }

  function focusMessage() {
    if (!S.focusTs) return;
    const el = document.querySelector(`#messages .msg[data-ts="${CSS.escape(S.focusTs)}"]`);
    if (!el) return;
    S.focusTs = null;
    el.scrollIntoView({ block: "center" });
    el.classList.add("flash");
  }

  function render() {
    renderUserSelect();
    renderChannelSelect();
    PPS.home.showTab(S.tab);
    PPS.home.render(S.home, { names: userName, onAction });
    const box = $("#messages");
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    const all = (S.channels[S.channel] || [])
      .filter((m) => !m.ephemeral_for || m.ephemeral_for === S.viewer)
      .map((m) => Object.assign({ _channel: S.channel }, m));
    all.sort(byTs);
    const replies = new Map();
    const top = [];
    for (const m of all) {
      const isReply = m.thread_ts && m.thread_ts !== m.ts;
      if (isReply) {
        if (!replies.has(m.thread_ts)) replies.set(m.thread_ts, []);
        replies.get(m.thread_ts).push(m);
      }
      // Broadcast replies and ephemeral thread replies also show in the channel timeline,
      // so a refusal after a click in a thread is never hidden in a collapsed thread.
      if (!isReply || m.reply_broadcast || m.ephemeral_for) top.push(m);
    }
    const nodes = top.map((m) => {
      const isReply = m.thread_ts && m.thread_ts !== m.ts;
      return messageNode(m, isReply ? null : replies.get(m.ts), { inThread: false });
    });
    box.replaceChildren(...(nodes.length ? nodes
      : [h("p", { class: "empty", html: "No messages yet. Try <code>/pps upgrade cluster-east</code> below." })]));
    box.dataset.count = String(all.length);
    $("#conn").dataset.version = String(S.version);
    if (atBottom) box.scrollTop = box.scrollHeight;
    focusMessage();
  }

  // ---- wiring -------------------------------------------------------------------------

  function updateUrl() {
    const q = new URLSearchParams(location.search);
    q.set("user", S.viewer);
    q.set("channel", S.channel);
    q.set("tab", S.tab);
    q.delete("ts");
    history.replaceState(null, "", "?" + q);
  }

  function switchTab(tab) {
    S.tab = tab;
    updateUrl();
    render();
    if (tab === "home") openHome();
  }
  for (const t of document.querySelectorAll(".tab")) {
    t.addEventListener("click", () => switchTab(t.dataset.tab));
  }

  $("#user-select").addEventListener("change", (ev) => {
    S.viewer = ev.target.value;
    S.home = null; // the Home tab is per user: the new viewer's arrives with the next state
    updateUrl();
    render(); // the previous viewer's ephemerals disappear at once (filtered by viewer)
    restartPoll();
    if (S.tab === "home") openHome();
  });
  $("#channel-select").addEventListener("change", (ev) => {
    S.channel = ev.target.value;
    S.tab = "channel";
    updateUrl();
    render();
  });
  $("#command-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = $("#command-input");
    const value = input.value;
    input.value = "/pps ";
    sendCommand(value);
  });
  for (const chip of document.querySelectorAll(".chip")) {
    chip.addEventListener("click", () => {
      const input = $("#command-input");
      input.value = chip.dataset.command;
      input.focus();
    });
  }

  render();
  PPS.state = S;
  pollLoop();
  if (S.tab === "home") openHome();
})(window.PPS);
