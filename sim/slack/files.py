"""Slack's external file upload, as the stand-in serves it.

1. `files.getUploadURLExternal` (`filename`, `length`) -> `upload_url`, `file_id`;
2. the bytes are POSTed to `upload_url` (raw, or as the one part of a multipart form);
   the stand-in answers `OK - <length>` as Slack does, and refuses a size that differs
   from `length`;
3. `files.completeUploadExternal` (`files` = JSON list of `{"id", "title"}`, optional
   `channel_id`, `thread_ts`, `initial_comment`) shares the files: a message in the
   channel (a reply when `thread_ts` is given) carrying `files` and the comment as text.

Both methods take a bot token and are recorded with the other Web API calls (faults
injected with `StandinStore.inject` apply). `GET /_standin/files` lists the uploads and
`GET /_standin/files/<id>` returns one file's bytes.

This module imports nothing of the product: it is Slack's side of the contract.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sim.slack.store import Call, Message, StandinStore
from sim.slack.webapi import ApiError, _answer, _read_args, _token_type

GET_URL, COMPLETE = "files.getUploadURLExternal", "files.completeUploadExternal"
MAX_BYTES = 1 << 30  # Slack's own limit is 1 GB


@dataclass
class StandinFile:
    id: str
    name: str
    length: int
    title: str = ""
    content: bytes | None = None  # None until uploaded
    shared_in: str | None = None  # channel, once completed

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "title": self.title, "size": self.length,
                "uploaded": self.content is not None, "shared_in": self.shared_in}


class FileApi:
    """The stand-in's files: the two Web API methods and the upload target."""

    def __init__(self, store: StandinStore) -> None:
        self.store = store
        self.files: dict[str, StandinFile] = {}

    def _get_url(self, args: dict[str, Any], base: str) -> dict[str, Any]:
        name = args.get("filename")
        try:
            length = int(args.get("length", ""))
        except (TypeError, ValueError):
            raise ApiError("invalid_arguments") from None
        if not isinstance(name, str) or not name or not 0 < length <= MAX_BYTES:
            raise ApiError("invalid_arguments")
        fid = f"F{secrets.token_hex(5).upper()}"
        self.files[fid] = StandinFile(fid, name, length)
        return {"upload_url": f"{base}_standin/upload/{fid}", "file_id": fid}

    def _complete(self, args: dict[str, Any], base: str) -> dict[str, Any]:
        raw = args.get("files")
        try:
            items = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            raise ApiError("invalid_arguments") from None
        if not isinstance(items, list) or not items:
            raise ApiError("invalid_arguments")
        found = []
        for item in items:
            f = self.files.get(str(item.get("id"))) if isinstance(item, dict) else None
            if f is None or f.content is None:
                raise ApiError("file_not_found")
            f.title = str(item.get("title") or f.name)
            found.append(f)
        channel = args.get("channel_id")
        if channel:
            thread_ts = args.get("thread_ts") or None
            if thread_ts is not None:
                parent = self.store.find(str(channel), str(thread_ts))
                if parent is None or parent.ephemeral_for is not None:
                    raise ApiError("thread_not_found")
                thread_ts = parent.thread_ts or parent.ts
            shared = [{"id": f.id, "name": f.name, "title": f.title, "size": f.length,
                       "url_private": f"{base}_standin/files/{f.id}"} for f in found]
            self.store.add(Message(channel=str(channel), ts=self.store.next_ts(str(channel)),
                                   text=str(args.get("initial_comment") or ""),
                                   thread_ts=thread_ts, files=shared))
            for f in found:
                f.shared_in = str(channel)
        return {"files": [{"id": f.id, "title": f.title} for f in found]}

    def _method(
        self, method: str, fn: Callable[[dict[str, Any], str], dict[str, Any]]
    ) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> JSONResponse:
            args, token = await _read_args(request)
            call = Call(method=method, args=args, at=time.time(), token_type=_token_type(token))
            fault = self.store.take_fault(method)
            result: dict[str, Any]
            if not token or not token.startswith("xox"):
                result = {"ok": False, "error": "not_authed"}
            elif not token.startswith("xoxb-"):
                result = {"ok": False, "error": "not_allowed_token_type"}
            elif fault is not None:
                result = {"ok": False, "error": fault.error}
            else:
                try:
                    result = {"ok": True, **fn(args, str(request.base_url))}
                except ApiError as exc:
                    result = {"ok": False, "error": exc.error}
            return _answer(self.store, call, result, 200)

        return endpoint

    async def upload(self, request: Request) -> Response:
        f = self.files.get(request.path_params["fid"])
        if f is None:
            return PlainTextResponse("file not found", status_code=404)
        data = await request.body()
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            async with request.form() as form:
                parts = [v for v in form.values() if not isinstance(v, str)]
                data = await parts[0].read() if parts else b""
        if len(data) != f.length:
            return PlainTextResponse(f"length {len(data)} differs from {f.length}",
                                     status_code=400)
        f.content = data
        self.store.touch()
        return PlainTextResponse(f"OK - {len(data)}")

    async def list_files(self, request: Request) -> JSONResponse:
        return JSONResponse({"files": [f.public() for f in self.files.values()]})

    async def content(self, request: Request) -> Response:
        f = self.files.get(request.path_params["fid"])
        if f is None or f.content is None:
            return PlainTextResponse("file not found", status_code=404)
        return Response(f.content, media_type="application/octet-stream")

    def routes(self) -> list[Route]:
        """The routes; the two API ones must come before the generic `/api/{method}`."""
        return [
            Route(f"/api/{GET_URL}", self._method(GET_URL, self._get_url),
                  methods=["GET", "POST"]),
            Route(f"/api/{COMPLETE}", self._method(COMPLETE, self._complete),
                  methods=["GET", "POST"]),
            Route("/_standin/upload/{fid}", self.upload, methods=["POST"]),
            Route("/_standin/files", self.list_files, methods=["GET"]),
            Route("/_standin/files/{fid}", self.content, methods=["GET"]),
        ]
