"""Talking back to Slack without losing or doubling anything: paced posts, one reply per job.

Slack allows about one message a second per channel, with short bursts, and answers 429 with
Retry-After past that: posts are paced per channel and every 429 is waited out. A post is not
safe to repeat blindly (after a dropped connection it may exist), so each reply carries message
metadata naming its job, and a job that runs again looks in its thread for that reply first.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any, Callable
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (ConnectionErrorRetryHandler, RateLimitErrorRetryHandler,
                                                   ServerErrorRetryHandler)

from bot.models import Job
from bot.queue import RetryLater
from bot.render import Message

log = logging.getLogger(__name__)

JOB_EVENT_TYPE = "crystal_job"
RATE_LIMIT_RETRIES = 30  # each waits out Slack's Retry-After: minutes of patience before the queue takes over
HISTORY_PAGES = 5  # a top-level post is looked for among the channel's latest 1,000 messages
TRANSIENT_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}


CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,}")


def channel_id(client: WebClient, setting: str) -> str:
    """A channel setting as an id: an id as it is; a name (`crystal-hits` or `#crystal-hits`) looked up
    among the channels the bot can see (scopes channels:read, groups:read); "" for none, or for a
    name not found, which is logged."""
    if not setting or CHANNEL_ID.fullmatch(setting):
        return setting
    name = setting.removeprefix("#")
    for page in client.conversations_list(types="public_channel,private_channel", exclude_archived=True, limit=1000):
        for channel in page["channels"]:
            if channel.get("name") == name:
                return channel["id"]
    log.error("there is no channel #%s that the bot can see: invite the bot there, or give its id (C0...). "
              "Until then no calls are shared there.", name)
    return ""


def web_client(token: str, base_url: str, *, idempotent: bool = True,
               rate_limit_retries: int = RATE_LIMIT_RETRIES) -> WebClient:
    """A Web API client that waits out 429s (up to `rate_limit_retries` times). Only an `idempotent`
    client also repeats requests after a dropped connection or a 5xx: posting a message must not be
    repeated blindly."""
    handlers = [RateLimitErrorRetryHandler(max_retry_count=rate_limit_retries)]
    if idempotent:
        handlers += [ConnectionErrorRetryHandler(max_retry_count=2), ServerErrorRetryHandler(max_retry_count=2)]
    return WebClient(token=token, base_url=base_url, retry_handlers=handlers)


class ChannelPacer:
    """At most `burst` messages at once per channel, then one per `interval` seconds (a token bucket
    whose debt makes later callers wait their turn)."""

    def __init__(self, interval: float = 1.0, burst: int = 3, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def reserve(self, channel: str) -> float:
        """Take a slot; the seconds to wait before using it."""
        with self._lock:
            now = self.clock()
            tokens, last = self._buckets.get(channel, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) / self.interval) - 1
            self._buckets[channel] = (tokens, now)
        return max(0.0, -tokens * self.interval)

    def wait(self, channel: str) -> None:
        time.sleep(self.reserve(channel))


def as_retry(error: Exception) -> RetryLater | None:
    """A Slack fault that may pass (429, 5xx, a dropped connection) as RetryLater; None otherwise."""
    if isinstance(error, SlackApiError):
        status = error.response.status_code
        if status == 429 or status >= 500 or error.response.get("error") in TRANSIENT_ERRORS:
            retry_after = error.response.headers.get("Retry-After") or error.response.headers.get("retry-after")
            return RetryLater(f"Slack answered {status} {error.response.get('error')}",
                              float(retry_after) if retry_after else None)
        return None
    if isinstance(error, (URLError, ConnectionError, TimeoutError, OSError)):
        return RetryLater(f"Slack could not be reached: {type(error).__name__}")
    return None


class SlackPoster:
    def __init__(self, client: WebClient, poster: WebClient, bot_user_id: str, pacer: ChannelPacer) -> None:
        self.client = client  # idempotent requests
        self.poster = poster  # chat.postMessage: no blind repeats
        self.bot_user_id = bot_user_id
        self.pacer = pacer

    def reply(self, job: Job, message: Message) -> str:
        """The job's one reply in its thread: posted once, updated after that. Returns its ts."""
        return self._post_once(job, job.channel, job.thread_ts, message)

    def post(self, job: Job, channel: str, message: Message) -> str:
        """The job's one message at the top of `channel` (a notice, a hit): posted once, updated after."""
        return self._post_once(job, channel, None, message)

    def _post_once(self, job: Job, channel: str, thread_ts: str | None, message: Message) -> str:
        ts = job.reply_ts or (self.find_post(job, channel, thread_ts) if job.attempts > 1 else None)
        if ts:
            self.update(channel, ts, message)
            return ts
        metadata = {"event_type": JOB_EVENT_TYPE, "event_payload": {"job_id": job.id}}
        self.pacer.wait(channel)
        response = self._slack(lambda: self.poster.chat_postMessage(
            channel=channel, thread_ts=thread_ts, text=message.text, blocks=message.blocks, metadata=metadata))
        return response["ts"]

    def find_post(self, job: Job, channel: str, thread_ts: str | None) -> str | None:
        """The ts of a message this job already posted (found by its metadata), if any: in the thread,
        or among the channel's latest HISTORY_PAGES pages for a top-level message."""
        cursor, pages = None, 0
        while True:
            page = self._slack(lambda: self._metadata_page(channel, thread_ts, cursor))
            for message in page["messages"]:
                metadata = message.get("metadata") or {}
                if (metadata.get("event_type") == JOB_EVENT_TYPE and message.get("user") == self.bot_user_id
                        and metadata.get("event_payload", {}).get("job_id") == job.id):
                    log.info("job %s had already posted (%s); not posting again", job.id, message["ts"])
                    return message["ts"]
            cursor, pages = (page.get("response_metadata") or {}).get("next_cursor"), pages + 1
            if not page.get("has_more") or not cursor or (thread_ts is None and pages >= HISTORY_PAGES):
                return None

    def _metadata_page(self, channel: str, thread_ts: str | None, cursor: str | None) -> Any:
        """A page of a thread (or of the channel's history, newest first), with message metadata."""
        if thread_ts:
            return self.client.conversations_replies(channel=channel, ts=thread_ts, include_all_metadata=True,
                                                     limit=200, cursor=cursor)
        return self.client.conversations_history(channel=channel, include_all_metadata=True, limit=200, cursor=cursor)

    def update(self, channel: str, ts: str, message: Message) -> None:
        self.pacer.wait(channel)
        self._slack(lambda: self.client.chat_update(channel=channel, ts=ts, text=message.text, blocks=message.blocks))

    def delete(self, channel: str, ts: str) -> None:
        """Delete one of the bot's messages; one already gone is not an error."""
        try:
            self._slack(lambda: self.client.chat_delete(channel=channel, ts=ts))
        except SlackApiError as error:
            if error.response.get("error") != "message_not_found":
                raise

    def upload(self, channel: str, files: list[dict[str, Any]], *, thread_ts: str | None = None,
               comment: str | None = None) -> list[str]:
        """Share files (each {"content" or "file", "filename", "title"}) in a channel or a thread, with an
        optional comment: Slack's external upload (a URL per file, the bytes, one completion; scope
        files:write). Not repeated blindly: the caller records that it is done. Returns the file ids."""
        self.pacer.wait(channel)
        response = self._slack(lambda: self.poster.files_upload_v2(
            channel=channel, thread_ts=thread_ts, file_uploads=files, initial_comment=comment))
        return [file["id"] for file in response.get("files", [])]

    def delete_file(self, file_id: str) -> None:
        """Delete a file the bot shared (scope files:write), e.g. a plate map a newer one replaced; one already
        gone is not an error. Tidying only: a failure is logged, never fails the work."""
        try:
            self._slack(lambda: self.client.files_delete(file=file_id))
        except (SlackApiError, RetryLater) as error:
            if not (isinstance(error, SlackApiError) and error.response.get("error") == "file_not_found"):
                log.warning("could not delete file %s: %s", file_id, error)

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> None:
        """Open a modal for the person who clicked (Slack takes it within 3 s of the click). Not
        repeated after a dropped connection: that could open it twice."""
        self.poster.views_open(trigger_id=trigger_id, view=view)

    def publish_home(self, user_id: str, view: dict[str, Any]) -> None:
        """Replace a person's Home tab (views.publish replaces the whole view, so repeating it is safe)."""
        self._slack(lambda: self.client.views_publish(user_id=user_id, view=view))

    def react(self, channel: str, ts: str, name: str, *, add: bool) -> None:
        """Add or remove a reaction; one already there (or already gone) is not an error."""
        method = self.client.reactions_add if add else self.client.reactions_remove
        try:
            self._slack(lambda: method(channel=channel, timestamp=ts, name=name))
        except SlackApiError as error:
            if error.response.get("error") not in {"already_reacted", "no_reaction"}:
                raise

    def react_if_possible(self, channel: str, ts: str, name: str, *, add: bool) -> None:
        """A cosmetic reaction (:eyes: on, or off): a failure is only logged, never fails the work."""
        try:
            self.react(channel, ts, name, add=add)
        except (SlackApiError, RetryLater) as error:
            log.warning("could not %s :%s: on %s/%s: %s", "add" if add else "remove", name, channel, ts, error)

    def direct_message_channel(self, user_id: str) -> str:
        """The channel id of the bot's direct messages with a person (opened if need be)."""
        return self._slack(lambda: self.client.conversations_open(users=user_id))["channel"]["id"]

    def thread(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """Every message of a thread, oldest first, page by page."""
        messages: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self._slack(lambda: self.client.conversations_replies(
                channel=channel, ts=thread_ts, limit=200, cursor=cursor))
            messages += page["messages"]
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not page.get("has_more") or not cursor:
                return messages

    @staticmethod
    def _slack(request: Callable[[], Any]) -> Any:
        """Run a Web API request; faults that may pass become RetryLater for the queue."""
        try:
            return request()
        except Exception as error:
            retry = as_retry(error)
            if retry is None:
                raise
            raise retry from error
