"""What the bot's jobs do with Slack, one handler per kind of job; the queue runs them.

image:    complete the file record -> download -> normalise -> classify -> store -> reply in the
          thread (once) -> done; the last image of a message queues its outcome job.
outcome:  the message's :eyes: gives way to the outcome reaction(s).
question: the thread's calls, images and history -> the model -> one answer in the thread.
feedback: a Confirm / Correct click -> stored -> the call's message (and its copy in the hits
          channel, or its plate's hits message there) shows it.
hit:      a hit (a call of a category with `hit = true`, e.g. crystals) is posted in HITS_CHANNEL too
          (once), with the image and a link to the thread.

The team's jobs (budget notices, exports, the Home tab) are in bot/slack/team.py, the plates' in
bot/slack/plates.py, the examples' in bot/slack/examples.py.

Before any model call the month's spend is checked against MONTHLY_BUDGET_USD: once it is reached,
uploads of images not in the cache and questions get a short reply instead of a model call.

A step that may pass (Slack's 429 or 5xx, a model request that keeps failing) raises and the queue
retries the job; a lasting failure becomes a short thread reply with a Retry button, the detail goes
to the log. A model service that rate-limits or is down makes the job wait (bot/provider.py's
ProviderWait passes through to the queue: no attempt spent); an image keeps its normalised copy
meanwhile, so it is not downloaded again.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from bot.budget import BudgetState, budget_state, month_name, month_start
from bot.classifier import ModelError
from bot.images import ImageError
from bot.models import Call, Image, Inspection, Job, MonthSpend
from bot.plates.report import (PlateImage, SharedPlate, calls_by_well_text, hit_images, plate_hits_message,
                               plate_image)
from bot.plates.history_report import with_hit_history
from bot.plates.wells import PLATE_SHAPES, wells_in_text
from bot.prompt import ThreadImage, bounded_transcript
from bot.provider import ProviderWait
from bot.ratelimit import Priority
from bot.queue import Handler, RetryLater
from bot.screens.messages import conditions_for_model, with_condition
from bot.render import (Message, RecentCall, RecentPlate, answer_message, budget_spent_reason,
                        call_message, clip, failure_message, hit_message, percent, permalink, unanswered_message)
from bot.services import Services
from bot.store import Store
from bot.slack.files import DownloadError, SlackFiles, is_image, is_zip
from bot.slack.history import hit_history
from bot.slack.plate_screens import PlateScreens
from bot.slack.posting import SlackPoster
from bot.slack.privacy import Privacy

log = logging.getLogger(__name__)

MAX_WELL_IMAGES = 6  # images of a plate's wells shown to the model for one question
WORKING_REACTION = "eyes"
FAILED_REACTION = "warning"
IMAGE_KINDS = ("image", "plate_image")  # jobs that make a call, with buttons under it
UPLOAD_OPTIONS = ("batch",)  # what an upload's message asked for, kept beside its files' records


class BudgetSpent(Exception):
    """This month's model budget is reached: no model call; str() is the reply."""


