"""Transport policy for the PPS client: retries, timeouts, answer sizes, TLS, secrets,
failure reasons.

Plain values and functions, tested alone; `jobs/appliance/transport.py` applies them.
"""

from __future__ import annotations

import functools
import os
import ssl
from dataclasses import dataclass

import httpx
import structlog

from jobs.config.inventory import Cluster
from jobs.config.log import get_logger


def log() -> structlog.stdlib.BoundLogger:
    """The client's logger, looked up per event so test log capture always sees it."""
    return get_logger("jobs.pps")


_tls_warned: set[str] = set()  # warn once per cluster and process, not per job


@dataclass(frozen=True)
class RetryPolicy:
    """Jittered exponential backoff for idempotent calls: `attempts` tries in all."""

    attempts: int = 3
    base: float = 0.5
    cap: float = 4.0

    def delay(self, retry: int, rnd: float) -> float:
        """Wait before retry number `retry` (0-based): half to all of base·2^retry, capped."""
        return min(self.cap, self.base * 2.0**retry) * (0.5 + 0.5 * rnd)


@dataclass(frozen=True)
class Timeouts:
    """Seconds. httpx's `connect` and `read` bound one connection attempt and one read (a
    node that sends a byte now and then never trips `read`); `total` bounds a whole call:
    login, retries and every byte of the answer; `transfer` bounds a whole package upload
    or configuration export, and is also the read timeout while one runs."""

    connect: float = 5.0
    read: float = 20.0
    total: float = 30.0
    transfer: float = 900.0

    def default(self) -> httpx.Timeout:
        return httpx.Timeout(self.read, connect=self.connect)

    def for_transfer(self) -> httpx.Timeout:
        return httpx.Timeout(self.transfer, connect=self.connect)


MiB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Bytes: the largest answer read. `json` for the JSON answers (an active-users page of
    200 sessions is about 100 kB), `export` for a configuration export (base64 text, the
    biggest answer of all), `error` for the body of an error answer (cut there, since only
    its first words are shown)."""

    json: int = 8 * MiB
    export: int = 64 * MiB
    error: int = 64 * 1024


def fmt_bytes(n: int) -> str:
    """`8388608` -> `8 MiB`, `65536` -> `64 KiB`."""
    for unit, size in (("MiB", MiB), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} bytes"


class Secret:
    """A string that never shows itself in repr/str."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def tls_verify(cluster: Cluster) -> ssl.SSLContext:
    """The TLS context httpx gets for the cluster: the system CAs, none (warned once), or a
    CA bundle. Contexts are shared per process: building one loads the CA store, which a
    profile of the worker showed as 20 ms of CPU and about 0.8 MB per client (10% of a
    worker's busy time, most of its memory with many clusters). A bundle's context is
    rebuilt when the file changes."""
    value = cluster.tls_verify
    if value is False:
        if cluster.name not in _tls_warned:
            _tls_warned.add(cluster.name)
            log().warning("pps.tls_verify_disabled", cluster=cluster.name)
        return _context(None, verify=False)
    if isinstance(value, str):
        try:
            st = os.stat(value)
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = (0, 0)  # ssl reports the missing file when the context is built
        return _context(value, stamp=stamp)
    return _context(None)


@functools.lru_cache(maxsize=32)
def _context(cafile: str | None, *, verify: bool = True,
             stamp: tuple[int, int] = (0, 0)) -> ssl.SSLContext:
    if cafile is not None:
        return ssl.create_default_context(cafile=cafile)
    return httpx.create_ssl_context(verify=verify)


def describe_transport_error(exc: httpx.TransportError, timeouts: Timeouts) -> str:
    """A short, secret-free reason for a transport failure."""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connect timed out after {timeouts.connect:g} s"
    if isinstance(exc, httpx.ReadTimeout):
        return "no answer in time (read timeout)"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        cause = _os_error(exc)
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "connection reset"
        if isinstance(cause, ssl.SSLError) or "certificate" in str(exc).lower():
            return "TLS handshake failed (certificate not trusted?)"
        return "cannot connect"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return "connection reset or closed by the node"
    return f"transport error ({type(exc).__name__})"


def _os_error(exc: BaseException) -> OSError | None:
    """The innermost OSError under an httpx/httpcore exception chain, if any."""
    seen: set[int] = set()
    found: OSError | None = None
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError):
            found = cur
        cur = cur.__cause__ or cur.__context__
    return found
