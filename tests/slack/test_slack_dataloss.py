"""When Redis loses its data the bot says so in the channels, once per loss, naming the
jobs in flight and the clusters whose user logins may still be disabled."""

from __future__ import annotations

from typing import Any

REQ = "U_REQUESTER"


async def test_a_wipe_is_announced_once_in_the_jobs_channels(stack: Any) -> None:
    st = await stack(PPS_LEASE_SECONDS=0.3)
    jid = await st.start_job("upgrade cluster-east")
    await st.redis.hset(st.keys.job(jid), mapping={"logins_disabled": "1", "step": "install"})
    alert = st.runtime.alert
    assert alert is not None

    async def seen() -> bool:  # the bot's guard has looked since the job was created
        return any(j.job_id == jid for j in alert.guard._last)

    await st.wait_for(seen, what="the guard to see the job")
    async for key in st.redis.scan_iter(match=f"{st.keys.prefix}*", count=500):
        await st.redis.delete(key)

    def alerts() -> list[Any]:
        return [c for c in st.store.calls_of("chat.postMessage")
                if "Redis lost its data" in c.args.get("text", "")]

    async def posted() -> list[Any]:  # both channels: the posts go out one after the other
        found = alerts()
        return found if len(found) >= 2 else []

    calls = await st.wait_for(posted, what="the data-loss alert")
    text = calls[0].args["text"]
    assert jid in text and "cluster-east" in text and "USER LOGINS ARE DISABLED" in text
    # PPS_CHANNEL and the cluster's own channel, each once; no second post on later looks.
    await alert.check_once()
    assert sorted(c.args["channel"] for c in alerts()) == ["C_EAST", "C_PPS"]
