"""A deleted upload is honoured: `file_deleted`, `file_unshared` (when the file is left in no
conversation) and `message_deleted` of the upload.

The listener only records a `deletion` job, and only for a file or message the bot made calls of; the
job (on the queue, so a Slack hiccup is retried):
1. marks the upload's jobs deleted (queued ones then end quietly, bot/slack/privacy.py), removes the
   image bytes the bot kept (unless an upload not deleted shows the same image) and stops using it as a
   team example (the prompt changes back, as with Remove); the calls and verdicts stay for the statistics;
2. removes a screen read from it (a screen file, or one inside a plate's zip): no longer used, its
   conditions gone, and the plates that used it unlinked, so later replies and summaries show none;
3. deletes its copy in the hits channel: a single hit's message, and a plate's hits message loses the
   deleted wells (or goes, with the last of them).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.models import Job
from bot.plates.report import hit_images
from bot.queue import Handler
from bot.slack.workflow import Workflow
from bot.visibility import shared_nowhere

log = logging.getLogger(__name__)

DELETIONS = "deletions"  # the channel deletion jobs are filed under (they belong to no channel)
GONE_ERRORS = {"file_not_found", "file_deleted"}


@dataclass
class Deletions:
    flow: Workflow

    # --- the listeners' side ------------------------------------------------------------------------

    def accept_file_gone(self, event: dict[str, Any], how: str) -> None:
        """file_deleted or file_unshared: a job if the bot made calls of the file (Slack sends these for
        every file the bot can see)."""
        file_id = event.get("file_id") or (event.get("file") or {}).get("id")
        if file_id and self.flow.store.jobs_of_file(file_id):
            key = f"{how}:{file_id}:{event.get('event_ts', '')}"
            self._queue(key, file_id, {"file_id": file_id, "how": how})

    def accept_message_deleted(self, event: dict[str, Any]) -> None:
        channel, ts = event.get("channel", ""), event.get("deleted_ts", "")
        if channel and ts and self.flow.store.every_job_of_message(channel, ts):
            self._queue(f"message:{channel}:{ts}", ts, {"channel": channel, "message_ts": ts, "how": "message deleted"})

    def _queue(self, key: str, name: str, payload: dict[str, Any]) -> None:
        if self.flow.store.enqueue("deletion", DELETIONS, key, key, "deletion", name, "", payload) is not None:
            self.flow.wake()

    # --- the job ------------------------------------------------------------------------------------

    def run(self, job: Job) -> None:
        store, how = self.flow.store, job.payload["how"]
        if "file_id" in job.payload:
            if how == "file unshared" and not self._shared_nowhere(job.payload["file_id"]):
                log.info("file %s was unshared but is still shared elsewhere: kept", job.payload["file_id"])
                store.finish_job(job.id, "done")
                return
            jobs = store.jobs_of_file(job.payload["file_id"])
        else:
            jobs = store.every_job_of_message(job.payload["channel"], job.payload["message_ts"])
        forgotten = store.forget_upload(jobs, how)
        screens = store.forget_screens([job.id for job in jobs])
        hits = self._delete_hits(jobs)
        log.info("upload %s (%s): %s jobs marked deleted, the bytes of %s images removed, %s examples no longer "
                 "used, screens removed: %s, %s hits messages deleted or blanked", job.file_name, how, forgotten.jobs,
                 forgotten.images, forgotten.examples,
                 ", ".join(f"{s.id} {s.name!r} of {s.channel}" for s in screens) or "none", hits)
        store.finish_job(job.id, "done")

    def give_up(self, job: Job, reason: str) -> None:
        self.flow.abandon(job, reason)

    def _shared_nowhere(self, file_id: str) -> bool:
        try:
            info = self.flow.poster.client.files_info(file=file_id)
        except SlackApiError as error:
            if error.response.get("error") in GONE_ERRORS:
                return True
            raise
        return shared_nowhere(info["file"])

    def _delete_hits(self, jobs: list[Job]) -> int:
        """The upload's copies in the hits channel: single hits deleted; each plate's hits message shown
        without the deleted wells, or deleted with the last of them. How many were changed."""
        store, poster = self.flow.store, self.flow.poster
        changed = 0
        for hit in (job for job in jobs if job.kind == "hit" and job.reply_ts):
            poster.delete(hit.payload["hits_channel"], hit.reply_ts or "")
            store.forget_reply(hit.id)
            changed += 1
        for inspection_id in {job.inspection_id for job in jobs if job.kind == "plate_image" and job.inspection_id}:
            shared, inspection = store.plate_hits_of(inspection_id), store.inspection(inspection_id)
            if not (shared and shared.reply_ts and inspection):
                continue
            live = self.flow.plate_images(store.without_deleted(store.inspection_jobs(inspection_id)))
            if hit_images(live, self.flow.services.prompt_set.categories):
                poster.update(shared.payload["hits_channel"], shared.reply_ts, self.flow.plate_hits_post(inspection))
            else:
                poster.delete(shared.payload["hits_channel"], shared.reply_ts)
                store.forget_reply(shared.id)
            changed += 1
        return changed


def deletion_handlers(flow: Workflow) -> dict[str, Handler]:
    return {"deletion": Deletions(flow)}
