"""A plate that can wait goes through OpenAI's Batch API (PLATE_BATCH=true, or `batch` in the upload's
message): half the price, results within 24 h. The queue runs it as a job of its own (plate_batch).

The plate job reads and stores the images as usual, but queues their plate_image jobs to run much later
(held) and queues this job. It sends the images OpenAI has not answered yet (the cache answers the others
at once) in one batch or a few, records each batch before anything else (a restart goes on polling it),
and the plate's progress message says they are queued at OpenAI and since when. Then it polls: each poll
is this job queued again after PLATE_BATCH_POLL_SECONDS (no sleeping thread, no attempt used up). When a
batch has ended, each image's call is stored (at the batch price) and its plate_image job freed: it posts
the hit reply and counts in the progress like any plate image, and the last one queues the summary. An
image the batch did not answer (a failed line, an expired batch) ends "not classified" with the reason,
for Retry failed wells.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import openai

from bot.batch import ENDED, BatchOutput, batch_key, batch_line, fetch_batch_output, find_batch, submit_batch
from bot.budget import BudgetState
from bot.classifier import Prompt, describe_api_error, is_transient
from bot.models import Inspection, Job, PlateBatch
from bot.plate_batch import HOLD_SECONDS, batch_answers, chunks, queued_text
from bot.queue import RetryLater
from bot.render import clip
from bot.slack.workflow import Workflow

log = logging.getLogger(__name__)

JOB_ENDED = ("done", "failed")
FIND_MARGIN_SECONDS = 600.0  # a plate's lost batch is looked for from this long before the plate began (clocks differ)


def batch_hold(flow: Workflow, plate_job: Job) -> float:
    """When a plate's images are due: at once (0), or, for a plate sent through the Batch API, only once
    its batch has answered (the batch job frees them; HOLD_SECONDS is the latest)."""
    wanted = flow.services.settings.plate_batch or plate_job.payload.get("batch")
    return time.time() + HOLD_SECONDS if wanted else 0.0


def queue_plate_batch(flow: Workflow, plate_job: Job, inspection_id: int) -> None:
    flow.store.enqueue("plate_batch", plate_job.channel, plate_job.message_ts, plate_job.thread_ts,
                       f"plate_batch:{inspection_id}", "plate batch", plate_job.user_id, {}, inspection_id)
    flow.wake()


@dataclass
class PlateBatches:
    flow: Workflow

    def run(self, job: Job) -> None:
        store = self.flow.store
        inspection = store.inspection(job.inspection_id) if job.inspection_id else None
        if inspection is None:
            store.finish_job(job.id, "done")
            return
        try:
            self._send(inspection)
            ended = self._collect(inspection)
        except RetryLater:
            raise
        except Exception as error:  # the detail goes to the log; the wells may show the reason one day
            log.exception("plate inspection %s: the batch job failed", inspection.id)
            raise RetryLater("the bot could not handle OpenAI's batch") from error
        if ended:
            store.finish_job(job.id, "done")
        else:
            store.poll_later(job.id, self.flow.services.settings.plate_batch_poll_seconds)

    def give_up(self, job: Job, reason: str) -> None:
        """The batch could not be sent or read: its images still waiting end not classified (Retry failed
        wells classifies them directly); those already answered go on."""
        store = self.flow.store
        for image_job in self._held(job.inspection_id or 0, pending=set()):
            if not image_job.call_id:
                store.finish_job(image_job.id, "failed", error=f"OpenAI's Batch API did not answer: {reason}")
        self._free(job.inspection_id or 0, pending=set())
        self.flow.abandon(job, reason)

    # --- sending ---------------------------------------------------------------------------------

    def _send(self, inspection: Inspection) -> None:
        """Send the images that wait and are in no batch yet (a plate job may have been cut short)."""
        store, classifier = self.flow.store, self.flow.services.classifier
        gateway, prompt = classifier.gateway, classifier.prompt()
        sent = {int(job_id) for batch in store.plate_batches(inspection.id) for job_id in batch.entries}
        waiting = [image_job for image_job in self._held(inspection.id, pending=sent)
                   if "sha256" in image_job.payload and not image_job.call_id]
        if waiting and self.flow.check_budget(inspection.channel) is BudgetState.SPENT:
            log.info("plate inspection %s: the monthly budget is spent, no batch sent", inspection.id)
            return  # freed, each image says so (as a plate outside the Batch API does)
        sha256 = {image_job.id: image_job.payload["sha256"] for image_job in waiting}
        sent_at = None
        for chunk in chunks(self._requests(waiting, prompt)):
            entries = {str(job_id): sha256[job_id] for job_id, _ in chunk}
            key = batch_key(classifier.options.model, prompt.fingerprint, entries)
            try:
                batch_id = find_batch(gateway.client, key, inspection.created_at - FIND_MARGIN_SECONDS)
                if batch_id:
                    log.warning("plate inspection %s: batch %s was sent before but not recorded: polled, not sent "
                                "again", inspection.id, batch_id)
                else:
                    metadata = {"plate": clip(inspection.plate_name, 500), "inspection": str(inspection.id), "key": key}
                    batch_id = submit_batch(gateway.client, (line for _, line in chunk), gateway.endpoint(),
                                            str(classifier.prompt_set.folder.resolve()), metadata)
            except openai.APIError as error:
                log.error("plate inspection %s: the batch was not taken: %s", inspection.id, error)
                raise RetryLater(describe_api_error(error, gateway.client)) from error
            sent_at = store.save_plate_batch(inspection.id, batch_id, classifier.options.model, prompt.fingerprint,
                                             entries)
            log.info("plate inspection %s: %s images sent in batch %s", inspection.id, len(chunk), batch_id)
        if sent_at is not None:
            self._show_queued(inspection, store.plate_batches(inspection.id))

    def _requests(self, waiting: Sequence[Job], prompt: Prompt) -> Iterator[tuple[int, str]]:
        """(image job id, its request line) for each image the cache cannot answer; an answer from the
        cache is recorded at once (that job is freed with the others)."""
        store, classifier = self.flow.store, self.flow.services.classifier
        for image_job in waiting:
            image = store.image(image_job.payload["sha256"])
            if image is None:
                continue  # its bytes are gone: freed, the plate image job says so
            call = classifier.cached(image, prompt)
            if call is not None:
                store.update_job(image_job.id, "classified", call_id=call.id)
                continue
            request = classifier.gateway.wire_request(classifier.request(image, prompt))
            yield image_job.id, batch_line(str(image_job.id), request, classifier.gateway.endpoint())

    def _show_queued(self, inspection: Inspection, batches: Sequence[PlateBatch]) -> None:
        """The progress message: queued at OpenAI since when. Cosmetic: a failure is only logged."""
        if not inspection.progress_ts:
            return
        queued = sum(len(batch.entries) for batch in batches if not batch.collected)
        classified = sum(1 for image_job in self.flow.store.inspection_jobs(inspection.id) if image_job.call_id)
        self.flow.show_progress(inspection, queued_text(inspection.plate_name, classified, inspection.images, queued,
                                                        batches[0].submitted_at))

    # --- collecting ------------------------------------------------------------------------------

    def _collect(self, inspection: Inspection) -> bool:
        """Store the answers of every batch that has ended and free their images; True once all have."""
        store, client = self.flow.store, self.flow.services.classifier.client
        all_ended = True
        for batch in store.plate_batches(inspection.id):
            if batch.collected:
                continue
            try:
                output = fetch_batch_output(client, batch.batch_id)
            except openai.APIError as error:
                if not is_transient(error):
                    raise RetryLater(describe_api_error(error, client)) from error
                log.warning("plate inspection %s: batch %s could not be asked (%s); asking again later",
                            inspection.id, batch.batch_id, error)
                output = None
            if output is None or output.status not in ENDED:
                all_ended = False
                continue
            self._store_answers(batch, output)
            store.collected_plate_batch(batch.batch_id)
        pending = {int(job_id) for batch in store.plate_batches(inspection.id) if not batch.collected
                   for job_id in batch.entries}
        self._free(inspection.id, pending)
        return all_ended

    def _store_answers(self, batch: PlateBatch, output: BatchOutput) -> None:
        """Each image's call stored (its job keeps waiting until freed), or its job ended not classified."""
        store, services = self.flow.store, self.flow.services
        try:
            answers = batch_answers(output, [int(job_id) for job_id in batch.entries], batch.model,
                                    services.prompt_set.labels, services.prices, services.prompt_set.schema)
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            log.error("batch %s: its output could not be read: %r", batch.batch_id, error)
            raise RetryLater("OpenAI's batch results could not be read") from error
        log.info("batch %s %s: %s of %s images answered", batch.batch_id, output.status,
                 sum(1 for answer in answers.values() if answer.call), len(answers))
        for job_id, answer in answers.items():
            image_job = store.job(job_id)
            if image_job is None or image_job.state in JOB_ENDED or image_job.call_id:
                continue  # stored before a restart, or ended some other way
            image = store.image(batch.entries[str(job_id)]) if answer.call else None
            if answer.call and image:
                call = store.save_call(image, answer.call, batch.fingerprint)
                store.update_job(job_id, "classified", call_id=call.id)
            elif not answer.call:
                store.finish_job(job_id, "failed", error=answer.error)

    # --- the plate's images ------------------------------------------------------------------------

    def _held(self, inspection_id: int, pending: Iterable[int]) -> list[Job]:
        """The inspection's images not ended, outside the batches `pending` (still at OpenAI)."""
        pending = set(pending)
        return [image_job for image_job in self.flow.store.inspection_jobs(inspection_id)
                if image_job.state not in JOB_ENDED and image_job.id not in pending]

    def _free(self, inspection_id: int, pending: set[int]) -> None:
        """Every image not waiting for a batch is due now: answered ones post their hits, the others end."""
        self.flow.store.release_jobs([image_job.id for image_job in self._held(inspection_id, pending)])
        self.flow.wake()


def batch_handlers(flow: Workflow) -> dict[str, PlateBatches]:
    return {"plate_batch": PlateBatches(flow)}
