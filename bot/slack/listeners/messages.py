"""Message events: image uploads (`file_share`) and questions in threads.

Uploads come only through `message`/`file_share` (the app does not subscribe to `file_shared`, the
second event Slack sends for the same upload). Bolt drops the bot's own messages before these run.
"""
from __future__ import annotations

from typing import Any

from slack_bolt import App

from bot.pipeline import Pipeline

ANSWERABLE_SUBTYPES = {None, "thread_broadcast"}


def register(app: App, pipeline: Pipeline) -> None:
    @app.event({"type": "message", "subtype": "file_share"})
    def on_upload(event: dict[str, Any], body: dict[str, Any]) -> None:
        if pipeline.store.first_sighting(body["event_id"]):
            pipeline.accept_upload(event)

    @app.event("message")
    def on_message(event: dict[str, Any], body: dict[str, Any]) -> None:
        if event.get("subtype") not in ANSWERABLE_SUBTYPES or event.get("bot_id"):
            return  # edits, deletions, joins, other bots
        if pipeline.should_answer(event) and pipeline.store.first_sighting(body["event_id"]):
            pipeline.accept_question(event)