@dataclass
class Workflow:
    services: Services
    poster: SlackPoster
    files: SlackFiles
    privacy: Privacy  # who sees what; which jobs end quietly (bot/slack/privacy.py)
    wake: Callable[[], None] = lambda: None  # tells the queue new jobs are waiting (set once the queue exists)
    team_url: str = ""
    hits_channel: str = ""  # the id HITS_CHANNEL names ("" for none)
    store: Store = field(init=False)
    plate_screens: PlateScreens = field(init=False)  # the screen each plate may use, and its conditions

    def __post_init__(self) -> None:
        self.store = self.services.store
        self.plate_screens = PlateScreens(self.store, self.privacy)

    def handlers(self) -> dict[str, Handler]:
        return {"image": ImageJobs(self), "outcome": Outcomes(self), "question": Questions(self),
                "feedback": Clicks(self), "hit": Hits(self)}

    def fail(self, job: Job, message: Message, reason: str) -> None:
        """End a job as failed with its one reply saying why (posted, or the earlier reply updated)."""
        reply_ts = self.poster.reply(job, message)
        self.store.update_job(job.id, job.state, reply_ts=reply_ts)
        self.store.finish_job(job.id, "failed", error=reason)

    def start_working(self, channel: str, message_ts: str) -> None:
        """Put :eyes: on an upload whose work was just recorded; off again at once if that work has already
        ended (a job may run and end before the reaction lands, and its `stop_working` then found none to
        take off). Cosmetic: a failure is only logged."""
        self.poster.react_if_possible(channel, message_ts, WORKING_REACTION, add=True)
        if not self.store.upload_work_open(channel, message_ts):
            self.poster.react_if_possible(channel, message_ts, WORKING_REACTION, add=False)

    def stop_working(self, job: Job) -> None:
        """Take :eyes: off an upload once none of its work is left: a message may hold images and zips,
        each finishing on its own. Called after `job` has ended, so of two ending at once the later sees
        the other ended. Cosmetic: a failure is only logged."""
        if not self.store.upload_work_open(job.channel, job.message_ts):
            self.notice_done(job)
            self.poster.react_if_possible(job.channel, job.message_ts, WORKING_REACTION, add=False)

    def show_progress(self, inspection: Inspection, text: str) -> None:
        """The plate's progress message reads `text` now. Cosmetic: a failure is only logged, never fails
        the job that shows it."""
        if not inspection.progress_ts:
            return
        try:
            self.poster.update(inspection.channel, inspection.progress_ts, Message(text))
        except Exception as error:  # noqa: BLE001 - a progress line is never worth a failed job
            log.warning("could not update the progress of inspection %s: %s", inspection.id, error)

    def notice_done(self, job: Job) -> None:
        """An upload's (or a question's) calls are all answered: its service notice, if one is queued, ends now
        if it was never posted, or is due now to be deleted (bot/slack/service_notices.py)."""
        if self.store.settle_service_notice(job.channel, job.message_ts):
            self.wake()

    def abandon(self, job: Job, reason: str) -> None:
        """End a job that has no thread reply to fail with (a click, a notice, an export, a share) as
        failed; the log says which and why."""
        log.error("%s job %s (channel %s, user %s) given up: %s", job.kind, job.id, job.channel, job.user_id, reason)
        self.store.finish_job(job.id, "failed", error=reason)

    def call_reply(self, job: Job, call: Call) -> Message:
        """An image's reply; a plate's hit shows its well's condition too, with the optimisation grid buttons,
        and, when the plate was imaged before, since when it has been crystals (with History)."""
        message = call_message(job.id, job.file_name, call, self.services.prompt_set.categories,
                               self.store.latest_feedback(job.id))
        found = self.plate_screens.image_condition(job)
        if found:
            message = with_condition(message, job.id, job.payload["well"], found[1], found[0],
                                     self.services.settings.grid_sizes)
        since = hit_history(self.store, job, call, self.services.prompt_set.hits)
        return with_hit_history(message, since, job.id) if since else message

    def classified(self, job_id: int) -> tuple[Job | None, Call | None]:
        """An image job and its call (None for what is not there)."""
        job = self.store.job(job_id)
        return job, self.store.call(job.call_id) if job and job.call_id else None

    def shown_in(self, image_job: Job) -> set[str]:
        """The channels where a call's buttons are: its own, and the hits channel it (or its plate) was
        posted in (a share that ended without a post, say of a private channel, does not count)."""
        hit = self.store.hit_of(image_job)
        plate = self.store.plate_hits_of(image_job.inspection_id) if image_job.inspection_id else None
        return {image_job.channel,
                *(shared.payload["hits_channel"] for shared in (hit, plate) if shared and shared.reply_ts)}

    def hit_post(self, image_job: Job, call: Call) -> Message:
        link = permalink(self.team_url, image_job.channel, image_job.reply_ts or image_job.message_ts,
                         image_job.thread_ts)
        return hit_message(image_job, call, self.services.prompt_set.categories,
                           self.store.latest_feedback(image_job.id), link)

    def plate_images(self, jobs: Iterable[Job]) -> list[PlateImage]:
        """A plate inspection's image jobs, each with what became of it."""
        return [plate_image(job, self.store.call(job.call_id) if job.call_id else None) for job in jobs]

    def plate_link(self, inspection: Inspection) -> str:
        """A link to a plate inspection's thread (its progress message)."""
        return permalink(self.team_url, inspection.channel, inspection.progress_ts or inspection.message_ts,
                         inspection.thread_ts)

    def earlier_replies(self, inspection: Inspection) -> dict[str, Job]:
        """The inspection's hits answered in an earlier inspection of the plate (not posted again): an
        image's path -> the image job whose reply they link to."""
        paths = {job.id: job.payload["path"] for job in self.store.inspection_jobs(inspection.id)}
        return {paths[later]: earlier for later, earlier in self.store.earlier_replies(inspection.id).items()}

    def reply_link(self, image_job: Job) -> str:
        """A link to an image job's reply in its thread."""
        return permalink(self.team_url, image_job.channel, image_job.reply_ts or "", image_job.thread_ts)

    def plate_hits_post(self, inspection: Inspection) -> Message:
        """A plate's hits as the hits channel shows them, with the team's latest verdicts (wells whose upload
        was deleted left out)."""
        jobs = self.store.without_deleted(self.store.inspection_jobs(inspection.id))
        replies = {job.payload["path"]: job for job in jobs if job.reply_ts}  # the hits, each with its buttons
        replies.update(self.earlier_replies(inspection))  # or the buttons of the reply posted before
        shared = SharedPlate(
            plate=inspection.plate_name, user_id=inspection.user_id, channel=inspection.channel,
            thread_link=self.plate_link(inspection), map_file_id=inspection.map_file_id,
            images=self.plate_images(jobs),
            reply_links={path: self.reply_link(job) for path, job in replies.items()},
            verdicts={path: feedback for path, job in replies.items()
                      if (feedback := self.store.latest_feedback(job.id))},
            job_ids={path: job.id for path, job in replies.items()},
            conditions=self.plate_screens.conditions(inspection, [job.payload["well"] for job in replies.values()
                                                                  if job.payload.get("well")]))
        return plate_hits_message(shared, self.services.prompt_set.categories)

    def refresh_plate_hits(self, inspection: Inspection) -> bool:
        """Show a plate as it is now (its calls, the team's verdicts) on its message in the hits channel;
        False if it has none there (yet)."""
        shared = self.store.plate_hits_of(inspection.id)
        if not (shared and shared.reply_ts):
            return False
        self.poster.update(shared.payload["hits_channel"], shared.reply_ts, self.plate_hits_post(inspection))
        return True

    def recent_call(self, job: Job) -> RecentCall:
        """An image job for a list of recent calls, with a link to its reply."""
        return RecentCall(job, self.store.call(job.call_id) if job.call_id else None,
                          permalink(self.team_url, job.channel, job.reply_ts or job.message_ts, job.thread_ts))

    def recent_plate(self, inspection: Inspection) -> RecentPlate:
        """A plate inspection for a list of recent plates, with its calls per category and a link."""
        return RecentPlate(inspection, self.store.inspection_labels(inspection.id), self.plate_link(inspection))

    def month_spend(self) -> MonthSpend:
        """This month's estimated model spend, in all and per channel, and the budget."""
        now = time.time()
        since = month_start(now)
        return MonthSpend(month_name(now), self.store.spend_since(since), self.store.spend_by_channel_since(since),
                          self.services.settings.monthly_budget_usd)

    def ensure_budget_left(self, channel: str) -> None:
        """Before a model call: BudgetSpent once this month's spend has reached MONTHLY_BUDGET_USD."""
        budget = self.services.settings.monthly_budget_usd
        if budget is not None and self.check_budget(channel) is BudgetState.SPENT:
            raise BudgetSpent(budget_spent_reason(budget))

    def classify(self, image: Image, channel: str, priority: Priority) -> Call:
        """The image's call: from the cache, else from the model (paced with `priority`) while this month's
        budget lasts (BudgetSpent when it does not); a call that reaches 80 % or all of the budget tells the
        channel."""
        classifier = self.services.classifier
        prompt = classifier.prompt()
        call = classifier.cached(image, prompt)
        if call is None:
            self.ensure_budget_left(channel)
            call = classifier.classify(image, prompt, priority)
            self.check_budget(channel)
        return call

    def check_budget(self, channel: str) -> BudgetState:
        """This month's budget state; from 80 % on, the channel is told (a notice job per channel, month
        and state, so only once)."""
        budget = self.services.settings.monthly_budget_usd
        if budget is None:
            return BudgetState.OK
        now = time.time()
        spent = self.store.spend_since(month_start(now))
        state = budget_state(spent, budget)
        if state is not BudgetState.OK:
            month = f"budget-{month_name(now)}"
            self.store.enqueue("notice", channel, month, month, state.value, "budget", "",
                               {"state": state.value, "spent": spent, "budget": budget})
        return state


