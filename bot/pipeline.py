"""What happens to an upload and to a question in a thread, step by step.

Upload: accept (on the listener thread: mark the message, record one job per image) -> on a worker:
complete the file record -> download -> normalise -> classify -> store -> reply in the thread ->
when the message's last image is done, swap the working reaction for the outcome. Each step's
failure becomes a short reply that says what to do; the log gets the detail.
"""
from __future__ import annotations

import logging
from concurrent.futures import Executor
from dataclasses import replace
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.classifier import ModelError
from bot.images import ImageError
from bot.prompt import ThreadImage, bounded_transcript, follow_up_request
from bot.render import Message, answer_message, call_message, failure_message, percent
from bot.services import Services
from bot.slack.files import DownloadError, SlackFiles, is_image, is_pending
from bot.models import Job

log = logging.getLogger(__name__)

WORKING_REACTION = "eyes"
FAILED_REACTION = "warning"
UNEXPECTED = "something went wrong on my side; the details are in the bot's log. Try again later."


class Pipeline:
    def __init__(self, services: Services, client: WebClient, files: SlackFiles, executor: Executor,
                 bot_user_id: str) -> None:
        self.services = services
        self.store = services.store
        self.client = client
        self.files = files
        self.executor = executor
        self.bot_user_id = bot_user_id

    def close(self) -> None:
        """Finish the queued jobs (they are recorded, so none is lost)."""
        self.executor.shutdown(wait=True)

    # --- uploads -----------------------------------------------------------------------------

    def accept_upload(self, event: dict[str, Any]) -> None:
        """Record a job per new image of a file_share message and queue it."""
        channel, ts = event["channel"], event["ts"]
        thread_ts = event.get("thread_ts") or ts
        candidates = [f for f in event.get("files", []) if is_image(f) or is_pending(f)]
        jobs = [(job_id, f) for f in candidates
                if (job_id := self.store.create_job(channel, ts, thread_ts, f["id"], f.get("name") or f["id"],
                                                    event.get("user", ""))) is not None]
        if jobs:
            self._react(channel, ts, WORKING_REACTION, add=True)
        for job_id, file in jobs:
            self.executor.submit(self.run_job, job_id, file)

    def run_job(self, job_id: int, file: dict[str, Any]) -> None:
        job = self.store.job(job_id)
        assert job is not None
        try:
            self._process(job, file)
        except (DownloadError, ImageError, ModelError) as error:
            log.warning("job %s (%s) failed: %s", job.id, job.file_name, error)
            self._fail(job, str(error))
        except Exception:
            log.exception("job %s (%s) failed unexpectedly", job.id, job.file_name)
            self._fail(job, UNEXPECTED)
        finally:
            self._finish_message(job.channel, job.message_ts)

    def _process(self, job: Job, file: dict[str, Any]) -> None:
        file = self.files.complete(file)
        if not is_image(file):
            log.info("job %s: %s is not an image after all; left alone", job.id, file.get("name"))
            self.store.discard_job(job.id)
            return
        if file.get("name") and file["name"] != job.file_name:  # a file still being scanned had no name yet
            job = replace(job, file_name=file["name"])
            self.store.update_job(job.id, job.state, file_name=job.file_name)
        data = self.files.download(file)
        self.store.update_job(job.id, "downloaded")
        _, call = self.services.classify_bytes(data, job.file_name)
        self.store.update_job(job.id, "classified", call_id=call.id)
        message = call_message(job.id, job.file_name, call, self.services.prompt_set.categories)
        reply_ts = self._post(job.channel, job.thread_ts, message)
        self.store.update_job(job.id, "replied", reply_ts=reply_ts)

    def _fail(self, job: Job, reason: str) -> None:
        self.store.update_job(job.id, "failed", error=reason)
        try:
            self._post(job.channel, job.thread_ts, failure_message(job.file_name, reason))
        except SlackApiError:
            log.exception("could not post the failure reply for job %s", job.id)

    def _finish_message(self, channel: str, message_ts: str) -> None:
        """Once every image of the message is done: outcome reactions instead of the working one."""
        jobs = self.store.jobs_of_message(channel, message_ts)
        if any(job.state not in {"replied", "failed"} for job in jobs):
            return  # the last job to finish does it (two finishing together both may: reacting twice is harmless)
        for name in self._outcome_reactions(jobs):
            self._react(channel, message_ts, name, add=True)
        self._react(channel, message_ts, WORKING_REACTION, add=False)

    def _outcome_reactions(self, jobs: list[Job]) -> list[str]:
        reactions: list[str] = []
        for job in jobs:
            call = self.store.call(job.call_id) if job.call_id and job.state == "replied" else None
            name = self.services.prompt_set.category(call.label).reaction if call else FAILED_REACTION
            if name not in reactions:
                reactions.append(name)
        return reactions

    # --- feedback ------------------------------------------------------------------------------

    def apply_feedback(self, job_id: int, user_id: str, verdict: str, label: str) -> None:
        """Store a confirmation or correction and show it on the call's message."""
        job = self.store.job(job_id)
        call = self.store.call(job.call_id) if job and job.call_id else None
        if not job or not call or not job.reply_ts:
            log.warning("feedback for unknown job %s ignored", job_id)
            return
        self.store.add_feedback(job_id, user_id, verdict, label)
        message = call_message(job.id, job.file_name, call, self.services.prompt_set.categories,
                               self.store.latest_feedback(job_id))
        self.client.chat_update(channel=job.channel, ts=job.reply_ts, text=message.text, blocks=message.blocks)

    # --- questions in a thread ---------------------------------------------------------------

    def should_answer(self, event: dict[str, Any]) -> bool:
        """A person's message in a thread of the bot's calls, or one that mentions the bot."""
        mentioned = f"<@{self.bot_user_id}>" in event.get("text", "")
        in_call_thread = bool(event.get("thread_ts")) and bool(self.store.thread_jobs(event["channel"], event["thread_ts"]))
        return mentioned or in_call_thread

    def accept_question(self, event: dict[str, Any]) -> None:
        self.executor.submit(self.answer_question, event)

    def answer_question(self, event: dict[str, Any]) -> None:
        channel = event["channel"]
        thread_ts = event.get("thread_ts") or event["ts"]
        try:
            request = follow_up_request(self.services.prompt_set, self.services.classifier.options,
                                        self._thread_images(channel, thread_ts),
                                        self._transcript(channel, thread_ts, event["ts"]),
                                        self._speaker_text(event))
            answer = answer_message(self.services.classifier.respond(request).text)
        except ModelError as error:
            log.warning("follow-up in %s/%s failed: %s", channel, thread_ts, error)
            answer = Message(f":warning: I could not answer: {error}")
        except Exception:
            log.exception("follow-up in %s/%s failed unexpectedly", channel, thread_ts)
            answer = Message(f":warning: I could not answer: {UNEXPECTED}")
        self._post(channel, thread_ts, answer)

    def _thread_images(self, channel: str, thread_ts: str) -> list[ThreadImage]:
        images = []
        for job in self.store.thread_jobs(channel, thread_ts):
            call = self.store.call(job.call_id) if job.call_id else None
            image = self.store.image_of_call(job.call_id) if job.call_id else None
            if call and image:
                summary = (f"Image {job.file_name}: your call was {call.label} "
                           f"(confidence {percent(call.confidence)}). {call.explanation}")
                feedback = self.store.latest_feedback(job.id)
                if feedback:
                    summary += f" The team {feedback.verdict} it" + (
                        f" as {feedback.label}." if feedback.verdict == "corrected" else ".")
                images.append(ThreadImage(image, summary))
        return images

    def _transcript(self, channel: str, thread_ts: str, question_ts: str) -> list[str]:
        """The thread before the question, oldest first, within FOLLOW_UP_HISTORY_CHARS."""
        messages = self.client.conversations_replies(channel=channel, ts=thread_ts, limit=200)["messages"]
        lines = [self._speaker_text(m) for m in messages if m.get("ts") != question_ts]
        return bounded_transcript(lines, self.services.settings.follow_up_history_chars)

    def _speaker_text(self, message: dict[str, Any]) -> str:
        speaker = "you (the bot)" if message.get("user") == self.bot_user_id or message.get("bot_id") else \
            f"<@{message.get('user', '?')}>"
        return f"{speaker}: {message.get('text', '')}"

    # --- Slack calls ---------------------------------------------------------------------------

    def _post(self, channel: str, thread_ts: str, message: Message) -> str:
        response = self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=message.text,
                                                blocks=message.blocks)
        return response["ts"]

    def _react(self, channel: str, ts: str, name: str, *, add: bool) -> None:
        """Add or remove a reaction; a reaction already there (or gone) is not an error."""
        try:
            if add:
                self.client.reactions_add(channel=channel, timestamp=ts, name=name)
            else:
                self.client.reactions_remove(channel=channel, timestamp=ts, name=name)
        except SlackApiError as error:
            if error.response.get("error") not in {"already_reacted", "no_reaction"}:
                log.warning("reaction %s on %s/%s failed: %s", name, channel, ts, error.response.get("error"))
