"""The channel page's Starlette routes: the page, its assets, its defaults (escaped)."""

from __future__ import annotations

import re

import httpx
from starlette.applications import Starlette

from sim.slack.channel_page import STATIC_DIR, routes


def client(**kw: str) -> httpx.AsyncClient:
    """An HTTP client talking to the page's routes in-process (ASGI)."""
    app = Starlette(routes=routes(**kw))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://page")


async def test_index_serves_html_with_defaults() -> None:
    async with client(channel="C0TEST", user="U_APPROVER1", title="#ops") as c:
        r = await c.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-store"
    assert 'data-default-channel="C0TEST"' in r.text
    assert 'data-default-user="U_APPROVER1"' in r.text
    assert "<title>#ops · pps-chatops demo</title>" in r.text
    assert "{{" not in r.text


async def test_defaults_are_html_escaped() -> None:
    async with client(channel='C"><script>x</script>', title="<b>t</b>") as c:
        r = await c.get("/")
    assert "<script>x</script>" not in r.text
    assert 'data-default-channel="C&quot;&gt;&lt;script&gt;x&lt;/script&gt;"' in r.text
    assert "&lt;b&gt;t&lt;/b&gt;" in r.text


async def test_every_asset_the_page_references_is_served() -> None:
    async with client() as c:
        page = (await c.get("/")).text
        refs = re.findall(r'(?:src|href)="(/_page/[^"]+)"', page)
        wanted = {"/_page/app.js", "/_page/blocks.js", "/_page/mrkdwn.js", "/_page/style.css"}
        assert wanted <= set(refs)
        for ref in refs:
            r = await c.get(ref)
            assert r.status_code == 200, ref
            assert r.content == (STATIC_DIR / ref.removeprefix("/_page/")).read_bytes()
        js = (await c.get("/_page/app.js")).headers["content-type"].split(";")[0]
        assert js in ("text/javascript", "application/javascript")
        css = (await c.get("/_page/style.css")).headers["content-type"]
        assert css.startswith("text/css")


async def test_unknown_asset_and_traversal_are_404() -> None:
    async with client() as c:
        assert (await c.get("/_page/nope.js")).status_code == 404
        assert (await c.get("/_page/../channel_page.py")).status_code == 404
        assert (await c.get("/_page/%2e%2e/channel_page.py")).status_code == 404


async def test_only_get_on_index() -> None:
    async with client() as c:
        assert (await c.post("/")).status_code == 405


async def test_page_has_the_stable_hooks_browser_tests_use() -> None:
    async with client() as c:
        page = (await c.get("/")).text
    for hook in (
        'id="user-select"',
        'id="channel-select"',
        'id="messages"',
        'id="command-form"',
        'id="command-input"',
        'id="command-result"',
        'id="confirm-modal"',
        'id="confirm-ok"',
        'id="confirm-cancel"',
        'id="conn"',
    ):
        assert hook in page
