"""Fixtures for the step tests: `make_harness(mode, ...)` builds a job on a fake cluster."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fakes.harness import Harness, new_harness


@pytest.fixture
def make_harness(tmp_path: Path) -> Callable[..., Harness]:
    """`make_harness(mode, vip=..., manual=..., fake_kw=..., settings_kw=..., job_kw=...)`."""
    return functools.partial(new_harness, tmp_path)
