"""What tests need to start child processes: the repository root, the Redis to use, the
`ppsbot` command, and an environment that makes a child run this checkout's code."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
# The console script installed beside the interpreter running the tests (not resolved: a
# venv's python is a symlink, its scripts are not beside the target).
PPSBOT = Path(sys.executable).with_name("ppsbot")
PYTHON = Path(sys.executable)


def child_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with this checkout first on PYTHONPATH, so a child process imports the code
    under test even when the venv's editable install points at another checkout."""
    paths = [str(ROOT), *filter(None, [env.get("PYTHONPATH", "")])]
    return {**env, "PYTHONPATH": os.pathsep.join(paths)}
