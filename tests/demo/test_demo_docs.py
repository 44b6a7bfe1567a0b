"""The README and docs/ cover what they promise: every setting, every inventory field,
the two commands, the screenshot, the appliance API page."""

from __future__ import annotations

import re

from jobs.config.settings import Settings
from tests.fakes import ROOT

README = (ROOT / "README.md").read_text()
INVENTORY_FIELDS = (
    "mode", "vip", "nodes[].name", "nodes[].url", "username_env", "password_env", "realm",
    "tls_verify", "channel", "approvers", "window", "manual", "firmware[].version",
    "firmware[].file", "firmware[].sha256",
)


def table_names(text: str) -> set[str]:
    """First-column names of markdown table rows, split on ', '."""
    names: set[str] = set()
    for cell in re.findall(r"^\| ([^|]+?) \|", text, flags=re.M):
        names.update(re.findall(r"`([^`]+)`", cell))
    return names


def test_two_commands_come_first() -> None:
    sections = re.findall(r"^## (.+)$", README, flags=re.M)
    assert sections[0] == "The two commands"
    block = README.split("## The two commands", 1)[1].split("\n## ", 1)[0]
    assert "make demo" in block and "make test" in block


def test_every_setting_is_documented() -> None:
    missing = set(Settings.model_fields) - table_names(README)
    assert not missing, f"README settings table lacks {sorted(missing)}"


def test_every_inventory_field_is_documented() -> None:
    missing = set(INVENTORY_FIELDS) - table_names(README)
    assert not missing, f"README inventory table lacks {sorted(missing)}"


def test_screenshot_is_committed_png() -> None:
    m = re.search(r"!\[[^\]]*\]\((docs/[^)]+\.png)\)", README)
    assert m, "README shows no screenshot under docs/"
    data = (ROOT / m.group(1)).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_appliance_api_page() -> None:
    assert "(docs/appliance-api.md)" in README
    page = (ROOT / "docs" / "appliance-api.md").read_text()
    for must in ("realm_auth", "active-users", "maintenance/upgrade", "binary-configuration",
                 "status/overview", "system-information", "404", "405", "501", "pps_confirm",
                 "manual: [logins, install]"):
        assert must in page, must


def test_operations_topics() -> None:
    ops = README.split("## Operations", 1)[1]
    for topic in ("Several workers", "Redis", "Sentinel", "/metrics", "Backups",
                  "held job", "Scheduled jobs", "appendfsync everysec", "noeviction"):
        assert topic in ops, topic


def test_slack_setup_section_stays_last_when_present() -> None:
    sections = re.findall(r"^## (.+)$", README, flags=re.M)
    if "Slack setup" in sections:
        assert sections[-1] == "Slack setup"
