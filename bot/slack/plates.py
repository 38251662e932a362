"""Whole plates in Slack, one handler per kind of job; the queue runs them like any other job.

plate:         download the zip (to a temporary file) or the message's images -> record the inspection
               -> one progress message -> each image read, normalised and stored in turn -> one
               plate_image job per image. A zip that cannot be read gets one clear thread message.
plate_image:   classify the stored image (cache, concurrency bound) -> a crystal hit gets its own
               reply with the feedback buttons -> the progress message, at most every few seconds.
plate_summary: queued when the inspection's last job ends -> the comparison with the plate's last
               inspection in the channel -> the summary, the plate map and the CSV in the thread ->
               a plate with crystal hits queues its plate_hits job -> the final progress line and the
               outcome reaction.
plate_hits:    the plate's one message in HITS_CHANNEL (once): its hits by well, each linked to its
               reply, and the plate map; a verdict on a well's reply updates it (workflow.Clicks).

A plate for the Batch API holds its plate_image jobs until its batch has answered (bot/slack/plate_batch.py);
Retry failed wells queues the wells whose model call failed again (bot/slack/plate_retry.py): the summary
then runs again and replaces the map and the CSV. A hit already answered for the same drop in an earlier
inspection of the plate is not posted again: the summary and the hits channel link to that reply.
"""
from __future__ import annotations

import logging
import tempfile
import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import PurePosixPath
from typing import Callable, Mapping, Sequence

from slack_sdk.errors import SlackApiError

from bot.classifier import ModelError
from bot.config import Settings
from bot.images import ImageError
from bot.models import Call, Inspection, Job
from bot.plates.archive import ArchiveError, Skip, ZipLimits, open_zip, read_image, survey
from bot.categories import hits_present
from bot.plates.compare import Comparison, compare
from bot.plates.history import inspection_dating
from bot.plates.naming import file_stem, plate_name, plate_positions
from bot.plates.platemap import PlateView, plate_map_png
from bot.plates.report import (PlateImage, calls_csv, hit_images, image_outcomes, labels_of,
                               not_classified_positions, plate_failure_message, plate_view, position_payload,
                               progress_text, summary_message, with_upload_refused)
from bot.plates.retry import WellsRetry, is_unreadable
from bot.plates.wells import Position
from bot.screens.chemistry import PlateConditions
from bot.ratelimit import Priority
from bot.queue import Handler, RetryLater
from bot.render import Message
from bot.slack.files import DownloadError
from bot.slack.history import gallery_files, inspection_taken
from bot.slack.plate_batch import batch_hold, queue_plate_batch
from bot.slack.screens import attach_screen, zip_tables
from bot.slack.service_notices import show_plate_progress
from bot.slack.workflow import FAILED_REACTION, BudgetSpent, Workflow

log = logging.getLogger(__name__)

PROGRESS_EVERY = 3.0  # seconds between updates of a plate's progress message
NORMALISERS = 2  # images of a plate normalised at once (Pillow decodes outside the GIL); each holds one image
MB = 1024 * 1024

Reader = Callable[[str], bytes]  # an image's name -> its bytes


def zip_limits(settings: Settings) -> ZipLimits:
    return ZipLimits(max_images=settings.max_zip_images, max_members=settings.max_zip_members,
                     max_total_bytes=settings.max_zip_total_mb * MB, max_member_bytes=settings.max_zip_member_mb * MB,
                     max_ratio=settings.max_zip_ratio)


def image_label(path: str, position: Position | None) -> str:
    """How a plate's image is named in its replies: `B4 · 12345_B04_1.jpg`, `B4 drop 2 · ...`."""
    name = PurePosixPath(path).name
    if position is None:
        return name
    return f"{position.well if position.drop == 1 else position} · {name}"


@dataclass
class PlateJobs:
    flow: Workflow

    def run(self, job: Job) -> None:
        try:
            if "files" in job.payload:
                self._read_message_images(job)
            else:
                self._read_zip(job)
        except (ArchiveError, DownloadError) as error:
            if getattr(error, "retryable", False):
                raise RetryLater(str(error)) from error
            log.warning("plate job %s (%s) failed: %s", job.id, job.file_name, error)
            self._fail(job, str(error))
            return
        self.flow.store.finish_job(job.id, "done")

    def give_up(self, job: Job, reason: str) -> None:
        self._fail(job, f"I could not read {job.file_name}: {reason}. Upload it again in a few minutes.")

    def _read_zip(self, job: Job) -> None:
        settings, files = self.flow.services.settings, self.flow.files
        file = files.complete({"id": job.file_id, **job.payload})
        name = file.get("name") or job.file_name
        limits = zip_limits(settings)
        with tempfile.TemporaryFile() as spool:
            try:
                files.download_to(file, spool, settings.max_zip_download_mb * MB)
            except DownloadError as error:
                raise DownloadError(f"{name}: {error}", retryable=error.retryable) from error
            with open_zip(spool, name, limits) as archive:
                contents = survey(archive, name, limits)
                entries = {entry.name: entry for entry in contents.images}
                skipped = {reason.name: count for reason, count in contents.skipped_counts().items()}
                tables = zip_tables(archive, contents, limits, settings.max_screen_kb * 1024)
                self._inspect(job, name, list(entries), skipped,
                              lambda path: read_image(archive, entries[path], limits), tables)

    def _read_message_images(self, job: Job) -> None:
        files = self.flow.files
        records = {file["name"]: file for file in job.payload["files"]}
        self._inspect(job, "", list(records), {}, lambda name: files.download(files.complete(records[name])))

    def _inspect(self, job: Job, source: str, paths: list[str], skipped: dict[str, int], read: Reader,
                 tables: Sequence[tuple[str, bytes]] = ()) -> None:
        """Record the inspection, post its progress message and queue a job per image not queued yet; the
        plate's screen (named in the upload's text, or a screen file among the zip's `tables`) is set first."""
        store, poster = self.flow.store, self.flow.poster
        plate = (plate_name(source or None, paths) or plate_name(job.payload.get("plate") or None, [])
                 or f"plate of {_when(job.message_ts)}")
        inspection = store.start_inspection(job, plate, source, len(paths), skipped)
        attach_screen(self.flow, job, inspection, tables)
        store.date_inspection(inspection.id, inspection_dating(source or job.payload.get("plate", ""), paths,
                                                               float(job.message_ts), time.time(),
                                                               "zip" if source else "message"))
        if not inspection.progress_ts:
            progress_ts = poster.reply(job, Message(progress_text(inspection.plate_name, 0, len(paths))))
            store.update_inspection(inspection.id, progress_ts=progress_ts)
        positions = plate_positions(paths, inspection.plate_name)
        queued = {queued.payload["path"] for queued in store.inspection_jobs(inspection.id)}
        run_after = batch_hold(self.flow, job)  # 0: classified at once; else held for the Batch API
        with ThreadPoolExecutor(NORMALISERS, thread_name_prefix=f"plate-{job.id}") as pool:
            window: deque[tuple[str, Future[dict[str, str]]]] = deque()  # read, being normalised
            for path in (path for path in paths if path not in queued):
                window.append((path, pool.submit(self._stored, path, self._fetched(path, read))))
                if len(window) > NORMALISERS:
                    self._queue_image(job, inspection.id, positions, *window.popleft(), run_after)
            while window:
                self._queue_image(job, inspection.id, positions, *window.popleft(), run_after)
        if run_after:
            queue_plate_batch(self.flow, job, inspection.id)

    def _queue_image(self, job: Job, inspection_id: int, positions: Mapping[str, Position | None], path: str,
                     stored: Future[dict[str, str]], run_after: float) -> None:
        payload = {"path": path, **position_payload(positions[path]), **stored.result()}
        self.flow.store.enqueue("plate_image", job.channel, job.message_ts, job.thread_ts,
                                f"plate:{inspection_id}:{path}", image_label(path, positions[path]), job.user_id,
                                payload, inspection_id, run_after)
        self.flow.wake()

    @staticmethod
    def _fetched(path: str, read: Reader) -> bytes | str:
        """One image's bytes (read one at a time: a zip's members, a message's files), or why not."""
        try:
            return read(path)
        except DownloadError as error:
            if error.retryable:
                raise RetryLater(str(error)) from error
            return str(error)
        except ArchiveError as error:
            return str(error)

    def _stored(self, path: str, data: bytes | str) -> dict[str, str]:
        """Normalise one image and store it: its sha256, or the error to list in the summary."""
        if isinstance(data, str):
            return {"error": data}
        try:
            image = self.flow.services.normalise(data, PurePosixPath(path).name)
        except ImageError as error:
            return {"error": str(error)}
        self.flow.store.save_image(image)
        return {"sha256": image.sha256}

    def _fail(self, job: Job, reason: str) -> None:
        poster = self.flow.poster
        poster.react(job.channel, job.message_ts, FAILED_REACTION, add=True)
        self.flow.fail(job, plate_failure_message(reason), reason)
        self.flow.stop_working(job)


