"""File events: a file deleted, or unshared (bot/slack/deletions.py decides whether it is left anywhere).
The deletion of an upload's message is a `message` event (bot/slack/listeners/messages.py)."""
from __future__ import annotations

from typing import Any

from slack_bolt import App

from bot.slack.deletions import Deletions


def register(app: App, deletions: Deletions) -> None:
    @app.event("file_deleted")
    def on_file_deleted(event: dict[str, Any]) -> None:
        deletions.accept_file_gone(event, "file deleted")

    @app.event("file_unshared")
    def on_file_unshared(event: dict[str, Any]) -> None:
        deletions.accept_file_gone(event, "file unshared")
