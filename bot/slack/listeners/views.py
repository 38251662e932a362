"""Modal submissions: the Use as example form. A problem (no explanation, not an example editor, the
image gone) is shown in the form itself, under the explanation."""
from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot.slack.examples import TeamExamples
from bot.teaching import EXAMPLE_FORM, EXPLANATION_BLOCK


def register(app: App, examples: TeamExamples) -> None:
    @app.view(EXAMPLE_FORM)
    def on_example_form(ack: Ack, body: dict[str, Any]) -> None:
        problem = examples.accept_form(body)
        if problem:
            ack(response_action="errors", errors={EXPLANATION_BLOCK: problem})
        else:
            ack()
