"""The lab hears, early and once, that the model service holds its calls back (issue 15, item 3).

service_notice: one job per upload (or question), keyed by its message, so it is posted once however
                many of its images wait, across restarts and processes (and once more after each Retry
                pressed on it: Retry sets an ended notice aside). The queue tells `ServiceNotices`
                when a job went back to wait for the service (a rate limit, an outage); the upload's first
                such wait queues its notice job, due SERVICE_NOTICE_DELAY_SECONDS later. The job then looks
                every SERVICE_NOTICE_CHECK_SECONDS while the upload's calls wait:
                - the first time anything still waits (and the service still holds back), it posts the
                  notice in the thread (bot/service_notices.py's words);
                - after that, it updates the notice when its words change (fewer images, a rate limit
                  that became an outage), and a plate's progress message with it;
                - once none of the upload's calls waits any more (answered, or ended with a Retry), the
                  notice is deleted: the answers took its place. A notice never posted is never posted
                  late. When the upload's work ends (workflow.stop_working; a question's answer), a notice
                  not posted ends at once and a posted one is due at once (Workflow.notice_done).
A plate's progress message shows the wait too (`show_plate_progress`, wherever the progress is drawn).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from bot.models import Inspection, Job
from bot.plates.report import progress_text
from bot.provider import snapshots
from bot.queue import Handler, Wait
from bot.service_notices import HeldBack, held_back, notice_message, with_progress_wait
from bot.service_state import OK, WAIT_OUTAGE, WAIT_RATE_LIMIT
from bot.slack.workflow import Workflow
from bot.store.notices import NOTICE_KEY, NOTICE_KIND

NOTICED_KINDS = ("image", "plate_image", "question")


@dataclass
class ServiceNotices:
    """The queue's `on_wait`: the first wait of an upload's (or a question's) model call queues its notice."""

    flow: Workflow
    delay: float  # SERVICE_NOTICE_DELAY_SECONDS

    def job_waits(self, job: Job, wait: Wait) -> None:
        if job.kind not in NOTICED_KINDS or wait.reason not in (WAIT_RATE_LIMIT, WAIT_OUTAGE) or job.waiting:
            return  # not a model call, or not its first wait: its notice is queued already
        self.flow.store.enqueue(NOTICE_KIND, job.channel, job.message_ts, job.thread_ts, NOTICE_KEY, "", job.user_id,
                                {"question": job.kind == "question"}, run_after=time.time() + self.delay)


def upload_held_back(flow: Workflow, *, channel: str | None = None, message_ts: str | None = None,
                     inspection_id: int | None = None) -> HeldBack | None:
    """What holds an upload's (or a plate's) calls back now, if anything."""
    waits = flow.store.provider_waits(channel=channel, message_ts=message_ts, inspection_id=inspection_id)
    return held_back(waits, snapshots(flow.store)) if waits else None


def show_plate_progress(flow: Workflow, inspection: Inspection, outcomes: tuple[int, int, int]) -> None:
    """The plate's progress message: its images (classified, could not be read, not classified) ended so
    far, and what the others wait for, if they do."""
    done, unreadable, not_classified = outcomes
    progress = progress_text(inspection.plate_name, min(done, inspection.images), inspection.images, unreadable,
                             not_classified)
    held = upload_held_back(flow, inspection_id=inspection.id)
    flow.show_progress(inspection, with_progress_wait(progress, held, time.time()))


@dataclass
class ServiceNoticeJobs:
    flow: Workflow
    check_every: float  # SERVICE_NOTICE_CHECK_SECONDS

    def run(self, job: Job) -> None:
        store, poster = self.flow.store, self.flow.poster
        held = upload_held_back(self.flow, channel=job.channel, message_ts=job.message_ts)
        if held is None:
            if job.reply_ts:
                poster.delete(job.channel, job.reply_ts)  # the answers took its place
            store.finish_job(job.id, "done")
            return
        message = notice_message(held, time.time(), question=job.payload.get("question", False))
        if not job.reply_ts and self._service_ok(held):
            store.check_again(job.id, self.check_every, "")  # about to go: no need to tell anyone yet
            return
        if message.text != job.error:
            reply_ts = poster.reply(job, message)  # posted once (it finds its post after a crash), then updated
            store.update_job(job.id, "replied", reply_ts=reply_ts)
            self._refresh_progress(job)
        store.check_again(job.id, self.check_every, message.text)

    def give_up(self, job: Job, reason: str) -> None:
        self.flow.abandon(job, reason)

    def _service_ok(self, held: HeldBack) -> bool:
        return all(service.state == OK for service in snapshots(self.flow.store)
                   if not held.label or service.label == held.label)

    def _refresh_progress(self, job: Job) -> None:
        """The upload's plates' progress messages say what they wait for (no image may end meanwhile to update
        them). Cosmetic: a failure is only logged."""
        store = self.flow.store
        for inspection_id in store.upload_inspections(job.channel, job.message_ts):
            inspection = store.inspection(inspection_id)
            if not inspection or not inspection.progress_ts or inspection.finished_at:
                continue
            show_plate_progress(self.flow, inspection, store.inspection_outcomes(inspection_id))


def notice_handlers(flow: Workflow) -> dict[str, Handler]:
    return {NOTICE_KIND: ServiceNoticeJobs(flow, flow.services.settings.service_notice_check_seconds)}
