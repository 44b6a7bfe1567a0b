"""HTTP session to one PPS cluster: authentication, retries, timeouts, TLS, error mapping.

`PpsSession.call` is the one place that talks HTTP. It authenticates per target (node
name or `VIP`) with `realm_auth` (falling back to the legacy `auth` on 404), sends every
call with the api key as Basic user and an empty password, re-authenticates once on 401,
retries idempotent calls with jittered backoff on connect errors and 5xx, never retries a
write blindly, and maps failures to the `jobs.appliance.protocol` errors. Every call has
an overall deadline (login, retries and the last byte of the answer included) and every
answer a size cap: answers are streamed, never buffered whole. Secrets (admin password,
api keys) never reach logs, exception messages or reprs.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import httpx

from jobs.appliance.parse import AnswerError, parse_api_key
from jobs.appliance.policy import (
    Limits,
    RetryPolicy,
    Secret,
    Timeouts,
    describe_transport_error,
    fmt_bytes,
    log,
    tls_verify,
)
from jobs.appliance.protocol import (
    VIP,
    ApplianceError,
    AuthFailed,
    Rejected,
    Unreachable,
    Unsupported,
)
from jobs.appliance.reply import Reply, TooLarge, send_capped
from jobs.config.clock import Clock, SystemClock
from jobs.config.inventory import Cluster

API = "/api/v1/"
UNSUPPORTED_STATUSES = frozenset({404, 405, 501})
_RETRYABLE_TRANSPORT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.WriteError,
)

FilesFactory = Callable[[contextlib.ExitStack], Mapping[str, Any]]


def _retryable(status: int) -> bool:
    """A 5xx worth another try of an idempotent call (501: the call is not implemented)."""
    return status >= 500 and status != 501


class PpsSession:
    """Authenticated HTTP access to the nodes (and VIP) of one cluster."""

    def __init__(
        self,
        cluster: Cluster,
        username: str,
        password: str,
        *,
        timeouts: Timeouts | None = None,
        limits: Limits | None = None,
        retry: RetryPolicy | None = None,
        clock: Clock | None = None,
        rng: Callable[[], float] = random.random,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.cluster = cluster
        self._username = username
        self._password = Secret(password)
        self.timeouts = timeouts or Timeouts()
        self.limits = limits or Limits()
        self.retry = retry or RetryPolicy()
        self.clock: Clock = clock or SystemClock()
        self._rng = rng
        self._keys: dict[str, Secret] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._http = httpx.AsyncClient(
            verify=tls_verify(cluster),
            timeout=self.timeouts.default(),
            transport=transport,
            follow_redirects=False,
            # Uncompressed answers: the size cap then counts what is really held.
            headers={"Accept-Encoding": "identity"},
        )

    def __repr__(self) -> str:
        return f"PpsSession(cluster={self.cluster.name!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    def base_url(self, target: str) -> str:
        """The URL of a node name or `VIP`; unknown names are a programming error."""
        if target == VIP:
            if not self.cluster.vip:
                raise ApplianceError(target, f"cluster {self.cluster.name} has no vip")
            return self.cluster.vip.rstrip("/")
        try:
            return self.cluster.node(target).url.rstrip("/")
        except KeyError:
            raise ApplianceError(
                target, f"no node {target!r} in cluster {self.cluster.name}"
            ) from None

    def forget_key(self, target: str) -> None:
        self._keys.pop(target, None)

    # -- authentication -------------------------------------------------------------

    async def api_key(self, target: str, *, fresh: bool = False) -> str:
        """The cached api key for `target`, logging in when there is none (or `fresh`)."""
        lock = self._locks.setdefault(target, asyncio.Lock())
        async with lock:
            cached = self._keys.get(target)
            if cached is not None and not fresh:
                return cached.get()
            key = await self._login(target)
            self._keys[target] = Secret(key)
            return key

    async def _login(self, target: str) -> str:
        if not self._username or not self._password.get():
            raise AuthFailed(
                target,
                f"admin credentials not set ({self.cluster.username_env}, "
                f"{self.cluster.password_env})",
            )
        basic = (self._username, self._password.get())
        # Logging in changes no configuration, so it is retried like a read.
        resp = await self._send_with_retry(
            target,
            "POST",
            "realm_auth",
            auth=basic,
            json_body={"realm": self.cluster.realm},
        )
        how = "realm_auth"
        if resp.status_code == 404:
            resp = await self._send_with_retry(target, "GET", "auth", auth=basic)
            how = "auth (legacy)"
        if resp.status_code in (401, 403):
            raise AuthFailed(target, f"admin credentials refused (realm {self.cluster.realm!r})")
        if resp.status_code == 404:
            raise Rejected(
                target, 404, "no REST login endpoint (realm_auth and auth both answer 404)"
            )
        if not 200 <= resp.status_code < 300:
            raise self._rejected(target, resp)
        try:
            key = parse_api_key(self._json(target, resp))
        except AnswerError as exc:
            raise Rejected(target, resp.status_code, str(exc)) from None
        log().info("pps.authenticated", cluster=self.cluster.name, node=target, via=how)
        return key

    # -- requests -------------------------------------------------------------------

    async def call(
        self,
        target: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json_body: Any = None,
        files: FilesFactory | None = None,
        idempotent: bool,
        assumed: bool = False,
        http_timeout: httpx.Timeout | None = None,
        deadline: float | None = None,
        max_bytes: int | None = None,
        fresh_key: bool = False,
    ) -> Reply:
        """Send an authenticated API call; return the 2xx answer or raise a mapped error.

        `idempotent` calls are retried on connect errors and 5xx; others are sent once
        (plus one resend after a 401, which the appliance refused before acting).
        `assumed` marks the [assumed] writes: 404/405/501 become `Unsupported`. The whole
        call ends within `deadline` seconds (default `timeouts.total`), else `Unreachable`;
        an answer over `max_bytes` (default `limits.json`) is `Rejected` unread.
        `fresh_key` logs in anew first (an upload must not outlive its key).
        """
        limit = self.timeouts.total if deadline is None else deadline
        reauthed = False
        async with self._deadline(limit, target, method, path):
            while True:
                key = await self.api_key(target, fresh=fresh_key and not reauthed)
                resp = await self._send_with_retry(
                    target,
                    method,
                    path,
                    auth=(key, ""),
                    params=params,
                    json_body=json_body,
                    files=files,
                    retry=idempotent,
                    http_timeout=http_timeout,
                    max_bytes=max_bytes,
                )
                if resp.status_code != 401:
                    break
                if reauthed:
                    raise AuthFailed(target, "api key refused right after a fresh login")
                log().info("pps.reauth", cluster=self.cluster.name, node=target, path=path)
                if self._keys.get(target) is not None and self._keys[target].get() == key:
                    self.forget_key(target)
                reauthed = True
        if 200 <= resp.status_code < 300:
            return resp
        if assumed and resp.status_code in UNSUPPORTED_STATUSES:
            raise Unsupported(
                target, f"{method} {path} answered HTTP {resp.status_code}: not supported"
            )
        raise self._rejected(target, resp)

    async def get_text(self, target: str, url_path: str, params: Mapping[str, str]) -> str:
        """Unauthenticated GET of a non-API path (the health check), retried like a read."""
        async with self._deadline(self.timeouts.total, target, "GET", url_path):
            resp = await self._send_with_retry(
                target, "GET", url_path, params=params, retry=True, api=False
            )
        if not 200 <= resp.status_code < 300:
            raise self._rejected(target, resp)
        return resp.text

    @contextlib.asynccontextmanager
    async def _deadline(
        self, limit: float, target: str, method: str, path: str
    ) -> AsyncIterator[None]:
        """End the work inside after `limit` seconds with `Unreachable` (a whole call)."""
        cm = asyncio.timeout(limit)
        try:
            async with cm:
                yield
        except TimeoutError:
            if not cm.expired():
                raise
            reason = f"no complete answer within {limit:g} s (call deadline)"
            raise self._unreachable(target, method, path, reason) from None

    def _unreachable(self, target: str, method: str, path: str, reason: str) -> Unreachable:
        """Log that `target` did not answer and return the error to raise."""
        log().info(
            "pps.unreachable",
            cluster=self.cluster.name,
            node=target,
            method=method,
            path=path,
            reason=reason,
        )
        return Unreachable(target, reason)

    async def _send_with_retry(
        self,
        target: str,
        method: str,
        path: str,
        *,
        auth: tuple[str, str] | None = None,
        params: Mapping[str, str | int] | None = None,
        json_body: Any = None,
        files: FilesFactory | None = None,
        retry: bool = True,
        http_timeout: httpx.Timeout | None = None,
        api: bool = True,
        max_bytes: int | None = None,
    ) -> Reply:
        url = self.base_url(target) + (API + path if api else path)
        attempt = 0
        while True:
            last = not retry or attempt + 1 >= self.retry.attempts
            # A 5xx that will be retried: its body is not worth reading.
            skip = (lambda _s: False) if last else _retryable
            try:
                with contextlib.ExitStack() as stack:
                    request = self._http.build_request(
                        method,
                        url,
                        params=params,
                        json=json_body,
                        files=files(stack) if files else None,
                        timeout=http_timeout or self._http.timeout,
                    )
                    resp = await send_capped(
                        self._http,
                        request,
                        auth=auth,
                        limits=self.limits,
                        max_bytes=max_bytes,
                        skip_body=skip,
                    )
            except httpx.TransportError as exc:
                reason = describe_transport_error(exc, self.timeouts)
                if last or not isinstance(exc, _RETRYABLE_TRANSPORT):
                    raise self._unreachable(target, method, path, reason) from None
                await self._backoff(target, method, path, attempt, reason)
                attempt += 1
                continue
            except TooLarge as exc:
                log().warning(
                    "pps.answer_too_large",
                    cluster=self.cluster.name,
                    node=target,
                    method=method,
                    path=path,
                    limit=exc.limit,
                )
                raise Rejected(
                    target, exc.status, f"answer larger than {fmt_bytes(exc.limit)}; not read"
                ) from None
            if _retryable(resp.status_code) and not last:
                await self._backoff(target, method, path, attempt, f"HTTP {resp.status_code}")
                attempt += 1
                continue
            log().debug(
                "pps.response",
                cluster=self.cluster.name,
                node=target,
                method=method,
                path=path,
                status=resp.status_code,
                bytes=len(resp.body),
            )
            return resp

    async def _backoff(
        self, target: str, method: str, path: str, attempt: int, reason: str
    ) -> None:
        wait = self.retry.delay(attempt, self._rng())
        log().warning(
            "pps.retry",
            cluster=self.cluster.name,
            node=target,
            method=method,
            path=path,
            reason=reason,
            attempt=attempt + 1,
            wait_s=round(wait, 3),
        )
        await self.clock.sleep(wait)

    # -- answers --------------------------------------------------------------------

    def _json(self, target: str, resp: Reply) -> Any:
        try:
            return resp.json()
        except ValueError:
            raise Rejected(target, resp.status_code, "answer is not JSON") from None

    def scrub(self, text: str) -> str:
        """Remove the password and any api key from text that came off the wire."""
        for secret in (self._password, *self._keys.values()):
            value = secret.get()
            if value:
                text = text.replace(value, "***")
        return text

    def _rejected(self, target: str, resp: Reply) -> Rejected:
        return Rejected(target, resp.status_code, self.scrub(resp.short_message()))