def asked_wells(question: Job) -> list[str]:
    """The wells a question names, as written in a plate of any size (up to 1536 wells: AF48)."""
    return [str(well) for well in wells_in_text(question.payload.get("text", ""), max(PLATE_SHAPES))]


@dataclass
class ImageJobs:
    flow: Workflow

    def run(self, job: Job) -> None:
        store = self.flow.store
        try:
            call = store.call(job.call_id) if job.call_id else self._classify(job)
        except (ImageError, DownloadError, ModelError, BudgetSpent) as error:
            if getattr(error, "retryable", False):
                raise RetryLater(str(error)) from error
            log.warning("job %s (%s) failed: %s", job.id, job.file_name, error)
            self._fail(job, str(error), retry=not isinstance(error, ImageError))  # a bad file stays bad
            return
        if call is None:
            return
        job = store.job(job.id) or job  # the file's name may have arrived with its full record
        reply_ts = self.flow.poster.reply(job, self.flow.call_reply(job, call))
        store.update_job(job.id, "replied", reply_ts=reply_ts)
        self._share_hit(job, call)
        store.finish_job(job.id, "done")

    def give_up(self, job: Job, reason: str) -> None:
        if job.call_id:  # the call is made: only posting it failed, and that is never given up
            raise RetryLater(f"still cannot post job {job.id}'s call: {reason}")
        self._fail(job, reason, retry=True)

    def _classify(self, job: Job) -> Call | None:
        """The image's call, or None when the file turned out not to be an image (the job is dropped)."""
        image = self._kept_image(job) or self._downloaded(job)
        if image is None:
            return None
        try:
            call = self.flow.classify(image, job.channel, Priority.INTERACTIVE)  # someone waits for this one
        except ProviderWait:
            self.flow.store.keep_image(job.id, image)  # the job waits: no second download when it comes back
            raise
        self.flow.store.update_job(job.id, "classified", call_id=call.id)
        return call

    def _kept_image(self, job: Job) -> Image | None:
        sha256 = job.payload.get("kept_sha256")
        return self.flow.store.image(sha256) if sha256 else None

    def _downloaded(self, job: Job) -> Image | None:
        """The file downloaded and normalised, or None when it is no image after all (the job is dropped)."""
        store = self.flow.store
        file = self.flow.files.complete({"id": job.file_id, **job.payload})
        if is_zip(file):  # the upload event did not say yet what the file was
            store.enqueue("plate", job.channel, job.message_ts, job.thread_ts, f"{job.file_id}:zip",
                          file.get("name") or job.file_name, job.user_id,
                          {**file, **{key: job.payload[key] for key in UPLOAD_OPTIONS if key in job.payload}})
            self.flow.wake()
            store.finish_job(job.id, None)
            return None
        if not is_image(file):
            log.info("job %s: %s is not an image after all; left alone", job.id, file.get("name"))
            store.finish_job(job.id, None)
            return None
        name = file.get("name") or job.file_name  # a file still being scanned had no name yet
        data = self.flow.files.download(file)
        store.update_job(job.id, "downloaded", file_name=name)
        return self.flow.services.normalise(data, name)

    def _share_hit(self, job: Job, call: Call) -> None:
        """A hit also goes to HITS_CHANNEL, as a job of its own (so it is posted once)."""
        hits_channel = self.flow.hits_channel
        if hits_channel and self.flow.services.prompt_set.is_hit(call.label) and job.channel != hits_channel:
            self.flow.store.enqueue("hit", job.channel, job.message_ts, job.thread_ts, self.flow.store.hit_key(job),
                                    job.file_name, job.user_id, {"job_id": job.id, "hits_channel": hits_channel})

    def _fail(self, job: Job, reason: str, *, retry: bool) -> None:
        self.flow.fail(job, failure_message(job.file_name, reason, job.id if retry else None), reason)


