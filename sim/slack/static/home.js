// The app's Home tab on the page: tab switching, the `app_home_opened` event sent when the
// tab is opened, and the published view rendered with the Block Kit renderer.
// Hooks for tests: #tab-channel, #tab-home, #home[data-publishes][data-published-at].
"use strict";
window.PPS = window.PPS || {};

(function (PPS) {
  const $ = (sel) => document.querySelector(sel);

  // Show the tab `tab` ("channel" or "home") and hide the other.
  function showTab(tab) {
    for (const t of document.querySelectorAll(".tab")) {
      t.setAttribute("aria-selected", t.dataset.tab === tab ? "true" : "false");
    }
    document.body.dataset.tab = tab;
    $("#messages").hidden = tab !== "channel";
    $("#home").hidden = tab !== "home";
  }

  // Render `home` ({view, published_at, publishes} or null) into #home.
  function renderHome(home, ctx) {
    const box = $("#home");
    box.dataset.publishes = String(home ? home.publishes : 0);
    box.dataset.publishedAt = home ? String(home.published_at) : "";
    if (!home || !home.view) {
      box.replaceChildren(PPS.h("p", { class: "empty", text: "Opening the app's Home tab…" }));
      return;
    }
    const when = new Date(home.published_at * 1000).toLocaleTimeString([], { hour12: false });
    const msg = { ts: "home", blocks: home.view.blocks || [], text: "" };
    box.replaceChildren(
      PPS.h("div", { class: "home-meta",
        text: `Home tab of pps-bot · published ${when} · ${home.publishes} publish(es)` }),
      PPS.renderBlocks(msg, Object.assign({ message: msg }, ctx)));
  }

  // Opening the Home tab is what makes Slack send the app `app_home_opened`; resolves to
  // an error text, or null when the bot took it.
  async function openHome(viewer) {
    try {
      const r = await fetch("/_standin/home_opened", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ user_id: viewer }),
      });
      const data = await r.json().catch(() => null);
      const st = data && data.status !== undefined ? data.status : r.status;
      return Number(st) >= 400 ? `Home tab: the bot answered ${st}` : null;
    } catch (e) {
      return "Home tab: " + e;
    }
  }

  PPS.home = { showTab, render: renderHome, open: openHome };
})(window.PPS);
