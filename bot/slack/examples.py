"""The team's few-shot examples in Slack: the Use as example button, its form, the note in the thread,
`/crystals examples` and its Remove buttons. What is decided lives in bot/teaching.py.

Opening the form must happen within 3 s of the click (Slack's trigger_id), so it is done at once by
the listener; storing a submitted example is one database write, also done at once, so a problem
shows in the form itself. Only the note in the call's thread goes through the job queue (`example`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.models import Call, Image, Job
from bot.queue import Handler, RetryLater
from bot.render import Message, parse_id, permalink
from bot.slack.workflow import IMAGE_KINDS, Workflow
from bot.teaching import (EXPLANATION_BLOCK, EXPLANATION_INPUT, checked_explanation, choose_examples,
                          editing_refused, example_added, example_form, example_removed, examples_message,
                          may_edit_examples, read_form)

log = logging.getLogger(__name__)

GONE = "This call is no longer there, so it cannot become an example."
MEMBERS_ONLY = "Only members of the channel this call is from can make it an example."


@dataclass
class TeamExamples:
    flow: Workflow

    @property
    def editors(self) -> frozenset[str]:
        return self.flow.services.settings.example_editors

    def refusal_for(self, user_id: str) -> str | None:
        """Why this person may not add or remove examples (a guest, not in EXAMPLE_EDITORS, or Slack could
        not say who they are); None if they may."""
        guest = self.flow.privacy.membership.is_guest(user_id)
        return None if may_edit_examples(user_id, self.editors, guest) else editing_refused(self.editors, guest)

    def open_form(self, body: dict[str, Any], value: str) -> str | None:
        """Use as example: the form opened for the person who clicked, or what to tell them instead."""
        user = body["user"]["id"]
        job_id = parse_id(value)
        target, call = self.flow.classified(job_id) if job_id is not None else (None, None)
        feedback = self.flow.store.latest_feedback(target.id) if target else None
        channel = (body.get("channel") or {}).get("id")
        if not target or not call or not feedback or target.kind not in IMAGE_KINDS \
                or channel not in self.flow.shown_in(target):
            log.warning("ignored a Use as example click with value %.40r in channel %s", value, channel)
            return None
        problem = self.refusal_for(user) or self._unusable(call)
        if problem:
            return problem
        try:
            self.flow.poster.open_view(body["trigger_id"],
                                       example_form(target, call, feedback, self.flow.services.prompt_set.categories))
        except (SlackApiError, RetryLater, OSError) as error:
            log.warning("could not open the example form for job %s: %s", target.id, error)
            return "Slack did not open the form in time. Click *Use as example* again."
        return None

    def accept_form(self, body: dict[str, Any]) -> str | None:
        """The form submitted: the example stored and its note queued; or the problem to show in the form."""
        user, view = body["user"]["id"], body["view"]
        typed = view.get("state", {}).get("values", {}).get(EXPLANATION_BLOCK, {}).get(EXPLANATION_INPUT, {})
        explanation, problem = checked_explanation(typed.get("value"))
        if problem:
            return problem
        refusal = self.refusal_for(user)
        if refusal:
            return refusal
        form = read_form(view.get("private_metadata", ""), self.flow.services.prompt_set.labels)
        target, call = self.flow.classified(form[0]) if form else (None, None)
        if not form or not target or not call:
            log.warning("example form with metadata %.80r names no call", view.get("private_metadata"))
            return GONE
        if not any(self.flow.privacy.may_see(user, channel) for channel in self.flow.shown_in(target)):
            log.warning("%s submitted an example form for job %s without being in its channel", user, target.id)
            return MEMBERS_ONLY
        image = self.flow.store.image_of_call(call.id) if call.id else None
        problem = self._unusable(call, image)
        if problem or image is None:
            return problem or GONE
        link = permalink(self.flow.team_url, target.channel, target.reply_ts or target.message_ts, target.thread_ts)
        example_id = self.flow.store.add_example(image, form[1], explanation, target, link, user)
        if example_id is None:
            return self._unusable(call, image) or GONE  # added by someone else a moment ago
        log.info("%s added example %s (%s) from job %s", user, example_id, form[1], target.id)
        self._queue_note(target, user, example_id, form[1], explanation)
        return None

    def _unusable(self, call: Call, image: Image | None = None) -> str | None:
        """Why a call's image cannot become an example (gone, or one already), or None."""
        image = image or (self.flow.store.image_of_call(call.id) if call.id else None)
        if image is None:
            days = self.flow.services.settings.keep_images_days
            return (f"I no longer have this image (images are kept {days:g} days), so it cannot become an "
                    "example. Upload it again and use the new call.")
        existing = self.flow.store.example_of_image(image.sha256)
        if existing:
            return (f"This image is already an example of *{existing.label}* (added by <@{existing.added_by}>). "
                    "`/crystals examples` lists the examples and removes one.")
        return None

    def _queue_note(self, target: Job, user: str, example_id: int, label: str, explanation: str) -> None:
        if self.flow.store.enqueue("example", target.channel, target.message_ts, target.thread_ts,
                                   f"example:{example_id}", target.file_name, user,
                                   {"label": label, "explanation": explanation}) is not None:
            self.flow.wake()

    def overview(self, user_id: str, notice: str = "") -> Message:
        """`/crystals examples` for one person: the examples from examples/ and the team's (of those from
        channels they are not in, only the label), which are used, Remove buttons."""
        services = self.flow.services
        labels, per_category = services.prompt_set.labels, services.classifier.team_examples
        team = self.flow.store.team_examples()
        used = {example.id for example in choose_examples(team, labels, per_category)}
        viewer = self.flow.privacy.viewer(user_id, {example.channel for example in team})
        return examples_message(services.prompt_set.examples, team, used, per_category,
                                services.prompt_set.categories, viewer, notice)

    def remove(self, user_id: str, value: str) -> Message:
        """A Remove click (by an editor): the example no longer used; the list as it is now."""
        example_id = parse_id(value)
        removed = self.flow.store.remove_example(example_id, user_id) if example_id is not None else None
        if not removed:
            return self.overview(user_id, "That example was removed already.")
        log.info("%s removed example %s (%s)", user_id, removed.id, removed.label)
        return self.overview(user_id, example_removed(removed, self.flow.privacy.may_see(user_id, removed.channel)))


@dataclass
class ExampleNotes:
    """The note in a call's thread that its image is now one of the bot's examples (posted once)."""

    flow: Workflow

    def run(self, job: Job) -> None:
        note = example_added(job.user_id, job.payload["label"], job.payload["explanation"],
                             self.flow.services.prompt_set.categories)
        self.flow.store.update_job(job.id, "replied", reply_ts=self.flow.poster.reply(job, note))
        self.flow.store.finish_job(job.id, "done")

    def give_up(self, job: Job, reason: str) -> None:
        self.flow.abandon(job, reason)


def example_handlers(flow: Workflow) -> dict[str, Handler]:
    return {"example": ExampleNotes(flow)}
