"""Slack listeners, grouped by what they listen to. They check events and hand work to the intake."""
from __future__ import annotations

from slack_bolt import App

from bot.slack.intake import Intake
from bot.slack.listeners import actions, commands, home, messages


def register(app: App, intake: Intake) -> None:
    messages.register(app, intake)
    actions.register(app, intake)
    commands.register(app, intake)
    home.register(app, intake)
