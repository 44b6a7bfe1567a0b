"""The rules and the steps are pure: importing them loads no redis and none of the store."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import jobs.rules, jobs.rules.transitions, jobs.rules.decisions, jobs.steps
pure = ("jobs.store", "jobs.worker", "redis.")
print(" ".join(sorted(m for m in sys.modules if m == "redis" or m.startswith(pure))))
"""


def test_rules_and_steps_import_no_redis_and_no_store() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == []
