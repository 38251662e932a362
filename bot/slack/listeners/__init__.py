"""Slack listeners, grouped by what they listen to. They check events and hand work to the intake."""
from __future__ import annotations

from slack_bolt import App

from bot.slack.examples import TeamExamples
from bot.slack.intake import Intake
from bot.slack.listeners import actions, commands, home, messages, views


def register(app: App, intake: Intake, examples: TeamExamples) -> None:
    messages.register(app, intake)
    actions.register(app, intake, examples)
    commands.register(app, intake, examples)
    home.register(app, intake)
    views.register(app, examples)
