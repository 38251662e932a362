"""Button and menu clicks: confirm a call, correct it to another category, retry a failed job, retry a
plate's failed wells, use a reviewed call as an example, remove an example, remove a screen, an
optimisation grid around a hit, see a plate's drop over time. Each is acknowledged at once, whatever its
value; what it names is checked before anything is done."""
from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond

from bot.plates.history_report import HISTORY_ACTION
from bot.plates.retry import RETRY_WELLS_ACTION
from bot.render import CONFIRM_ACTION, CORRECT_ACTION, EXAMPLE_ACTION, FEEDBACK_MENU_ACTION, RETRY_ACTION
from bot.screens.messages import GRID_ACTION, SCREEN_REMOVE_ACTION
from bot.slack.examples import TeamExamples
from bot.slack.intake import Intake
from bot.slack.plate_retry import accept_wells_retry
from bot.teaching import EXAMPLE_REMOVE_ACTION


def register(app: App, intake: Intake, examples: TeamExamples) -> None:
    @app.action(CONFIRM_ACTION)
    def on_confirm(ack: Ack, action: dict[str, Any], body: dict[str, Any]) -> None:
        ack()
        intake.accept_click(body, str(action.get("value", "")))

    @app.action(CORRECT_ACTION)
    @app.action(FEEDBACK_MENU_ACTION)  # a plate's hits in the hits channel: Confirm / Correct per well
    def on_correct(ack: Ack, action: dict[str, Any], body: dict[str, Any]) -> None:
        ack()
        intake.accept_click(body, str((action.get("selected_option") or {}).get("value", "")))

    @app.action(HISTORY_ACTION)  # a plate's crystal hit: the drop at each inspection
    def on_history(ack: Ack, action: dict[str, Any], body: dict[str, Any]) -> None:
        ack()
        intake.accept_history_click(body, str(action.get("value", "")))

    @app.action(RETRY_ACTION)
    def on_retry(ack: Ack, action: dict[str, Any], body: dict[str, Any]) -> None:
        ack()
        intake.accept_retry(body, str(action.get("value", "")))

    @app.action(RETRY_WELLS_ACTION)  # a plate summary's Retry failed wells
    def on_retry_wells(ack: Ack, action: dict[str, Any], body: dict[str, Any]) -> None:
        ack()
        accept_wells_retry(intake, body, str(action.get("value", "")))

    @app.action(EXAMPLE_ACTION)
    def on_use_as_example(ack: Ack, action: dict[str, Any], body: dict[str, Any], respond: Respond) -> None:
        ack()
        refusal = examples.open_form(body, str(action.get("value", "")))
        if refusal:
            respond(text=refusal, response_type="ephemeral", replace_original=False)

    @app.action(EXAMPLE_REMOVE_ACTION)
    def on_remove_example(ack: Ack, action: dict[str, Any], body: dict[str, Any], respond: Respond) -> None:
        ack()
        refusal = examples.refusal_for(body["user"]["id"])
        if refusal:
            respond(text=refusal, response_type="ephemeral", replace_original=False)
            return
        listing = examples.remove(body["user"]["id"], str(action.get("value", "")))
        respond(text=listing.text, blocks=listing.blocks, response_type="ephemeral", replace_original=True)

    @app.action(SCREEN_REMOVE_ACTION)
    def on_remove_screen(ack: Ack, action: dict[str, Any], body: dict[str, Any], respond: Respond) -> None:
        ack()
        listing = intake.screens.remove(body["user"]["id"], str(action.get("value", "")))
        respond(text=listing.text, blocks=listing.blocks, response_type="ephemeral", replace_original=True)

    @app.action(GRID_ACTION)
    def on_grid(ack: Ack, action: dict[str, Any], body: dict[str, Any]) -> None:
        ack()
        intake.screens.accept_grid_click(body, str(action.get("value", "")))
