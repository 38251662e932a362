"""Message events: image uploads (`file_share`), an upload deleted (`message_deleted`) and questions in
threads.

Uploads come only through `message`/`file_share` (the app does not subscribe to `file_shared`, the
second event Slack sends for the same upload). Bolt drops the bot's own messages before these run, and
runs only the first listener that matches: the subtypes come before the generic `message` listener.
Outside ALLOWED_CHANNELS the bot stays silent and calls no model.
"""
from __future__ import annotations

from typing import Any

from slack_bolt import App

from bot.slack.deletions import Deletions
from bot.slack.intake import Intake

ANSWERABLE_SUBTYPES = {None, "thread_broadcast"}


def register(app: App, intake: Intake, deletions: Deletions) -> None:
    @app.event({"type": "message", "subtype": "file_share"})
    def on_upload(event: dict[str, Any], body: dict[str, Any]) -> None:
        if intake.allowed(event["channel"]) and intake.store.first_sighting(body["event_id"]):
            intake.workflow.privacy.heard_from(event["channel"])
            intake.accept_upload(event)

    @app.event({"type": "message", "subtype": "message_deleted"})
    def on_deleted(event: dict[str, Any]) -> None:
        deletions.accept_message_deleted(event)

    @app.event("message")
    def on_message(event: dict[str, Any], body: dict[str, Any]) -> None:
        if event.get("subtype") not in ANSWERABLE_SUBTYPES or event.get("bot_id") or not intake.allowed(event["channel"]):
            return  # edits, deletions, joins, other bots, channels the bot is not enabled in
        if intake.should_answer(event) and intake.store.first_sighting(body["event_id"]):
            intake.accept_question(event)
