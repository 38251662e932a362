"""Retry failed wells: the button under a plate summary whose wells could not be classified.

The click is checked like any button (its value is input: the inspection it names must be this
channel's, finished, and the button of its latest summary) and becomes a plate_retry job, one per
inspection and round: the second click of a double click names the same round, so it is recorded once.
The job shows the summary as retrying (its button gives way to a note), marks the map and the CSV out
of date, and queues only the wells whose model call failed again; the last of them to end queues the
summary again, which updates the summary in place, replaces the map and the CSV in the thread, and
updates the plate's message in the hits channel (bot/slack/plates.py).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.models import Job
from bot.plates.report import image_outcomes, progress_text
from bot.plates.retry import parse_wells_retry, retrying, wells_to_retry
from bot.render import Message
from bot.slack.intake import Intake
from bot.slack.plates import PlateSummaries
from bot.slack.workflow import WORKING_REACTION, Workflow

log = logging.getLogger(__name__)


def accept_wells_retry(intake: Intake, body: dict[str, Any], value: str) -> None:
    """A Retry failed wells click: checked, then recorded as the inspection's next retry (once)."""
    store = intake.store
    retry = parse_wells_retry(value)
    channel = (body.get("channel") or {}).get("id", "")
    inspection = store.inspection(retry.inspection_id) if retry else None
    if not (retry and inspection and inspection.channel == channel and inspection.finished_at is not None
            and store.retry_rounds(inspection.id) == retry.round):
        log.info("Retry failed wells %.40r in %s ignored (no finished inspection of that channel, or a round "
                 "already taken)", value, channel)
        return
    if store.enqueue("plate_retry", inspection.channel, inspection.message_ts, inspection.thread_ts,
                     f"plate_retry:{inspection.id}:{retry.round}", inspection.plate_name, body["user"]["id"],
                     {"round": retry.round}, inspection.id) is not None:
        intake.queue.notify()


@dataclass
class PlateRetries:
    flow: Workflow

    def run(self, job: Job) -> None:
        store, poster = self.flow.store, self.flow.poster
        inspection = store.inspection(job.inspection_id) if job.inspection_id else None
        jobs = store.inspection_jobs(inspection.id) if inspection else []
        wells = wells_to_retry(jobs)
        if inspection is None or not wells:
            store.finish_job(job.id, "done")  # nothing failed is left (this job ran before, up to its end)
            return
        store.mark_plate_files_stale(inspection.id)
        summary = store.summary_job(inspection.id)
        composed = PlateSummaries(self.flow).compose(inspection, jobs)
        images, message = composed.images, composed.message
        classified, unreadable, _ = image_outcomes(images)
        try:  # before the wells are queued: none can end (and update the summary) before this shows
            if summary and summary.reply_ts:
                poster.update(inspection.channel, summary.reply_ts, retrying(message, len(wells), job.user_id))
            if inspection.progress_ts:
                poster.update(inspection.channel, inspection.progress_ts, Message(
                    progress_text(inspection.plate_name, classified, len(images), unreadable)
                    + f" · retrying {len(wells)}"))
        except SlackApiError as error:  # a message deleted, say: the retry goes ahead all the same
            log.warning("plate inspection %s: could not show the retry: %s", inspection.id, error)
        poster.react_if_possible(inspection.channel, inspection.message_ts, WORKING_REACTION, add=True)
        requeued = sum(store.requeue(well.id, inspection.channel) for well in wells)
        store.rearm_service_notice(inspection.channel, inspection.message_ts)
        log.info("plate inspection %s: %s wells tried again for %s", inspection.id, requeued, job.user_id)
        self.flow.wake()
        store.finish_job(job.id, "done")

    def give_up(self, job: Job, reason: str) -> None:
        self.flow.abandon(job, reason)


def retry_handlers(flow: Workflow) -> dict[str, PlateRetries]:
    return {"plate_retry": PlateRetries(flow)}
