"""Acceptance fixtures: the product started as real processes against a fake Slack written
from SLACK.md (helpers in acceptance_stack.py and acceptance_fake_slack.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.acceptance.acceptance_checks import order_problems, slack_contract_problems
from tests.acceptance.acceptance_launch import launch, teardown
from tests.acceptance.acceptance_stack import FAST, Stack


def standalone(name: str) -> dict[str, object]:
    """A simulated standalone appliance `<name>-1` on 9.1R17 with fast reboots."""
    return {"mode": "standalone", "nodes": [f"{name}-1"], "knobs": dict(FAST)}


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Bot + two workers, two-person rule on; approvers `U0APPR1` and the group `S0APPRS`
    (members `U0APPR2` and the requester `U0REQ`); `east` posts to its own channel; `lab16`
    has its logins switched by hand (operator-assisted); `lab17` has a daily one-hour
    maintenance window in Asia/Tokyo starting about six hours from now. Each test drives
    clusters of its own (`lab18`, `lab19`: the card-order test)."""
    clusters: dict[str, object] = {
        "east": {"mode": "active-passive", "nodes": ["east-a", "east-b"], "sessions": 3,
                 "knobs": dict(FAST)},
        **{f"lab{i}": standalone(f"lab{i}") for i in range(1, 20)},
    }
    start = datetime.now(ZoneInfo("Asia/Tokyo")) + timedelta(hours=6)
    window = f"{start:%H}:00-{(start + timedelta(hours=1)):%H}:00 Asia/Tokyo"
    st = launch(tmp_path_factory.mktemp("acc"), clusters, channels={"east": "C0EAST"},
                workers=2, users_info=True, extra_env={"PPS_TWO_PERSON_RULE": "true"},
                inventory_extra={"lab16": {"manual": ["logins"]}, "lab17": {"window": window}})
    try:
        yield st
    finally:
        teardown(st)


@pytest.fixture(scope="session")
def lenient_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Bot + one worker, two-person rule off, no settle wait, a fake Slack without
    `users.info` that reuses trigger ids and action_ts, and only the settings a new user
    would set."""
    st = launch(tmp_path_factory.mktemp("acc-lenient"),
                {"solo": standalone("solo"), "solo2": standalone("solo2")},
                channels={}, workers=1, users_info=False,
                extra_env={"PPS_TWO_PERSON_RULE": "false", "PPS_SETTLE_SECONDS": "0"},
                minimal=True)
    try:
        yield st
    finally:
        teardown(st)


@pytest.fixture(autouse=True)
def _slack_contract(request: pytest.FixtureRequest) -> Iterator[None]:
    """After every test: whatever the bot sent the fake Slack kept the contract, and on
    `stack` no card ran ahead of its channel (checked after each test, so the whole
    session is covered whatever order the tests run in)."""
    yield
    for name in ("stack", "lenient_stack"):
        if name in request.fixturenames:
            st = request.getfixturevalue(name)
            problems = slack_contract_problems(st)
            if name == "stack":
                problems += order_problems(st)
            assert not problems, "\n".join(problems)
