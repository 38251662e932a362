"""`/crystals help | recent | stats | status | export | examples | share-hits | screens | plate PLATE screen NAME |
plate NAME`, answered only to the person who asked (stats include this month's model spend; status shows the
model service and the queue, bot/slack/status.py; an export
arrives as a CSV in a direct message; examples and screens list them with Remove buttons; share-hits says
or changes whether a private channel's hits go to the hits channel), but for a plate's inspections and
chart, posted in the channel they were asked in. A channel's calls are shown only to its members
(bot/visibility.py)."""
from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot.agreement import agreement
from bot.export import ExportRequestError, parse_period
from bot.render import Message, RecentCall, RecentPlate, help_message, recent_message, stats_message
from bot.sharing import VERB as SHARE_HITS
from bot.screens.messages import link_command
from bot.slack.examples import TeamExamples
from bot.slack.history import plate_command
from bot.slack.intake import Intake
from bot.slack.sharing import HitsSharing
from bot.slack.status import VERB as STATUS, status_command
from bot.visibility import NOT_A_MEMBER, scope_spend

COMMAND = "/crystals"
RECENT_LIMIT = 10


def register(app: App, intake: Intake, examples: TeamExamples, sharing: HitsSharing) -> None:
    @app.command(COMMAND)
    def on_command(ack: Ack, command: dict[str, Any]) -> None:
        text = command.get("text", "").strip()
        verb = text.lower().split()[:1]
        if verb == ["export"]:
            message = export(intake, command, text)
        elif verb == ["examples"]:
            message = examples.overview(command["user_id"])
        elif verb == [STATUS]:
            message = status_command(intake.store)
        elif verb == [SHARE_HITS]:
            message = sharing.command(command, text)
        elif verb in (["screens"], ["screen"]) or (verb == ["plate"] and link_command(text)):
            message = intake.screens.command(command, text)
        elif verb == ["plate"]:
            message = plate_command(intake, command, text)
        else:
            message = answer(intake, text.lower(), command)
        ack(response_type="ephemeral", text=message.text, blocks=message.blocks)


def export(intake: Intake, command: dict[str, Any], text: str) -> Message:
    """Queue the export (the work happens on the job queue) and say where it will arrive."""
    try:
        period = parse_period(text)
    except ExportRequestError as error:
        return Message(str(error))
    if not intake.workflow.privacy.may_see(command["user_id"], command["channel_id"]):
        return Message(NOT_A_MEMBER)
    intake.accept_export(command, period)
    return Message(f"I am putting together a CSV of this channel's calls {period.describe()}; "
                   "it will arrive in a direct message from me.")


def answer(intake: Intake, verb: str, command: dict[str, Any]) -> Message:
    categories = intake.services.prompt_set.categories
    flow, channel, user = intake.workflow, command["channel_id"], command["user_id"]
    if verb in ("recent", "stats") and not flow.privacy.may_see(user, channel):
        return Message(NOT_A_MEMBER)
    if verb == "recent":
        calls = [flow.recent_call(job) for job in intake.store.recent_jobs(channel, RECENT_LIMIT)]
        plates = [flow.recent_plate(inspection) for inspection in intake.store.recent_inspections(channel, RECENT_LIMIT)]
        items = sorted([*calls, *plates], key=_newest_first)[:RECENT_LIMIT]
        return recent_message(items, categories)
    if verb == "stats":
        verdicts = agreement(intake.store.reviewed_calls(channel), [c.name for c in categories])
        spend = flow.month_spend()
        spend = scope_spend(spend, flow.privacy.viewer(user, spend.by_channel))
        return stats_message(intake.store.channel_stats(channel), categories, spend, channel, verdicts)
    return help_message(COMMAND, categories)


def _newest_first(item: RecentCall | RecentPlate) -> float:
    return -float(item.job.message_ts if isinstance(item, RecentCall) else item.inspection.message_ts)
