"""`app_home_opened`: someone opened the app's Home tab (or its Messages tab, which is left alone).

The dashboard is published on the job queue, so a Slack hiccup is retried; opening the tab keeps it
fresh, at most once a minute per person (bot/slack/intake.py).
"""
from __future__ import annotations

from typing import Any

from slack_bolt import App

from bot.slack.intake import Intake


def register(app: App, intake: Intake) -> None:
    @app.event("app_home_opened")
    def on_home_opened(event: dict[str, Any]) -> None:
        if event.get("tab") == "home" and event.get("user"):
            intake.accept_home_opened(event)
