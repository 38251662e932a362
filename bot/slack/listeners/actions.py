"""Button and menu clicks: confirm a call, correct it to another category, retry a failed job.
Each is acknowledged at once, whatever its value; the intake checks it before anything is done."""
from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot.render import CONFIRM_ACTION, CORRECT_ACTION, RETRY_ACTION
from bot.slack.intake import Intake


def register(app: App, intake: Intake) -> None:
    @app.action(CONFIRM_ACTION)
    def on_confirm(ack: Ack, action: dict[str, Any], body: dict[str, Any]) -> None:
        ack()
        intake.accept_click(body, str(action.get("value", "")))

    @app.action(CORRECT_ACTION)
    def on_correct(ack: Ack, action: dict[str, Any], body: dict[str, Any]) -> None:
        ack()
        intake.accept_click(body, str((action.get("selected_option") or {}).get("value", "")))

    @app.action(RETRY_ACTION)
    def on_retry(ack: Ack, action: dict[str, Any], body: dict[str, Any]) -> None:
        ack()
        intake.accept_retry(body, str(action.get("value", "")))