@dataclass
class Outcomes:
    """The reactions on an upload once all its images are done: the categories found, :warning: for
    an image that could not be handled."""

    flow: Workflow

    def run(self, job: Job) -> None:
        store, poster = self.flow.store, self.flow.poster
        images = store.jobs_of_message(job.channel, job.message_ts)
        if any(image.state not in {"done", "failed"} for image in images):
            store.finish_job(job.id, "done")  # an image was retried: its end queues this job again
            return
        wanted = self._reactions(images)
        for name in wanted:
            poster.react(job.channel, job.message_ts, name, add=True)
        stale = {FAILED_REACTION, *(c.reaction for c in self.flow.services.prompt_set.categories)} - set(wanted)
        for name in sorted(stale) if job.payload.get("again") else []:  # only a redone outcome can be stale
            poster.react(job.channel, job.message_ts, name, add=False)
        store.finish_job(job.id, "done")
        self.flow.stop_working(job)

    def give_up(self, job: Job, reason: str) -> None:
        raise RetryLater(f"still cannot set the outcome reaction: {reason}")

    def _reactions(self, images: list[Job]) -> list[str]:
        names: list[str] = []
        for image in images:
            call = self.flow.store.call(image.call_id) if image.call_id and image.state == "done" else None
            name = self.flow.services.prompt_set.category(call.label).reaction if call else FAILED_REACTION
            if name not in names:
                names.append(name)
        return names


