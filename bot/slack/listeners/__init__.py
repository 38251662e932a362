"""Slack listeners, grouped by what they listen to. They filter and hand work to the pipeline."""
from __future__ import annotations

from slack_bolt import App

from bot.pipeline import Pipeline
from bot.slack.listeners import actions, commands, messages


def register(app: App, pipeline: Pipeline, *, team_url: str) -> None:
    messages.register(app, pipeline)
    actions.register(app, pipeline)
    commands.register(app, pipeline, team_url=team_url)
