"""Message events: image uploads (`file_share`) and questions in threads; the bot joining a channel.

Uploads come only through `message`/`file_share` (the app does not subscribe to `file_shared`, the
second event Slack sends for the same upload). Bolt drops the bot's own messages before these run.
Outside ALLOWED_CHANNELS the bot stays silent and calls no model.
"""
from __future__ import annotations

from typing import Any

from slack_bolt import App

from bot.slack.intake import Intake

ANSWERABLE_SUBTYPES = {None, "thread_broadcast"}


def register(app: App, intake: Intake) -> None:
    @app.event({"type": "message", "subtype": "file_share"})
    def on_upload(event: dict[str, Any], body: dict[str, Any]) -> None:
        if intake.allowed(event["channel"]) and intake.store.first_sighting(body["event_id"]):
            intake.accept_upload(event)

    @app.event("member_joined_channel")
    def on_join(event: dict[str, Any]) -> None:
        if event.get("user") == intake.bot_user_id and not intake.allowed(event["channel"]):
            intake.say_not_allowed_once(event["channel"])

    @app.event("message")
    def on_message(event: dict[str, Any], body: dict[str, Any]) -> None:
        if event.get("subtype") not in ANSWERABLE_SUBTYPES or event.get("bot_id") or not intake.allowed(event["channel"]):
            return  # edits, deletions, joins, other bots, channels the bot is not enabled in
        if intake.should_answer(event) and intake.store.first_sighting(body["event_id"]):
            intake.accept_question(event)