@dataclass
class Questions:
    flow: Workflow

    def run(self, job: Job) -> None:
        services = self.flow.services
        try:
            self.flow.ensure_budget_left(job.channel)
        except BudgetSpent as refusal:
            self.give_up(job, str(refusal))
            return
        try:
            answer = services.classifier.follow_up(self._thread_images(job), self._transcript(job),
                                                   speaker_text(job.payload, self.flow.poster.bot_user_id,
                                                                services.settings.max_question_chars))
        except ModelError as error:
            if error.retryable:
                raise RetryLater(str(error)) from error
            self.give_up(job, str(error))
            return
        self.flow.store.record_follow_up(job.id, answer.model, answer.usage, answer.cost_usd)
        self.flow.check_budget(job.channel)  # this answer may have reached 80 % or all of the budget
        self.flow.poster.reply(job, answer_message(answer.text))
        self.flow.store.finish_job(job.id, "done")
        self.flow.notice_done(job)

    def give_up(self, job: Job, reason: str) -> None:
        self.flow.fail(job, unanswered_message(reason, job.id), reason)
        self.flow.notice_done(job)

    def _thread_images(self, job: Job) -> list[ThreadImage]:
        """The images classified in this thread only, each with the call and the team's verdict; of a
        plate, only the wells the question names (at most MAX_WELL_IMAGES)."""
        store = self.flow.store
        images = []
        for image_job in self._asked_about(job, store.thread_jobs(job.channel, job.thread_ts)):
            call = store.call(image_job.call_id) if image_job.call_id else None
            image = store.image_of_call(image_job.call_id) if image_job.call_id else None
            if call and image:
                summary = (f"Image {image_job.file_name}: your call was {call.label} "
                           f"(confidence {percent(call.confidence)}). {call.explanation}")
                feedback = store.latest_feedback(image_job.id)
                if feedback:
                    summary += f" The team {feedback.verdict} it" + (
                        f" as {feedback.label}." if feedback.verdict == "corrected" else ".")
                images.append(ThreadImage(image, summary))
        return images

    @staticmethod
    def _asked_about(job: Job, thread_jobs: list[Job]) -> list[Job]:
        wells = set(asked_wells(job))
        named = [j for j in thread_jobs if j.kind == "plate_image" and j.payload.get("well") in wells]
        return [j for j in thread_jobs if j.kind == "image"] + named[:MAX_WELL_IMAGES]

    def _transcript(self, job: Job) -> list[str]:
        """The thread before the question, latest messages kept, within FOLLOW_UP_HISTORY_CHARS; in a
        plate's thread, then every call of the plate by well."""
        settings, bot_user, store = self.flow.services.settings, self.flow.poster.bot_user_id, self.flow.store
        messages = self.flow.poster.thread(job.channel, job.thread_ts)
        lines = [speaker_text(m, bot_user, settings.max_question_chars) for m in messages
                 if m.get("ts") != job.message_ts]
        transcript = bounded_transcript(lines, settings.follow_up_history_chars)
        inspection = store.thread_inspection(job.channel, job.thread_ts)
        if inspection:
            images = self.flow.plate_images(store.inspection_jobs(inspection.id))
            transcript.append(calls_by_well_text(inspection.plate_name, images, settings.follow_up_history_chars))
            asked = asked_wells(job)
            hits = [str(i.position.well) for i in hit_images(images, self.flow.services.prompt_set.categories)
                    if i.position]
            chemistry = conditions_for_model(self.flow.plate_screens.conditions(inspection, asked + hits), asked, hits,
                                             settings.follow_up_history_chars)
            transcript += [chemistry] if chemistry else []
        return transcript


