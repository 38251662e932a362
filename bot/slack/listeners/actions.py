"""Button and menu clicks under a call: confirm it, or correct it to another category."""
from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot.pipeline import Pipeline
from bot.render import CONFIRM_ACTION, CORRECT_ACTION, parse_feedback_value


def register(app: App, pipeline: Pipeline) -> None:
    @app.action(CONFIRM_ACTION)
    def on_confirm(ack: Ack, action: dict[str, Any], body: dict[str, Any]) -> None:
        ack()
        job_id, label = parse_feedback_value(action["value"])
        pipeline.apply_feedback(job_id, body["user"]["id"], "confirmed", label)

    @app.action(CORRECT_ACTION)
    def on_correct(ack: Ack, action: dict[str, Any], body: dict[str, Any]) -> None:
        ack()
        job_id, label = parse_feedback_value(action["selected_option"]["value"])
        pipeline.apply_feedback(job_id, body["user"]["id"], "corrected", label)
