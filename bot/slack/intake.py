"""What the listeners do with an event: check it, record the job(s), wake the queue. Quick, so the
ack is never late; the work itself happens on the queue's workers (bot/slack/workflow.py)."""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from bot.addressing import asks_something, mentions
from bot.export import Period
from bot.queue import JobQueue
from bot.plate_batch import batch_requested, without_batch_word
from bot.plates.history import asks_for_history
from bot.plates.naming import plate_positions, shared_plate_id
from bot.render import clip, parse_feedback_value, parse_id
from bot.screens.messages import screen_directive
from bot.services import Services
from bot.store import Store
from bot.slack.files import is_image, is_pending, is_zip
from bot.slack.posting import SlackPoster
from bot.slack.screens import LabScreens, is_table
from bot.slack.workflow import IMAGE_KINDS, Workflow

log = logging.getLogger(__name__)

MIN_PLATE_IMAGES = 2  # images named by well in one message that make a plate
HOME_REFRESH_SECONDS = 60  # the Home tab is published at most once per person in this time
HOME_CHANNEL = "home"  # home jobs belong to no channel


@dataclass(frozen=True)
class Upload:
    zips: list[dict[str, Any]]
    plate_images: list[dict[str, Any]]  # images whose names carry wells, when there are enough of them
    images: list[dict[str, Any]]  # answered one by one
    tables: list[dict[str, Any]] = field(default_factory=list)  # CSV and text files: screens, when the text says so


def sort_upload(files: list[dict[str, Any]]) -> Upload:
    """A message's files by how they are handled; files that are neither zips nor images are left alone."""
    zips = [file for file in files if is_zip(file)]
    tables = [file for file in files if not is_zip(file) and is_table(file)]  # by name, even while Slack scans them
    images = [file for file in files if file not in zips + tables and (is_image(file) or is_pending(file))]
    names = [file["name"] for file in images if file.get("name")]
    positions = plate_positions(names, shared_plate_id(names))
    by_well = [file for file in images if positions.get(file.get("name") or "")]
    if len(by_well) < MIN_PLATE_IMAGES or len({file["name"] for file in by_well}) < len(by_well):
        return Upload(zips, [], images, tables)
    return Upload(zips, by_well, [file for file in images if file not in by_well], tables)


NOT_ALLOWED = ("Find the Crystals is not enabled in this channel, so I will stay quiet here. "
               "An admin can add the channel to ALLOWED_CHANNELS.")


