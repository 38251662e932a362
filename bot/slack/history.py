"""A plate's history in Slack: what the pure modules (bot/plates/history.py, strip.py, gallery.py,
hits_chart.py, history_report.py) decide, fetched from the store and posted.

history:        the History button on a crystal hit's reply, or "show D7 over time" in a plate's thread
                -> the drop's (or the wells') image at each inspection of the plate, as one picture,
                in the thread, with each inspection's call in its comment.
plate_overview: `/crystals plate NAME` -> the plate's inspections (date, day, counts, hits, new hits)
                and a chart of its hits per inspection, in the channel.
Also: since when a hit's drop has been crystals (its reply's note), the gallery of an inspection's
hits (uploaded with its plate map), and when an inspection was imaged, as its map's title says it.
"""
from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Collection, Sequence

from slack_sdk.errors import SlackApiError

from bot.categories import Category
from bot.models import Call, Image, Inspection, Job
from bot.plates.gallery import gallery_hits, gallery_pngs
from bot.plates.history import HitSince, day_number, hit_since, in_date_order, sightings, timeline, when_text
from bot.plates.history_report import (history_comment, history_failed_message, no_history_message,
                                       picture_refused_message, plate_not_found_message, timeline_comment)
from bot.plates.hits_chart import hits_chart_png
from bot.plates.naming import file_stem
from bot.plates.report import PlateImage, payload_position
from bot.plates.strip import DropHistory, history_png
from bot.plates.wells import PLATE_SHAPES, Position, Well, wells_in_text
from bot.queue import Handler
from bot.screens.chemistry import PlateConditions
from bot.render import Message
from bot.store import Store
from bot.visibility import NOT_A_MEMBER

if TYPE_CHECKING:  # the workflow uses this module's hit_history for a hit's reply
    from bot.slack.intake import Intake
    from bot.slack.workflow import Workflow

log = logging.getLogger(__name__)


def hit_history(store: Store, job: Job, call: Call, hits: Collection[str]) -> HitSince | None:
    """Since when a plate image job's drop has been a hit, up to its own inspection; None for any other
    job, a call that is no hit, or a plate's first inspection."""
    position = payload_position(job.payload) if job.kind == "plate_image" else None
    inspection = store.inspection(job.inspection_id) if position and job.inspection_id else None
    if position is None or inspection is None or call.label not in hits:
        return None
    inspections = in_date_order(store.plate_inspections(inspection))
    histories = _drop_histories(store, inspections, position.well, {position.drop}) if len(inspections) > 1 else []
    return hit_since(histories[0].sightings, inspection.id, hits=hits) if histories else None


def inspection_taken(store: Store, inspection: Inspection) -> str:
    """When an inspection was imaged and its day: `2026-12-01 09:30, day 7`."""
    first = in_date_order(store.plate_inspections(inspection))[0]
    return f"{when_text(inspection)}, day {day_number(first.taken_at, inspection.taken_at)}"


def gallery_files(store: Store, inspection: Inspection, stem: str, taken: str, images: Sequence[PlateImage],
                  new_hits: Collection[Position], conditions: PlateConditions | None,
                  categories: Sequence[Category]) -> list[dict[str, Any]]:
    """The gallery of an inspection's crystal hits, as files to upload (none without hits); each hit labelled
    with its well's condition in short when the plate's screen is known."""
    shorts = {image.position.well: short for image in images if conditions and image.position
              and (short := conditions.short(str(image.position.well)))}
    hits = gallery_hits(images, new_hits, categories, shorts)
    pngs = gallery_pngs(inspection.plate_name, taken, hits, lambda call_id: _jpeg(store.image_of_call(int(call_id))))
    several = len(pngs) > 1
    return [{"content": png, "filename": f"{stem}_hits{f'_{number}' if several else ''}.png",
             "title": f"Crystal hits of {inspection.plate_name}" + (f" ({number} of {len(pngs)})" if several else "")}
            for number, png in enumerate(pngs, start=1)]


def plate_command(intake: Intake, command: dict[str, Any], text: str) -> Message:
    """`/crystals plate NAME`: the plate's overview is queued (posted in the channel), or what to do. Only a
    member of the channel gets it (or learns which plates it has), as with `recent`."""
    name = text.partition(" ")[2].strip()
    if not name:
        return Message("Which plate? For example `/crystals plate plate42`.")
    channel = command["channel_id"]
    if not intake.workflow.privacy.may_see(command["user_id"], channel):
        return Message(NOT_A_MEMBER)
    latest = intake.store.latest_plate_inspection(channel, name)
    if latest is None:
        return plate_not_found_message(name, intake.store.channel_plate_names(channel))
    intake.accept_plate_overview(command, latest.plate)
    return Message(f"Plate {latest.plate_name}: its inspections and a chart of its hits are coming up in this channel.")


