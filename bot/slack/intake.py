"""What the listeners do with an event: check it, record the job(s), wake the queue. Quick, so the
ack is never late; the work itself happens on the queue's workers (bot/slack/workflow.py)."""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.addressing import asks_something, mentions
from bot.export import Period
from bot.models import Job
from bot.queue import JobQueue, RetryLater
from bot.render import parse_feedback_value, parse_job_id
from bot.services import Services
from bot.store import Store
from bot.slack.files import is_image, is_pending
from bot.slack.posting import SlackPoster
from bot.slack.workflow import WORKING_REACTION

log = logging.getLogger(__name__)

NOT_ALLOWED = ("Find the Crystals is not enabled in this channel, so I will stay quiet here. "
               "An admin can add the channel to ALLOWED_CHANNELS.")


@dataclass
class Intake:
    services: Services
    queue: JobQueue
    poster: SlackPoster
    bot_user_id: str
    hits_channel: str = ""  # the id HITS_CHANNEL names ("" for none)
    store: Store = field(init=False)

    def __post_init__(self) -> None:
        self.store = self.services.store

    def allowed(self, channel: str) -> bool:
        allowed = self.services.settings.allowed_channels
        return not allowed or channel in allowed

    def say_not_allowed_once(self, channel: str) -> None:
        """The bot was invited to a channel outside ALLOWED_CHANNELS: say why, the first time only (the
        hits channel excepted: the bot posts there)."""
        if channel != self.hits_channel and self.store.first_sighting(f"not-allowed:{channel}"):
            self.poster.client.chat_postMessage(channel=channel, text=NOT_ALLOWED)

    def accept_upload(self, event: dict[str, Any]) -> None:
        """Record one image job per new image of a file_share message (the file record included)."""
        channel, ts = event["channel"], event["ts"]
        thread_ts = event.get("thread_ts") or ts
        recorded = [self.store.enqueue("image", channel, ts, thread_ts, file["id"], file.get("name") or file["id"],
                                       event.get("user", ""), file)
                    for file in event.get("files", []) if is_image(file) or is_pending(file)]
        if any(job_id is not None for job_id in recorded):
            self.queue.notify()
            self._react_working(channel, ts)

    def should_answer(self, event: dict[str, Any]) -> bool:
        """A message that mentions the bot, or one in a thread of the bot's calls that asks something
        (people chatting there are left alone: no model call, no reply)."""
        text = event.get("text", "")
        if mentions(text, self.bot_user_id):
            return True
        return (asks_something(text) and bool(event.get("thread_ts"))
                and bool(self.store.thread_jobs(event["channel"], event["thread_ts"])))

    def accept_question(self, event: dict[str, Any]) -> None:
        thread_ts = event.get("thread_ts") or event["ts"]
        payload = {"text": event.get("text", ""), "user": event.get("user", "")}
        if self.store.enqueue("question", event["channel"], event["ts"], thread_ts, "question", "question",
                              event.get("user", ""), payload) is not None:
            self.queue.notify()

    def accept_click(self, body: dict[str, Any], value: str) -> None:
        """A Confirm or Correct click: checked against the call and the channel it was clicked in."""
        parsed = parse_feedback_value(value, self.services.prompt_set.labels)
        target = self.store.job(parsed[0]) if parsed else None
        call = self.store.call(target.call_id) if target and target.call_id else None
        channel = (body.get("channel") or {}).get("id")
        if not parsed or not target or not call or target.kind != "image" or channel not in self._shown_in(target):
            log.warning("ignored a feedback click with value %.40r in channel %s", value, channel)
            return
        label = parsed[1]
        payload = {"job_id": target.id, "label": label, "verdict": "confirmed" if label == call.label else "corrected"}
        key = f"click:{body.get('actions', [{}])[0].get('action_ts', '')}:{body['user']['id']}"
        if self.store.enqueue("feedback", target.channel, target.message_ts, target.thread_ts, key, "feedback",
                              body["user"]["id"], payload) is not None:
            self.queue.notify()

    def _shown_in(self, image_job: Job) -> set[str]:
        """The channels where a call's buttons are: its own, and the hits channel it was shared in."""
        hit = self.store.hit_of(image_job)
        return {image_job.channel, *([hit.payload["hits_channel"]] if hit else [])}

    def accept_export(self, command: dict[str, Any], period: Period) -> None:
        """`/crystals export`: a job that sends the channel's calls to the person who asked."""
        key, channel = f"export-{command.get('trigger_id') or time.time()}", command["channel_id"]
        if self.store.enqueue("export", channel, key, key, "export", period.file_name(channel), command["user_id"],
                              asdict(period)) is not None:
            self.queue.notify()

    def accept_retry(self, body: dict[str, Any], value: str) -> None:
        """The Retry button under a failure: the job goes back into the queue."""
        job_id = parse_job_id(value)
        channel = (body.get("channel") or {}).get("id", "")
        if job_id is not None and self.store.requeue(job_id, channel):
            self.queue.notify()
        else:
            log.info("retry of job %.20r in %s ignored (not a failed job of that channel)", value, channel)

    def _react_working(self, channel: str, ts: str) -> None:
        """:eyes: on the upload at once; cosmetic, so a failure here is only logged."""
        try:
            self.poster.react(channel, ts, WORKING_REACTION, add=True)
        except (SlackApiError, RetryLater) as error:
            log.warning("could not mark %s/%s as being worked on: %s", channel, ts, error)
