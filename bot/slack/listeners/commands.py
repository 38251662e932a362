"""`/crystals help | recent | stats | export`, answered only to the person who asked (stats include this
month's model spend; an export arrives as a CSV in a direct message)."""
from __future__ import annotations

import time
from typing import Any

from slack_bolt import Ack, App

from bot.budget import month_name, month_start
from bot.export import ExportRequestError, parse_period
from bot.models import MonthSpend
from bot.render import Message, RecentCall, help_message, permalink, recent_message, stats_message
from bot.slack.intake import Intake

COMMAND = "/crystals"
RECENT_LIMIT = 10


def register(app: App, intake: Intake, *, team_url: str) -> None:
    @app.command(COMMAND)
    def on_command(ack: Ack, command: dict[str, Any]) -> None:
        text = command.get("text", "").strip()
        if text.lower().split()[:1] == ["export"]:
            message = export(intake, command, text)
        else:
            message = answer(intake, text.lower(), command["channel_id"], team_url)
        ack(response_type="ephemeral", text=message.text, blocks=message.blocks)


def export(intake: Intake, command: dict[str, Any], text: str) -> Message:
    """Queue the export (the work happens on the job queue) and say where it will arrive."""
    try:
        period = parse_period(text)
    except ExportRequestError as error:
        return Message(str(error))
    intake.accept_export(command, period)
    return Message(f"I am putting together a CSV of this channel's calls {period.describe()}; "
                   "it will arrive in a direct message from me.")


def answer(intake: Intake, verb: str, channel: str, team_url: str) -> Message:
    categories = intake.services.prompt_set.categories
    if verb == "recent":
        items = [RecentCall(job, intake.store.call(job.call_id) if job.call_id else None,
                            permalink(team_url, channel, job.reply_ts or job.message_ts, job.thread_ts))
                 for job in intake.store.recent_jobs(channel, RECENT_LIMIT)]
        return recent_message(items, categories)
    if verb == "stats":
        return stats_message(intake.store.channel_stats(channel), categories, month_spend(intake), channel)
    return help_message(COMMAND)


def month_spend(intake: Intake) -> MonthSpend:
    now = time.time()
    since = month_start(now)
    return MonthSpend(month_name(now), intake.store.spend_since(since), intake.store.spend_by_channel_since(since),
                      intake.services.settings.monthly_budget_usd)
