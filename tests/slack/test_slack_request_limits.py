"""Request size limits on the bot's web server (real HTTP under uvicorn): a body over
1 MiB, declared or streamed, is refused with 413 before Bolt reads it, and `/healthz`
stays quick while such requests arrive."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlparse

import pytest

from bot.request_limits import MAX_BODY_BYTES
from sim.slack.signing import slash_command_body

StackFactory = Any
CHUNK = 64 * 1024


async def _open(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    u = urlparse(url)
    return await asyncio.open_connection(u.hostname, u.port)


def _head(length: int | None) -> bytes:
    framing = "Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}"
    return (f"POST /slack/events HTTP/1.1\r\nHost: bot\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\n{framing}\r\n\r\n").encode()


async def _status(reader: asyncio.StreamReader, seconds: float = 3.0) -> int:
    line = await asyncio.wait_for(reader.readline(), seconds)
    assert line.startswith(b"HTTP/1.1 "), line
    return int(line.split()[1])


async def _send(writer: asyncio.StreamWriter, data: bytes) -> bool:
    """Write and drain; False once the server has closed the connection."""
    try:
        writer.write(data)
        await writer.drain()
    except (ConnectionError, OSError):
        return False
    return True


async def test_slack_declared_oversized_body_is_413_without_reading_it(
    stack: StackFactory,
) -> None:
    st = await stack()
    reader, writer = await _open(st.bot_url)
    started = time.monotonic()
    await _send(writer, _head(100 << 20) + b"a" * CHUNK)  # 64 KiB of the 100 MiB declared
    assert await _status(reader) == 413
    assert time.monotonic() - started < 1.0
    assert await asyncio.wait_for(reader.read(), 3)  # the body, then the connection closes
    writer.close()
    assert await st.job_ids() == []


async def test_slack_streamed_body_is_cut_at_the_limit(stack: StackFactory) -> None:
    st = await stack()
    reader, writer = await _open(st.bot_url)
    await _send(writer, _head(None))
    sent = 0
    chunk = f"{CHUNK:x}\r\n".encode() + b"a" * CHUNK + b"\r\n"
    # Never the terminating chunk: without a limit the server would wait for it forever.
    while sent <= MAX_BODY_BYTES + CHUNK and await _send(writer, chunk):
        sent += CHUNK
    assert await _status(reader) == 413
    writer.close()


async def test_slack_signed_requests_up_to_the_limit_still_work(stack: StackFactory) -> None:
    st = await stack()
    # A signed command whose body is just under the limit: refused by the grammar (too
    # long), which proves Bolt read and verified it.
    base = len(slash_command_body(user_id="U_REQUESTER", channel_id="C_CMD", text="",
                                  response_url=f"{st.standin_url}/_standin/response/none",
                                  trigger_id="1.1"))
    resp = await st.command("a" * (MAX_BODY_BYTES - base), trigger_id="1.1")
    assert resp.status_code == 200, resp.text
    assert "too long" in resp.text
    resp = await st.command("a" * (MAX_BODY_BYTES - base + 1), trigger_id="1.1")
    assert resp.status_code == 413  # signed or not


async def test_slack_slow_body_is_408(stack: StackFactory, monkeypatch: pytest.MonkeyPatch
                                      ) -> None:
    monkeypatch.setattr("bot.request_limits.BODY_READ_SECONDS", 0.3)
    st = await stack()
    reader, writer = await _open(st.bot_url)
    await _send(writer, _head(1000) + b"a" * 10)
    assert await _status(reader) == 408
    writer.close()


@pytest.mark.slow
async def test_slack_healthz_stays_quick_while_oversized_requests_arrive(
    stack: StackFactory,
) -> None:
    st = await stack()
    size = 10 << 20
    body = b"a" * CHUNK

    async def flood() -> int | str:
        reader, writer = await _open(st.bot_url)
        answer = asyncio.create_task(_status(reader, 60))
        sent = 0
        ok = await _send(writer, _head(size))
        while ok and sent < size and not answer.done():
            ok = await _send(writer, body)
            sent += CHUNK
        try:
            status: int | str = await answer
        except ConnectionError:  # refused, then reset while we were still sending
            status = "reset"
        writer.close()
        return status

    floods = [asyncio.create_task(flood()) for _ in range(20)]
    latencies = []
    while not all(f.done() for f in floods) or not latencies:
        t0 = time.monotonic()
        r = await st.http.get(st.bot_url + "/healthz")
        latencies.append(time.monotonic() - t0)
        assert r.status_code == 200
        await asyncio.sleep(0.02)
    assert {f.result() for f in floods} <= {413, "reset"}, [f.result() for f in floods]
    assert max(latencies) < 0.5, latencies