@dataclass
class DropHistories:
    """The History button or a history question -> one picture of the drops over the plate's inspections."""

    flow: Workflow

    def run(self, job: Job) -> None:
        store = self.flow.store
        if job.state == "replied":  # the picture is in the thread already
            store.finish_job(job.id, "done")
            return
        inspection, wells, drops = self._asked(job)
        if inspection is None:
            store.finish_job(job.id, "done")
            return
        inspections = in_date_order(store.plate_inspections(inspection))
        histories = [history for well in wells for history in _drop_histories(store, inspections, well, drops)]
        if not histories:
            reply_ts = self.flow.poster.reply(job, no_history_message(inspection.plate_name, [str(w) for w in wells]))
            store.update_job(job.id, "replied", reply_ts=reply_ts)
            store.finish_job(job.id, "done")
            return
        prompt_set = self.flow.services.prompt_set
        png = history_png(inspection.plate_name, histories, self.flow.services.settings.keep_images_days,
                          lambda sha256: _jpeg(store.image(sha256)), prompt_set.categories)
        since = hit_since(histories[0].sightings, inspections[-1].id, hits=prompt_set.hits) \
            if len(histories) == 1 else None
        names = "_".join(h.name.replace(" ", "") for h in histories[:3])
        try:
            self.flow.poster.upload(job.channel, [
                {"content": png, "filename": f"{file_stem(inspection.plate_name)}_{names}_history.png",
                 "title": f"{', '.join(h.name for h in histories)} of {inspection.plate_name} over time"}],
                thread_ts=job.thread_ts, comment=history_comment(inspection.plate_name, histories, since))
        except SlackApiError as error:  # a fault that may pass became RetryLater: this one will not (files:write)
            log.error("history %s: Slack refused the picture: %s", job.id, error)
            self.flow.poster.reply(job, picture_refused_message(str(error.response.get("error"))))
        store.update_job(job.id, "replied")
        store.finish_job(job.id, "done")

    def give_up(self, job: Job, reason: str) -> None:
        self.flow.fail(job, history_failed_message(job.id), reason)

    def _asked(self, job: Job) -> tuple[Inspection | None, list[Well], set[int] | None]:
        """(the plate inspection, the wells, the drops: None for all) a request is about."""
        store = self.flow.store
        if "job_id" in job.payload:  # the History button under a hit's reply
            target = store.job(job.payload["job_id"])
            position = payload_position(target.payload) if target else None
            inspection = store.inspection(target.inspection_id) if target and target.inspection_id else None
            return (inspection, [position.well], {position.drop}) if position else (None, [], None)
        inspection = store.thread_inspection(job.channel, job.thread_ts)
        return inspection, wells_in_text(job.payload.get("text", ""), max(PLATE_SHAPES)), None


@dataclass
class PlateOverviews:
    """`/crystals plate NAME`: the plate's inspections and a chart of its hits per inspection, posted in
    the channel it was asked in (the chart as a file, the inspections in its comment)."""

    flow: Workflow

    def run(self, job: Job) -> None:
        store = self.flow.store
        latest = store.latest_plate_inspection(job.channel, job.payload["plate"])
        if job.state == "replied" or latest is None:
            store.finish_job(job.id, "done")
            return
        inspections = in_date_order(store.plate_inspections(latest))
        counts: dict[int, Counter[str]] = defaultdict(Counter)
        hits: dict[int, list[Position]] = defaultdict(list)
        for inspection_id, position, label in store.plate_calls(i.id for i in inspections):
            counts[inspection_id][label] += 1
            if self.flow.services.prompt_set.is_hit(label):
                hits[inspection_id].append(position)
        rows = timeline(inspections, counts, hits)
        comment = timeline_comment(latest.plate_name, rows, [self.flow.plate_link(row.inspection) for row in rows],
                                   self.flow.services.prompt_set.categories)
        chart = {"content": hits_chart_png(latest.plate_name, rows),
                 "filename": f"{file_stem(latest.plate_name)}_hits_per_inspection.png",
                 "title": f"Crystal hits of {latest.plate_name} per inspection"}
        try:
            self.flow.poster.upload(job.channel, [chart], comment=comment)
        except SlackApiError as error:  # a fault that may pass became RetryLater: this one will not (files:write)
            log.error("plate overview %s: Slack refused the chart (%s); posting the text alone", job.id,
                      error.response.get("error"))
            self.flow.poster.post(job, job.channel, Message(comment))
        store.update_job(job.id, "replied")
        store.finish_job(job.id, "done")

    def give_up(self, job: Job, reason: str) -> None:
        self.flow.abandon(job, reason)


def _drop_histories(store: Store, inspections: Sequence[Inspection], well: Well,
                    drops: set[int] | None) -> list[DropHistory]:
    """Each of a well's drops (those in `drops`, or all) over the inspections: the drops' names say
    `D7`, or `D7 drop 2` when the plate has several drops per well."""
    records = store.well_records([i.id for i in inspections], well)
    numbers = sorted({r.drop for r in records if drops is None or r.drop in drops})
    several = any(r.drop > 1 for r in records)
    return [DropHistory(str(Position(well, drop)) if several else str(well),
                        sightings(inspections, [r for r in records if r.drop == drop])) for drop in numbers]


def _jpeg(image: Image | None) -> bytes | None:
    return image.jpeg if image else None


def history_handlers(flow: Workflow) -> dict[str, Handler]:
    return {"history": DropHistories(flow), "plate_overview": PlateOverviews(flow)}
