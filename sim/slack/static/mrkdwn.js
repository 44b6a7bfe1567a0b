// Slack mrkdwn -> safe HTML. Input is Slack-escaped text: a raw "<" or ">" only opens or
// closes a control sequence (<@U1>, <https://x|label>, <!here>), user text arrives as
// &lt; &gt; &amp;. Everything that reaches innerHTML goes through htmlEscape.
"use strict";
window.PPS = window.PPS || {};

(function (PPS) {
  const EMOJI = {
    white_check_mark: "\u2705", heavy_check_mark: "\u2714\uFE0F", x: "\u274C",
    warning: "\u26A0\uFE0F", hourglass: "\u231B", hourglass_flowing_sand: "\u23F3",
    lock: "\uD83D\uDD12", unlock: "\uD83D\uDD13", rocket: "\uD83D\uDE80",
    stopwatch: "\u23F1\uFE0F", alarm_clock: "\u23F0", rotating_light: "\uD83D\uDEA8",
    no_entry: "\u26D4", no_entry_sign: "\uD83D\uDEAB", large_green_circle: "\uD83D\uDFE2",
    red_circle: "\uD83D\uDD34", large_yellow_circle: "\uD83D\uDFE1",
    large_blue_circle: "\uD83D\uDD35", white_circle: "\u26AA", black_circle: "\u26AB",
    arrows_counterclockwise: "\uD83D\uDD04", repeat: "\uD83D\uDD01", zzz: "\uD83D\uDCA4",
    floppy_disk: "\uD83D\uDCBE", package: "\uD83D\uDCE6", calendar: "\uD83D\uDCC5",
    bell: "\uD83D\uDD14", stop_sign: "\uD83D\uDED1", tada: "\uD83C\uDF89",
    information_source: "\u2139\uFE0F", thumbsup: "\uD83D\uDC4D", "+1": "\uD83D\uDC4D",
    thumbsdown: "\uD83D\uDC4E", hammer_and_wrench: "\uD83D\uDEE0\uFE0F",
    mag: "\uD83D\uDD0D", clipboard: "\uD83D\uDCCB", construction: "\uD83D\uDEA7",
    heavy_minus_sign: "\u2796", arrow_right: "\u27A1\uFE0F", pause_button: "\u23F8\uFE0F",
    raised_hand: "\u270B", eyes: "\uD83D\uDC40", fire: "\uD83D\uDD25",
    black_square_button: "\uD83D\uDD32", white_square_button: "\uD83D\uDD33",
    radio_button: "\uD83D\uDD18", grey_question: "\u2754", question: "\u2753",
  };

  function htmlEscape(s) {
    return String(s)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }

  // Slack's three entities back to characters (&amp; last, so "&amp;lt;" stays "&lt;").
  function slackDecode(s) {
    return String(s).replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
  }

  function emojify(s) {
    return s.replace(/:([a-z0-9_+-]+):/g, (m, name) => EMOJI[name] || m);
  }

  // Plain text as shown by Slack (entities decoded, emoji shortcodes replaced); for textContent.
  function plain(s) {
    return emojify(slackDecode(s || ""));
  }

  function control(inner, names) {
    const bar = inner.indexOf("|");
    const target = bar < 0 ? inner : inner.slice(0, bar);
    const label = bar < 0 ? "" : inner.slice(bar + 1);
    const text = (t) => htmlEscape(slackDecode(t));
    if (target.startsWith("@")) {
      const id = target.slice(1);
      const name = label || names(id);
      return `<span class="mk-mention" data-user-id="${htmlEscape(id)}">@${text(name)}</span>`;
    }
    if (target.startsWith("#")) {
      return `<span class="mk-channel">#${text(label || target.slice(1))}</span>`;
    }
    if (target.startsWith("!subteam^")) {
      return `<span class="mk-mention">@${text(label || target.slice(9))}</span>`;
    }
    if (target.startsWith("!")) {
      const word = target.slice(1).split("^")[0];
      return `<span class="mk-mention mk-broadcast">@${text(label || word)}</span>`;
    }
    if (/^(https?:\/\/|mailto:)/i.test(target)) {
      const href = htmlEscape(slackDecode(target));
      return `<a href="${href}" target="_blank" rel="noopener noreferrer">${text(label || target)}</a>`;
    }
    return text("<" + inner + ">");
  }

  // mrkdwn -> HTML. `names(id)` maps a user id to a display name.
  function mrkdwn(src, names) {
    const lookup = names || ((id) => id);
    const slots = [];
    const put = (h) => "\u0000" + (slots.push(h) - 1) + "\u0000";
    let s = String(src || "").replace(/\u0000/g, "");
    s = s.replace(/```([\s\S]*?)```/g, (_, c) =>
      put(`<pre class="mk-pre">${htmlEscape(slackDecode(c.replace(/^\n/, "")))}</pre>`));
    s = s.replace(/`([^`\n]+)`/g, (_, c) => put(`<code class="mk-code">${htmlEscape(slackDecode(c))}</code>`));
    s = s.replace(/<([^<>\n]+)>/g, (_, c) => put(control(c, lookup)));
    s = htmlEscape(slackDecode(s));
    s = emojify(s);
    s = s.replace(/(^|[^\w*])\*(?!\s)([^*\n]+?)\*(?!\w)/g, "$1<b>$2</b>");
    s = s.replace(/(^|[^\w])_(?!\s)([^_\n]+?)_(?!\w)/g, "$1<i>$2</i>");
    s = s.replace(/(^|[^\w~])~(?!\s)([^~\n]+?)~(?!\w)/g, "$1<s>$2</s>");
    s = s.replace(/^&gt; ?(.*)$/gm, '<span class="mk-quote">$1</span>');
    s = s.replace(/\n/g, "<br>");
    return s.replace(/\u0000(\d+)\u0000/g, (_, i) => slots[Number(i)]);
  }

  PPS.htmlEscape = htmlEscape;
  PPS.slackDecode = slackDecode;
  PPS.plain = plain;
  PPS.mrkdwn = mrkdwn;
})(window.PPS);