@dataclass
class Intake:
    services: Services
    queue: JobQueue
    poster: SlackPoster
    workflow: Workflow  # what the queue's jobs do; the slash commands share its views of the data
    bot_user_id: str
    hits_channel: str = ""  # the id HITS_CHANNEL names ("" for none)
    store: Store = field(init=False)
    screens: LabScreens = field(init=False)

    def __post_init__(self) -> None:
        self.store = self.services.store
        self.screens = LabScreens(self.workflow)

    def allowed(self, channel: str) -> bool:
        allowed = self.services.settings.allowed_channels
        return not allowed or channel in allowed

    def say_not_allowed_once(self, channel: str) -> None:
        """The bot was invited to a channel outside ALLOWED_CHANNELS: say why, the first time only (the
        hits channel excepted: the bot posts there)."""
        if channel != self.hits_channel and self.store.first_sighting(f"not-allowed:{channel}"):
            self.poster.client.chat_postMessage(channel=channel, text=NOT_ALLOWED)

    def accept_upload(self, event: dict[str, Any]) -> None:
        """Record the jobs of a file_share message (file records included): a plate job per zip, one
        plate job for images named by well, an image job for each other image, a screen job for a screen
        file. A plate's screen named in the text (`plate42 screen JCSG+`) goes with its plate job."""
        channel, ts, user, text = event["channel"], event["ts"], event.get("user", ""), event.get("text", "")
        thread_ts = event.get("thread_ts") or ts
        upload = sort_upload(event.get("files", []))
        options = {"batch": True} if batch_requested(text) else {}  # a zip may still turn up among the images
        directive = screen_directive(text)
        screen = {"screen": directive.screen} if directive.screen else {}
        recorded = [self.store.enqueue("plate", channel, ts, thread_ts, file["id"], file.get("name") or file["id"],
                                       user, {**file, **options, **screen}) for file in upload.zips]
        if upload.plate_images:
            recorded.append(self.store.enqueue("plate", channel, ts, thread_ts, "plate", "images by well", user, {
                "files": upload.plate_images, "plate": clip(without_batch_word(directive.rest), 80), **options,
                **screen}))
        recorded += self.screens.accept_upload(event, upload.tables, directive)
        recorded += [self.store.enqueue("image", channel, ts, thread_ts, file["id"], file.get("name") or file["id"],
                                        user, {**file, **options}) for file in upload.images]
        if any(job_id is not None for job_id in recorded):
            self.queue.notify()
            self.workflow.start_working(channel, ts)

    def should_answer(self, event: dict[str, Any]) -> bool:
        """A message that mentions the bot, or one in a thread of the bot's calls that asks something
        (people chatting there are left alone: no model call, no reply)."""
        text = event.get("text", "")
        if mentions(text, self.bot_user_id):
            return True
        return (asks_something(text) and bool(event.get("thread_ts"))
                and bool(self.store.thread_jobs(event["channel"], event["thread_ts"])))

    def accept_question(self, event: dict[str, Any]) -> None:
        """A question job; in a plate's thread, a request to see drops over time is a history job."""
        thread_ts = event.get("thread_ts") or event["ts"]
        payload = {"text": event.get("text", ""), "user": event.get("user", "")}
        kind = "history" if asks_for_history(payload["text"]) and self.store.thread_inspection(
            event["channel"], thread_ts) else "question"
        if self.store.enqueue(kind, event["channel"], event["ts"], thread_ts, "question", kind,
                              event.get("user", ""), payload) is not None:
            self.queue.notify()

    def accept_history_click(self, body: dict[str, Any], value: str) -> None:
        """The History button under a plate's crystal hit: a job that posts the drop over time."""
        job_id = parse_id(value)
        target = self.store.job(job_id) if job_id is not None else None
        channel = (body.get("channel") or {}).get("id")
        if not target or target.kind != "plate_image" or target.channel != channel:
            log.warning("ignored a History click with value %.40r in channel %s", value, channel)
            return
        key = f"history:{body.get('actions', [{}])[0].get('action_ts', '')}:{body['user']['id']}"
        if self.store.enqueue("history", target.channel, target.message_ts, target.thread_ts, key, "history",
                              body["user"]["id"], {"job_id": target.id}) is not None:
            self.queue.notify()

    def accept_plate_overview(self, command: dict[str, Any], plate: str) -> None:
        """`/crystals plate NAME`: a job that posts the plate's inspections and chart in the channel."""
        key, channel = f"plate-{command.get('trigger_id') or time.time()}", command["channel_id"]
        if self.store.enqueue("plate_overview", channel, key, key, "plate_overview", plate, command["user_id"],
                              {"plate": plate}) is not None:
            self.queue.notify()

    def accept_click(self, body: dict[str, Any], value: str) -> None:
        """A Confirm or Correct click: checked against the call and the channel it was clicked in."""
        parsed = parse_feedback_value(value, self.services.prompt_set.labels)
        target = self.store.job(parsed[0]) if parsed else None
        call = self.store.call(target.call_id) if target and target.call_id else None
        channel = (body.get("channel") or {}).get("id")
        shown_in = self.workflow.shown_in(target) if target else set()
        if not parsed or not target or not call or target.kind not in IMAGE_KINDS or channel not in shown_in:
            log.warning("ignored a feedback click with value %.40r in channel %s", value, channel)
            return
        label = parsed[1]
        payload = {"job_id": target.id, "label": label, "verdict": "confirmed" if label == call.label else "corrected"}
        key = f"click:{body.get('actions', [{}])[0].get('action_ts', '')}:{body['user']['id']}"
        if self.store.enqueue("feedback", target.channel, target.message_ts, target.thread_ts, key, "feedback",
                              body["user"]["id"], payload) is not None:
            self.queue.notify()

    def accept_export(self, command: dict[str, Any], period: Period) -> None:
        """`/crystals export`: a job that sends the channel's calls to the person who asked."""
        key, channel = f"export-{command.get('trigger_id') or time.time()}", command["channel_id"]
        if self.store.enqueue("export", channel, key, key, "export", period.file_name(channel), command["user_id"],
                              asdict(period)) is not None:
            self.queue.notify()

    def accept_retry(self, body: dict[str, Any], value: str) -> None:
        """The Retry button under a failure: the job goes back into the queue."""
        job_id = parse_id(value)
        channel = (body.get("channel") or {}).get("id", "")
        if job_id is not None and self.store.requeue(job_id, channel):
            self.store.rearm_service_notice(channel, self.store.job(job_id).message_ts)
            self.queue.notify()
        else:
            log.info("retry of job %.20r in %s ignored (not a failed job of that channel)", value, channel)

    def accept_home_opened(self, event: dict[str, Any]) -> None:
        """Someone opened the app's Home tab: a job that publishes the dashboard for them. One per person
        and minute (the job's key), so opening the tab again and again costs at most one a minute."""
        user, minute = event["user"], int(time.time() // HOME_REFRESH_SECONDS)
        key = f"home-{user}-{minute}"
        if self.store.enqueue("home", HOME_CHANNEL, key, key, "home", "home", user, {}) is not None:
            self.queue.notify()

