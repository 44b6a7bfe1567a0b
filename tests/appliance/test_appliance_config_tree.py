"""The configuration-tree walk: links, bounds (bytes, objects, deadline), what is left out;
then the client against the simulator (real HTTP): the tree, its faults, replication."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from jobs.appliance.config_tree import ROOT_HREF, TreeLimits, list_names, walk_tree
from jobs.appliance.protocol import Rejected, Unreachable
from tests.appliance.appliance_support import client_of
from tests.fakes.clock import FakeClock

B = ROOT_HREF
PAGES: dict[str, Any] = {
    B: {"users": {"href": f"{B}/users"}, "system": {"href": f"{B}/system"},
        "elsewhere": {"href": "https://evil.example/api/v1/configuration/x"},
        "up": {"href": f"{B}/../system/maintenance"}},
    f"{B}/users": {"realm": [{"name": "Users", "href": f"{B}/users/realm/Users"},
                             {"name": "Guests", "href": f"{B}/users/realm/Guests"}]},
    f"{B}/users/realm/Users": {"primary": "LDAP", "again": {"href": f"{B}/users"}},
    f"{B}/users/realm/Guests": {"primary": "local"},
    f"{B}/system": {"timeout": 10},
}


class Pages:
    """A fake `fetch`: answers from PAGES, records the order, may fail or take time."""

    def __init__(self, clock: FakeClock, fail: dict[str, Exception] | None = None,
                 takes: float = 0.0) -> None:
        self.clock, self.fail, self.takes = clock, fail or {}, takes
        self.asked: list[str] = []

    async def __call__(self, href: str) -> tuple[Any, int]:
        self.asked.append(href)
        self.clock.advance(self.takes)
        if href in self.fail:
            raise self.fail[href]
        page = json.loads(json.dumps(PAGES[href]))
        return page, len(json.dumps(page))


def size(*hrefs: str) -> int:
    return sum(len(json.dumps(PAGES[h])) for h in hrefs)


async def test_walk_follows_links_breadth_first_and_puts_answers_in_place() -> None:
    clock = FakeClock()
    pages = Pages(clock)
    got = await walk_tree(pages, TreeLimits(), clock, "n1")
    assert pages.asked == [B, f"{B}/users", f"{B}/system", f"{B}/users/realm/Users",
                           f"{B}/users/realm/Guests"]  # the second link to users: not again
    assert got.complete and got.objects == 5 and got.size == size(*pages.asked)
    assert got.tree["users"]["realm"][0] == {
        "name": "Users", "primary": "LDAP", "again": {"href": f"{B}/users"}}
    assert got.tree["system"] == {"timeout": 10}
    # Links out of the configuration API are data, never followed.
    assert got.tree["elsewhere"] == PAGES[B]["elsewhere"] and got.tree["up"] == PAGES[B]["up"]


async def test_a_refused_subtree_is_listed_and_the_rest_read() -> None:
    clock = FakeClock()
    fail: dict[str, Exception] = {f"{B}/users/realm/Guests": Rejected("n1", 403, "forbidden")}
    got = await walk_tree(Pages(clock, fail), TreeLimits(), clock, "n1")
    assert [(m.path, m.reason) for m in got.not_read] == [
        ("/users/realm/Guests", "HTTP 403: forbidden")]
    assert got.stopped is None and got.objects == 4 and not got.complete


async def test_a_node_that_stops_answering_ends_the_walk() -> None:
    clock = FakeClock()
    pages = Pages(clock, {f"{B}/users": Unreachable("n1", "connection refused")})
    got = await walk_tree(pages, TreeLimits(), clock, "n1")
    assert pages.asked == [B, f"{B}/users"]
    assert [m.path for m in got.not_read] == ["/users", "/system"]
    assert got.stopped == "n1 stopped answering (connection refused)"


async def test_object_cap() -> None:
    clock = FakeClock()
    got = await walk_tree(Pages(clock), TreeLimits(max_objects=3), clock, "n1")
    assert got.objects == 3 and got.stopped == "object cap of 3 reached"
    assert [m.path for m in got.not_read] == ["/users/realm/Users", "/users/realm/Guests"]


async def test_byte_cap_never_keeps_an_answer_over_it() -> None:
    clock = FakeClock()
    cap = size(B, f"{B}/users") + 2  # /system does not fit
    got = await walk_tree(Pages(clock), TreeLimits(max_bytes=cap), clock, "n1")
    assert got.size == size(B, f"{B}/users") <= cap
    assert got.stopped == f"size cap of {cap} bytes reached"
    assert got.tree["system"] == {"href": f"{B}/system"}  # left as the link it was
    assert {m.path for m in got.not_read} == {"/system", "/users/realm/Users",
                                              "/users/realm/Guests"}


async def test_overall_deadline_on_the_injected_clock() -> None:
    clock = FakeClock()
    got = await walk_tree(Pages(clock, takes=4.0), TreeLimits(seconds=10.0), clock, "n1")
    assert got.objects == 3 and got.stopped == "deadline of 10 s reached"


async def test_a_hanging_answer_is_cut_at_the_deadline() -> None:
    clock = FakeClock()
    pages = Pages(clock)

    async def hangs(href: str) -> tuple[Any, int]:
        if href != B:
            await asyncio.Event().wait()
        return await pages(href)

    got = await walk_tree(hangs, TreeLimits(seconds=0.05), clock, "n1")
    assert got.objects == 1 and got.stopped == "deadline of 0.05 s reached"
    assert [m.path for m in got.not_read] == ["/users", "/system"]


async def test_an_unreadable_root_raises() -> None:
    clock = FakeClock()
    with pytest.raises(Rejected, match="HTTP 500"):
        await walk_tree(Pages(clock, {B: Rejected("n1", 500, "down")}), TreeLimits(), clock, "n1")

    async def not_a_map(href: str) -> tuple[Any, int]:
        return ["x"], 5

    with pytest.raises(Rejected, match="not a JSON object"):
        await walk_tree(not_a_map, TreeLimits(), clock, "n1")
    with pytest.raises(Rejected, match="root alone exceeds 10 bytes"):
        await walk_tree(Pages(clock), TreeLimits(max_bytes=10), clock, "n1")


def test_list_items_are_addressed_by_distinct_names_only() -> None:
    assert list_names([{"name": "a"}, {"name": "b"}]) == ["a", "b"]
    assert list_names([{"name": "a"}, {"name": "a"}]) is None
    assert list_names([{"name": "a"}, "b"]) is None
    assert list_names([]) is None


# -- against the simulator (real HTTP) ------------------------------------------------------


async def test_client_reads_the_simulated_tree_from_every_node(start_sim: Any) -> None:
    sim = await start_sim({"east": {"mode": "active-passive", "nodes": ["east-a", "east-b"]}})
    async with client_of(sim, "east") as client:
        a = await client.config_tree("east-a", TreeLimits())
        b = await client.config_tree("east-b", TreeLimits())
    assert a.complete and a.objects == 21
    assert a.tree == b.tree  # the cluster replicates its configuration
    realms = a.tree["administrators"]["admin-realms"]["realm"]
    assert realms[0]["name"] == "Admin Users" and "role-mapping-rules" in realms[0]  # %20
    assert {m["name"] for m in a.tree["system"]["cluster"]["members"]} == {"east-a", "east-b"}
    assert sim.cluster("east").log == []  # reads only: nothing in the write log


async def test_client_unreadable_tree_raises_rejected(start_sim: Any) -> None:
    sim = await start_sim({"lab": {"mode": "standalone", "nodes": ["lab-1"],
                                   "faults": {"config_unreadable": True}}})
    async with client_of(sim, "lab", attempts=2) as client:
        with pytest.raises(Rejected) as err:
            await client.config_tree("lab-1", TreeLimits())
    assert err.value.status == 500


async def test_client_huge_tree_stops_at_the_caps(start_sim: Any) -> None:
    sim = await start_sim({"lab": {"mode": "standalone", "nodes": ["lab-1"],
                                   "faults": {"config_huge_objects": 300}}})
    async with client_of(sim, "lab") as client:
        by_count = await client.config_tree("lab-1", TreeLimits(max_objects=40))
        by_size = await client.config_tree("lab-1", TreeLimits(max_bytes=64 * 1024))
    assert by_count.objects == 40 and by_count.stopped == "object cap of 40 reached"
    assert len(by_count.not_read) == 321 - 40
    assert by_size.size <= 64 * 1024 and by_size.stopped == "size cap of 65536 bytes reached"
    assert by_size.objects < 321 - 40
