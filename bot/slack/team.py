"""The team's jobs: what the bot tells a channel about the budget, sends a person, shows on the Home tab.

notice:   the channel is told, once a month, that the model budget is nearly or wholly spent.
export:   a channel's calls in a period -> a CSV written page by page -> the person's direct messages.
home:     someone opened the app's Home tab -> the dashboard published there (views.publish).
"""
from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from slack_sdk.errors import SlackApiError

from bot.agreement import agreement
from bot.budget import BudgetState
from bot.dashboard import (DAY, Dashboard, Labelled, chart_moment, chart_png, chart_since, counts_since, home_view,
                           weekly_counts)
from bot.export import Period, summary, write_csv
from bot.models import HomeChart, Job
from bot.prompt import Category
from bot.queue import Handler
from bot.render import budget_notice
from bot.slack.status import service_status
from bot.slack.workflow import Workflow

log = logging.getLogger(__name__)

HOME_RECENT = 10  # calls and plates listed on the Home tab


@dataclass
class Notices:
    """A budget notice at the top of a channel (one per channel, month and state)."""

    flow: Workflow

    def run(self, job: Job) -> None:
        message = budget_notice(BudgetState(job.payload["state"]), job.payload["spent"], job.payload["budget"])
        reply_ts = self.flow.poster.post(job, job.channel, message)
        self.flow.store.update_job(job.id, "replied", reply_ts=reply_ts)
        self.flow.store.finish_job(job.id, "done")

    def give_up(self, job: Job, reason: str) -> None:
        self.flow.abandon(job, reason)


@dataclass
class Exports:
    """`/crystals export`: a channel's calls in a period as CSV, sent to the person who asked."""

    flow: Workflow

    def run(self, job: Job) -> None:
        period = Period(**job.payload)
        with tempfile.TemporaryDirectory(prefix="crystals-export-") as folder:
            path = Path(folder) / period.file_name(job.channel)
            with path.open("w", newline="", encoding="utf-8") as out:
                pages = self.flow.store.export_pages(job.channel, period.start, period.end)
                rows = write_csv(self.flow.plate_screens.with_conditions(pages), self.flow.team_url, job.channel, out)
            poster = self.flow.poster
            poster.upload(poster.direct_message_channel(job.user_id),
                          [{"file": str(path), "filename": path.name, "title": path.name}],
                          comment=summary(job.channel, period, rows))
        self.flow.store.finish_job(job.id, "done")

    def give_up(self, job: Job, reason: str) -> None:
        self.flow.abandon(job, reason)

@dataclass
class HomeTabs:
    """The App Home dashboard, published for one person when they open the Home tab.

    The chart is a PNG that Slack must host: an image block can only show a file the viewer may see,
    and a file uploaded without a channel is the uploader's alone (Slack refuses the block with
    invalid_blocks). So the chart is shared in the person's direct messages with the bot (the app's
    Messages tab), and the image block names it by id (`slack_file`). It counts the calls up to one
    moment a day (bot/dashboard.py) and is uploaded only when the picture changed; otherwise the file id
    kept in the database is reused. If Slack no longer shows that file (someone deleted it from the DM), the
    tab is published without the chart and the next opening uploads it again.
    """

    flow: Workflow

    def run(self, job: Job) -> None:
        store, categories = self.flow.store, self.flow.services.prompt_set.categories
        labels = [category.name for category in categories]
        now = time.time()
        seen = self.flow.privacy.seen_by(job.user_id)  # only what comes from the person's channels
        labelled = seen.labelled_calls_since(min(chart_since(now), now - 30 * DAY))
        weekly = weekly_counts(labelled, labels, now)
        board = Dashboard(
            recent=[self.flow.recent_call(j) for j in seen.recent_jobs(HOME_RECENT)],
            last_7_days=counts_since(labelled, now - 7 * DAY), last_30_days=counts_since(labelled, now - 30 * DAY),
            plates=[self.flow.recent_plate(i) for i in seen.recent_inspections(HOME_RECENT)],
            agreement=agreement(seen.reviewed_calls(), labels), spend=seen.spend(self.flow.month_spend()),
            notes=seen.notes(now - 30 * DAY, "in the last 30 days"), service=service_status(store))
        chart_id = self._chart_file(job.user_id, labelled, categories, now) if weekly.total else None
        try:
            self.flow.poster.publish_home(job.user_id, home_view(board, categories, chart_id))
        except SlackApiError as error:
            if chart_id is None or error.response.get("error") != "invalid_blocks":
                raise
            log.warning("Slack would not show chart %s on %s's Home tab; published without it", chart_id,
                        job.user_id)
            store.forget_home_chart(job.user_id)
            self.flow.poster.publish_home(job.user_id, home_view(board, categories, None))
        store.finish_job(job.id, "done")

    def _chart_file(self, user_id: str, labelled: Sequence[Labelled], categories: Sequence[Category],
                    now: float) -> str:
        """The id of the chart shared with this person, drawn with their calls up to today's moment: the
        last one if the picture is the same, else the new picture shared."""
        known = self.flow.store.home_chart(user_id)
        moment = chart_moment(known.drawn_at if known else None, now)
        png = chart_png(weekly_counts(labelled, [category.name for category in categories], moment), categories)
        digest = hashlib.sha256(png).hexdigest()
        if known and known.png_sha256 == digest:
            file_id = known.file_id
        else:
            poster = self.flow.poster
            (file_id,) = poster.upload(poster.direct_message_channel(user_id), [
                {"content": png, "filename": "calls-per-week.png", "title": "Calls per category per week"}],
                comment="The chart for your Find the Crystals Home tab.")
        self.flow.store.save_home_chart(user_id, HomeChart(digest, file_id, moment))
        return file_id

    def give_up(self, job: Job, reason: str) -> None:
        self.flow.abandon(job, reason)


def team_handlers(flow: Workflow) -> dict[str, Handler]:
    return {"notice": Notices(flow), "export": Exports(flow), "home": HomeTabs(flow)}
