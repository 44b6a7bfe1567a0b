// Block Kit -> DOM: header, section (text, fields, accessory), context, divider, actions,
// image; anything else is shown as a labelled placeholder so nothing is silently dropped.
"use strict";
window.PPS = window.PPS || {};

(function (PPS) {
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "html") el.innerHTML = v;
      else if (k === "text") el.textContent = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  // A text object (plain_text or mrkdwn) as an element.
  function textObject(obj, ctx, cls) {
    if (!obj) return null;
    if (obj.type === "mrkdwn") {
      return h("div", { class: "mk " + (cls || ""), html: PPS.mrkdwn(obj.text, ctx.names) });
    }
    return h("div", { class: "pt " + (cls || ""), text: PPS.plain(obj.text) });
  }

  function button(el, ctx) {
    const style = el.style ? " bk-" + el.style : "";
    const b = h("button", {
      type: "button",
      class: "bk-button" + style,
      "data-action-id": el.action_id || "",
      "data-value": el.value || "",
      "data-message-ts": ctx.message.ts,
      "data-has-confirm": el.confirm ? "true" : "false",
      text: PPS.plain(el.text && el.text.text),
    });
    b.addEventListener("click", () => {
      if (el.url) window.open(el.url, "_blank", "noopener");
      if (el.action_id) ctx.onAction(el, ctx.message, b);
    });
    return b;
  }

  function element(el, ctx) {
    if (!el) return null;
    if (el.type === "button") return button(el, ctx);
    if (el.type === "image") {
      return h("img", { class: "bk-image-el", src: el.image_url, alt: el.alt_text || "" });
    }
    if (el.type === "mrkdwn" || el.type === "plain_text") return textObject(el, ctx, "ctx-text");
    return h("span", { class: "bk-unsupported", text: `[${el.type}]` });
  }

  const RENDER = {
    header(b, ctx) {
      return h("div", { class: "bk-header" }, textObject(b.text, ctx));
    },
    section(b, ctx) {
      const body = h("div", { class: "bk-section-body" }, textObject(b.text, ctx, "bk-text"));
      if (Array.isArray(b.fields) && b.fields.length) {
        body.append(h("div", { class: "bk-fields" }, b.fields.map((f) => textObject(f, ctx, "bk-field"))));
      }
      const acc = b.accessory ? h("div", { class: "bk-accessory" }, element(b.accessory, ctx)) : null;
      return h("div", { class: "bk-section" }, body, acc);
    },
    context(b, ctx) {
      return h("div", { class: "bk-context" }, (b.elements || []).map((e) => element(e, ctx)));
    },
    divider() {
      return h("hr", { class: "bk-divider" });
    },
    actions(b, ctx) {
      return h("div", { class: "bk-actions" }, (b.elements || []).map((e) => element(e, ctx)));
    },
    image(b) {
      return h("img", { class: "bk-image", src: b.image_url, alt: b.alt_text || "" });
    },
  };

  // Render a message's blocks (or its text when it has none) into a container element.
  function renderBlocks(message, ctx) {
    const wrap = h("div", { class: "blocks" });
    const blocks = Array.isArray(message.blocks) ? message.blocks : [];
    if (!blocks.length) {
      wrap.append(h("div", { class: "mk bk-text", html: PPS.mrkdwn(message.text, ctx.names) }));
      return wrap;
    }
    for (const b of blocks) {
      const fn = RENDER[b.type];
      const node = fn
        ? fn(b, ctx)
        : h("div", { class: "bk-unsupported", text: `[${b.type} block]` });
      node.setAttribute("data-block-type", b.type || "");
      if (b.block_id) node.setAttribute("data-block-id", b.block_id);
      wrap.append(node);
    }
    return wrap;
  }

  PPS.h = h;
  PPS.renderBlocks = renderBlocks;
  PPS.textObject = textObject;
})(window.PPS);