@dataclass
class PlateImageJobs:
    flow: Workflow

    def run(self, job: Job) -> None:
        store = self.flow.store
        error = job.payload.get("error")
        call = store.call(job.call_id) if job.call_id else None
        if call is None and error is None:
            try:
                call, error = self._classify(job)
            except ModelError as model_error:
                if model_error.retryable:
                    raise RetryLater(str(model_error)) from model_error
                call, error = None, str(model_error)
        if call is not None and self.flow.services.prompt_set.is_hit(call.label) \
                and not store.earlier_replies(job.inspection_id or 0, job.id):
            reply_ts = self.flow.poster.reply(job, self.flow.call_reply(job, call))  # (a hit posted before is linked)
            store.update_job(job.id, "replied", reply_ts=reply_ts)
        self._show_progress(job, classified=call is not None)
        store.finish_job(job.id, "done" if call else "failed", error=error)

    def give_up(self, job: Job, reason: str) -> None:
        if job.call_id:  # the call is made: only posting the hit failed, and that is never given up
            raise RetryLater(f"still cannot post job {job.id}'s call: {reason}")
        self.flow.store.finish_job(job.id, "failed", error=reason)

    def _classify(self, job: Job) -> tuple[Call | None, str | None]:
        store = self.flow.store
        image = store.image(job.payload["sha256"])
        if image is None:
            return None, "the image is no longer stored; upload the plate again"
        try:
            call = self.flow.classify(image, job.channel, Priority.BULK)  # a plate's images give way to questions
        except BudgetSpent as refusal:  # not classified, for Retry failed wells once the budget is raised
            return None, str(refusal)
        store.update_job(job.id, "classified", call_id=call.id)
        return call, None

    def _show_progress(self, job: Job, *, classified: bool) -> None:
        """Update the progress message (this image counted), unless another worker did very recently.
        Cosmetic: a failure is only logged."""
        store = self.flow.store
        inspection = store.inspection(job.inspection_id) if job.inspection_id else None
        if not inspection or not inspection.progress_ts or not store.progress_due(inspection.id, PROGRESS_EVERY):
            return
        done, unreadable, not_classified = store.inspection_outcomes(inspection.id)  # this image is not ended yet
        if classified:
            done += 1
        elif is_unreadable(job):
            unreadable += 1
        else:
            not_classified += 1
        show_plate_progress(self.flow, inspection, (done, unreadable, not_classified))


@dataclass(frozen=True)
class ComposedSummary:
    images: list[PlateImage]
    comparison: Comparison | None
    message: Message
    conditions: PlateConditions | None


