"""The rules' tests run with no Redis and no network: any attempt to connect fails the test."""

from __future__ import annotations

import socket
from typing import Any

import pytest


def _refuse(*_args: Any, **_kwargs: Any) -> Any:
    raise AssertionError("tests/rules must not open a connection (no Redis, no sockets)")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
