"""`/pps report <job-id>`: the change record uploaded as a Markdown file into the job's thread.

Slack's external upload, in three calls: `files.getUploadURLExternal` (name, size), a POST
of the bytes to the URL it returns, `files.completeUploadExternal` (the file shared in the
card's channel, `thread_ts` = the card). The command acks first; the upload runs in the
background of the bot process, so the 3 s ack never waits on Slack. A failure is told to
the requester (ephemeral, with a reference for the logs), never as a traceback; the user
may simply ask again. A command Slack delivers twice uploads once (trigger id marker).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets

import httpx
import redis.asyncio as aioredis
from slack_sdk.web.async_client import AsyncWebClient

from bot.render.limits import escape
from bot.slack_api import Pacer
from handlers.commands import Caller
from jobs.config.clock import Clock
from jobs.config.log import get_logger
from jobs.report import AuditedJobs, ChangeRecord, change_record
from jobs.rules.model import Job
from jobs.store.keys import Keys

REDELIVERY_SECONDS = 300
UPLOAD_TIMEOUT_SECONDS = 30.0

log = get_logger(__name__)


class UploadFailed(Exception):
    """The bytes were not taken at the upload URL (status only: the URL is a credential)."""


class ReportUploader:
    """Posts change records as files; `request` is the command runner's `reports` hook."""

    def __init__(
        self,
        store: AuditedJobs,
        client: AsyncWebClient,
        pacer: Pacer,
        redis: aioredis.Redis,
        keys: Keys,
        clock: Clock,
    ) -> None:
        self.store = store
        self.client = client
        self.pacer = pacer
        self.redis = redis
        self.keys = keys
        self.clock = clock
        self.tasks: set[asyncio.Task[None]] = set()

    async def request(self, job: Job, caller: Caller) -> None:
        """Start posting `job`'s record (once per Slack delivery of the command)."""
        if caller.trigger_id:
            raw = "\x1f".join((caller.trigger_id, caller.user_id, job.id))
            marker = self.keys.dedupe("report:" + hashlib.sha256(raw.encode()).hexdigest()[:24])
            if not await self.redis.set(marker, "1", nx=True, ex=REDELIVERY_SECONDS):
                return
        task = asyncio.create_task(self._post(job.id, caller))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def drain(self) -> None:
        """Wait for the uploads in flight (tests)."""
        if self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    async def _post(self, job_id: str, caller: Caller) -> None:
        try:
            record = await change_record(self.store, job_id, self.clock.now())
            if record is None:
                raise LookupError(job_id)
            await self.upload(record, caller.user_id, caller.channel_id)
        except Exception as exc:
            ref = secrets.token_hex(4)
            log.warning("report_upload_failed", job_id=job_id, ref=ref, error=repr(exc))
            await self._tell(caller, f"⛔ The change record of `{escape(job_id)}` could not be "
                             f"posted (ref `{ref}`). Try again in a moment; *ppsbot report "
                             f"{escape(job_id)}* prints it meanwhile.")

    async def upload(self, record: ChangeRecord, requester: str, channel: str = "") -> str:
        """Upload the record's Markdown into the job's thread (a job without a channel: into
        `channel`); returns the file id."""
        job = record.job
        data = record.markdown.encode()
        got = await self.pacer.call("files.getUploadURLExternal",
                                    self.client.files_getUploadURLExternal,
                                    filename=record.filename, length=len(data))
        url, file_id = str(got["upload_url"]), str(got["file_id"])
        async with httpx.AsyncClient(timeout=UPLOAD_TIMEOUT_SECONDS) as http:
            resp = await http.post(url, content=data,
                                   headers={"Content-Type": "application/octet-stream"})
        if resp.status_code != 200:
            raise UploadFailed(f"upload answered HTTP {resp.status_code}")
        comment = (f"📄 Change record of `{job.id}` ({job.procedure} of {escape(job.cluster)} "
                   f"to {escape(job.target)}, {job.state.value}), requested by <@{requester}>.")
        where = {"channel_id": job.channel, "thread_ts": job.card_ts} if job.card_ts \
            else {"channel_id": job.channel or channel}
        title = f"Change record {job.id} ({job.cluster})"
        await self.pacer.call("files.completeUploadExternal",
                              self.client.files_completeUploadExternal,
                              urgent=False, files=[{"id": file_id, "title": title}],
                              initial_comment=comment, **where)
        log.info("report_posted", job_id=job.id, file_id=file_id, bytes=len(data))
        return file_id

    async def _tell(self, caller: Caller, text: str) -> None:
        if not (caller.channel_id and caller.user_id):
            return
        try:
            await self.pacer.call("chat.postEphemeral", self.client.chat_postEphemeral,
                                  channel=caller.channel_id, user=caller.user_id, text=text)
        except Exception as exc:
            log.warning("report_failure_not_told", user=caller.user_id, error=repr(exc))
