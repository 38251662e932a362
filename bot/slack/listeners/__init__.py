"""Slack listeners, grouped by what they listen to. They check events and hand work to the intake."""
from __future__ import annotations

from slack_bolt import App

from bot.slack.deletions import Deletions
from bot.slack.examples import TeamExamples
from bot.slack.intake import Intake
from bot.slack.listeners import actions, channels, commands, files, home, messages, views
from bot.slack.sharing import HitsSharing


def register(app: App, intake: Intake, examples: TeamExamples, deletions: Deletions, sharing: HitsSharing) -> None:
    messages.register(app, intake, deletions)
    channels.register(app, intake, sharing.privacy)
    files.register(app, deletions)
    actions.register(app, intake, examples)
    commands.register(app, intake, examples, sharing)
    home.register(app, intake)
    views.register(app, examples)