@dataclass
class PlateSummaries:
    flow: Workflow

    def run(self, job: Job) -> None:
        store, poster = self.flow.store, self.flow.poster
        inspection = store.inspection(job.inspection_id) if job.inspection_id else None
        if inspection is None:
            store.finish_job(job.id, "done")
            return
        jobs = store.inspection_jobs(inspection.id)
        if any(image.state not in {"done", "failed"} for image in jobs):
            store.finish_job(job.id, "done")  # an image was retried: its end queues this job again
            return
        composed = self.compose(inspection, jobs)
        images, comparison, summary = composed.images, composed.comparison, composed.message
        reply_ts = poster.reply(job, summary)
        store.update_job(job.id, "replied", reply_ts=reply_ts)  # a summary queued again updates this one
        superseded = store.stale_plate_files(inspection.id)  # wells were retried: new map and CSV
        if not inspection.uploaded or superseded is not None:
            try:
                taken = inspection_taken(store, inspection)
                self._upload_files(job, inspection, plate_view(inspection.plate_name, taken, images,
                                                               self.flow.services.prompt_set.categories, comparison),
                                   images, composed.conditions)
            except SlackApiError as error:  # a fault that may pass became RetryLater: this one will not
                log.error("plate inspection %s: Slack refused the map and CSV: %s", inspection.id, error)
                poster.update(job.channel, reply_ts, with_upload_refused(summary, str(error.response.get("error"))))
                superseded = None  # the old ones stay: they are all there is
        self._share_hits(store.inspection(inspection.id) or inspection, images)  # with the map's id as it is now
        for file_id in superseded or []:  # once the hits channel's message shows the new map
            poster.delete_file(file_id)
        classified, unreadable, not_classified = image_outcomes(images)
        if inspection.progress_ts:
            poster.update(job.channel, inspection.progress_ts, Message(progress_text(
                inspection.plate_name, classified, len(images), unreadable, not_classified) + " · done"))
        for name in self._reactions(images):
            poster.react(job.channel, job.message_ts, name, add=True)
        if job.payload.get("again") and not store.upload_has_failures(job.channel, job.message_ts):
            poster.react(job.channel, job.message_ts, FAILED_REACTION, add=False)  # its retried wells are answered
        store.update_inspection(inspection.id, finished_at=time.time())
        store.finish_job(job.id, "done")
        self.flow.stop_working(job)

    def give_up(self, job: Job, reason: str) -> None:
        raise RetryLater(f"still cannot post the plate's summary: {reason}")

    def compose(self, inspection: Inspection, jobs: Sequence[Job]) -> ComposedSummary:
        """The inspection's images, what changed since the plate's last inspection, its screen's conditions
        and the summary as it reads now: Retry failed wells for wells whose model call failed, links to hits
        answered before."""
        store = self.flow.store
        images = self.flow.plate_images(jobs)
        previous = store.previous_inspection(inspection)
        before = self.flow.plate_images(store.inspection_jobs(previous.id)) if previous else None
        comparison = compare(labels_of(before), labels_of(images), not_classified_positions(before),
                             hits=self.flow.services.prompt_set.hits) if before is not None else None
        skipped = {Skip[name]: count for name, count in inspection.skipped.items()}
        earlier = {path: self.flow.reply_link(reply) for path, reply in self.flow.earlier_replies(inspection).items()}
        conditions = self.flow.plate_screens.conditions(inspection)  # read once: summary, CSV and gallery
        summary = summary_message(inspection.plate_name, images, self.flow.services.prompt_set.categories, comparison,
                                  skipped, retry=WellsRetry(inspection.id, store.retry_rounds(inspection.id)),
                                  earlier_replies=earlier, conditions=conditions,
                                  screen_note=store.screen_note(inspection.id))
        return ComposedSummary(images, comparison, summary, conditions)

    def _upload_files(self, job: Job, inspection: Inspection, view: PlateView, images: Sequence[PlateImage],
                      conditions: PlateConditions | None) -> None:
        """The plate map (PNG), every call (CSV) and the gallery of its hits (PNGs) in the thread; their ids
        are kept (the map's for the hits channel; all to delete them when a retry brings newer ones)."""
        stem, name, store = file_stem(inspection.plate_name), inspection.plate_name, self.flow.store
        map_file_id, csv_file_id, *gallery_ids = self.flow.poster.upload(job.channel, thread_ts=job.thread_ts, files=[
            {"content": plate_map_png(view), "filename": f"{stem}_map.png", "title": f"Plate map of {name}"},
            {"content": calls_csv(images, conditions), "filename": f"{stem}_calls.csv",
             "title": f"Every call of {name}"},
            *gallery_files(store, inspection, stem, view.taken, images, view.new_hits, conditions, view.categories),
        ])
        store.save_plate_files(inspection.id, map_file_id, csv_file_id)
        store.save_gallery_files(inspection.id, gallery_ids)

    def _share_hits(self, inspection: Inspection, images: Sequence[PlateImage]) -> None:
        """A plate with crystal hits goes to HITS_CHANNEL as one message, a job of its own (so it is posted
        once, however often the summary runs); a summary run again updates that message."""
        hits_channel = self.flow.hits_channel
        if not hits_channel or inspection.channel == hits_channel or self.flow.refresh_plate_hits(inspection):
            return
        if hit_images(images, self.flow.services.prompt_set.categories):
            self.flow.store.enqueue("plate_hits", inspection.channel, inspection.message_ts, inspection.thread_ts,
                                    f"plate_hits:{inspection.id}", inspection.plate_name, inspection.user_id,
                                    {"hits_channel": hits_channel}, inspection.id)
            self.flow.wake()

    def _reactions(self, images: Sequence[PlateImage]) -> list[str]:
        """The reaction of each hit category found (:gem: for crystals), else of the most frequent category;
        :warning: as well when an image could not be read or classified."""
        prompt_set = self.flow.services.prompt_set
        counts = Counter(image.call.label for image in images if image.call)
        hits = [category.reaction for category in hits_present(counts, prompt_set.categories)]
        names = hits or ([prompt_set.category(counts.most_common(1)[0][0]).reaction] if counts else [])
        return names + ([FAILED_REACTION] if any(image.call is None for image in images) else [])


@dataclass
class PlateHits:
    """A plate's crystal hits posted in the hits channel as one message; its ts is kept so a verdict on a
    well's reply updates it too."""

    flow: Workflow

    def run(self, job: Job) -> None:
        store = self.flow.store
        inspection = store.inspection(job.inspection_id) if job.inspection_id else None
        if inspection:
            reply_ts = self.flow.poster.post(job, job.payload["hits_channel"], self.flow.plate_hits_post(inspection))
            store.update_job(job.id, "replied", reply_ts=reply_ts)
        store.finish_job(job.id, "done")

    def give_up(self, job: Job, reason: str) -> None:
        self.flow.abandon(job, reason)


def _when(ts: str) -> str:
    return datetime.fromtimestamp(float(ts), timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def plate_handlers(flow: Workflow) -> dict[str, Handler]:
    return {"plate": PlateJobs(flow), "plate_image": PlateImageJobs(flow), "plate_summary": PlateSummaries(flow),
            "plate_hits": PlateHits(flow)}