def speaker_text(message: dict[str, Any], bot_user_id: str, max_chars: int) -> str:
    """`<@U1>: text` (or `you (the bot): text`), the text cut to `max_chars`."""
    speaker = "you (the bot)" if message.get("user") == bot_user_id or message.get("bot_id") else \
        f"<@{message.get('user', '?')}>"
    return f"{speaker}: {clip(message.get('text', ''), max_chars)}"


@dataclass
class Clicks:
    """A Confirm or Correct click, recorded by the listener after checking it against the call."""

    flow: Workflow

    def run(self, job: Job) -> None:
        store = self.flow.store
        target, call = self.flow.classified(job.payload["job_id"])
        if target and call and not target.reply_ts:  # clicked before the bot heard back that its reply is posted
            raise RetryLater(f"job {target.id}'s reply is not recorded yet")
        if target and call:
            store.add_feedback(target.id, job.user_id, job.payload["verdict"], job.payload["label"], request_id=job.id)
            self.flow.poster.update(target.channel, target.reply_ts, self.flow.call_reply(target, call))
            hit = store.hit_of(target)
            if hit and hit.reply_ts:
                self.flow.poster.update(hit.payload["hits_channel"], hit.reply_ts, self.flow.hit_post(target, call))
            inspection = store.inspection(target.inspection_id) if target.inspection_id else None
            for shown in ([inspection, *store.inspections_reusing(target)] if inspection else []):
                self.flow.refresh_plate_hits(shown)
        store.finish_job(job.id, "done")

    def give_up(self, job: Job, reason: str) -> None:
        self.flow.abandon(job, reason)


@dataclass
class Hits:
    """A hit posted in the hits channel, once; its ts is kept so feedback updates it too."""

    flow: Workflow

    def run(self, job: Job) -> None:
        store = self.flow.store
        target, call = self.flow.classified(job.payload["job_id"])
        if target and call:
            reply_ts = self.flow.poster.post(job, job.payload["hits_channel"], self.flow.hit_post(target, call))
            store.update_job(job.id, "replied", reply_ts=reply_ts)
        store.finish_job(job.id, "done")

    def give_up(self, job: Job, reason: str) -> None:
        self.flow.abandon(job, reason)
