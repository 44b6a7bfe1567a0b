"""The card's backup line after the real backup step: it says the backup was verified on
disk; a backup that does not read back shows as failed with the file named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.render.card import card
from jobs.procedures import procedure_for
from jobs.rules.model import Step
from jobs.steps.backup_files import backup_dir
from tests.fakes.harness import Harness, new_harness


def card_text(h: Harness) -> str:
    """Every section text of the job's card, one after the other."""
    blocks: list[dict[str, Any]] = card(h.job).blocks
    return "\n".join(str((b.get("text") or {}).get("text", "")) for b in blocks)


def backup_line(h: Harness) -> str:
    """The backup step's line on the card with its detail line below it."""
    lines = card_text(h).splitlines()
    title = procedure_for(h.job).title_of(Step.BACKUP)
    i = next(i for i, line in enumerate(lines) if title in line)
    return "\n".join(lines[i : i + 2])


async def prepared(tmp_path: Path) -> Harness:
    h = new_harness(tmp_path, "standalone")
    h.apply(await h.run(Step.PREFLIGHT))
    return h


async def test_the_card_says_the_backup_was_verified(tmp_path: Path) -> None:
    h = await prepared(tmp_path)
    h.apply(await h.run(Step.BACKUP))
    line = backup_line(h)
    assert line.startswith("✅ 2. ") and "_verified: system.cfg" in line, line


async def test_a_backup_that_does_not_read_back_fails_on_the_card(tmp_path: Path) -> None:
    h = await prepared(tmp_path)
    folder = backup_dir(h.settings.PPS_BACKUP_DIR, "c1", h.job.id)
    folder.mkdir(parents=True)
    (folder / "user.cfg").write_bytes(b"left by someone else")
    h.apply(await h.run(Step.BACKUP))
    assert backup_line(h).startswith("❌ 2. ")
    text = card_text(h)
    assert "verified" not in text
    assert "❌ *Error:* Backup:" in text and "user.cfg" in text
