"""Who is in which channel, and the bot's own channels: membership events keep the membership cache
true (bot/slack/membership.py); the bot invited, removed, or its channel archived or deleted.

Invited to a channel outside ALLOWED_CHANNELS, the bot says once why it stays quiet there. Removed from
a channel (`channel_left`, `group_left`, or its own `member_left_channel`), or the channel archived or
deleted: its data shows nowhere any more, nothing more is posted there, its queued jobs end quietly.
"""
from __future__ import annotations

from typing import Any

from slack_bolt import App

from bot.slack.intake import Intake
from bot.slack.privacy import Privacy


def register(app: App, intake: Intake, privacy: Privacy) -> None:
    @app.event("member_joined_channel")
    def on_join(event: dict[str, Any]) -> None:
        user, channel = event.get("user", ""), event.get("channel", "")
        if user != intake.bot_user_id:
            privacy.person_joined(user, channel)
            return
        privacy.bot_back(channel)
        if not intake.allowed(channel):
            intake.say_not_allowed_once(channel)

    @app.event("member_left_channel")
    def on_leave(event: dict[str, Any]) -> None:
        user, channel = event.get("user", ""), event.get("channel", "")
        if user == intake.bot_user_id:
            privacy.bot_removed(channel, "removed the bot")
        else:
            privacy.person_left(user, channel)

    @app.event("channel_left")
    @app.event("group_left")
    def on_bot_removed(event: dict[str, Any]) -> None:
        privacy.bot_removed(event["channel"], "removed the bot")

    @app.event("channel_archive")
    @app.event("group_archive")
    def on_archived(event: dict[str, Any]) -> None:
        privacy.bot_removed(event["channel"], "was archived")

    @app.event("channel_deleted")
    @app.event("group_deleted")
    def on_deleted(event: dict[str, Any]) -> None:
        privacy.bot_removed(event["channel"], "was deleted")
