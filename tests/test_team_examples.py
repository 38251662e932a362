"""The team teaches the bot, end to end against the fake Slack and the fake OpenAI: Use as example on a
reviewed call, the form, the example in every following prompt, `/crystals examples` and Remove,
EXAMPLE_EDITORS (on SQLite and PostgreSQL where the store decides)."""
from __future__ import annotations

import base64
import json
from typing import Any

from bot.render import CONFIRM_ACTION, CORRECT_ACTION, EXAMPLE_ACTION
from bot.teaching import EXAMPLE_REMOVE_ACTION, EXPLANATION_BLOCK, EXPLANATION_INPUT
from tests.fakes.slack_server import ApiCall
from tests.helpers import content_items, image_bytes, prefix_json
from tests.slack_harness import CHANNEL, RunningBot, section_text

CRYSTALS = ("10.jpeg", image_bytes("crystals", 10))
CLEAR = ("236.jpeg", image_bytes("clear", 236))
PRECIPITATE = ("215.jpeg", image_bytes("precipitate", 215))
EXPLANATION = "Sharp-edged rods along the drop's rim; the rest is clear."


def reviewed_call(bot: RunningBot, upload: tuple[str, bytes], label: str | None = None,
                  user: str = "U1") -> tuple[dict[str, Any], ApiCall]:
    """Upload an image, then confirm its call (or correct it to `label`): (the upload, the call's reply
    as it looks after the verdict)."""
    event = bot.upload(upload)
    bot.wait_until_done(event)
    (reply,) = bot.wait_for_posts(event["ts"], 1)
    (job,) = bot.services.store.jobs_of_message(CHANNEL, event["ts"])
    message = {**reply.params, "ts": reply.response["ts"]}
    updates = len(bot.slack.calls_to("chat.update"))
    if label is None:
        click = bot.slack.block_actions_payload(CONFIRM_ACTION, _button(reply.params, CONFIRM_ACTION)["value"],
                                                message=message, channel=CHANNEL, user=user)
    else:
        click = bot.slack.block_actions_payload(CORRECT_ACTION, None, message=message, channel=CHANNEL, user=user,
                                                selected_option_value=f"{job.id}:{label}")
    bot.slack.push_interactive(click)
    updated = bot.slack.wait_for(lambda: bot.slack.calls_to("chat.update")[updates:], what="the verdict shown")[0]
    return event, updated


def _button(message: dict[str, Any], action_id: str) -> dict[str, Any]:
    return next(element for block in message.get("blocks", []) if block["type"] in {"actions", "section"}
                for element in block.get("elements", [block.get("accessory") or {}])
                if element.get("action_id") == action_id)


def click_use_as_example(bot: RunningBot, reply: ApiCall, user: str = "U1") -> None:
    envelope = bot.slack.push_interactive(bot.slack.block_actions_payload(
        EXAMPLE_ACTION, _button(reply.params, EXAMPLE_ACTION)["value"],
        message=reply.params, channel=CHANNEL, user=user))
    bot.slack.wait_for_ack(envelope)


def submit(bot: RunningBot, view: dict[str, Any], explanation: str, user: str = "U1") -> dict[str, Any] | None:
    """Submit the form as typed; Slack's ack payload (None: accepted)."""
    envelope = bot.slack.push_interactive(bot.slack.view_submission_payload(
        view, {EXPLANATION_BLOCK: {EXPLANATION_INPUT: explanation}}, user=user))
    return bot.slack.wait_for_ack(envelope)


def classify_next(bot: RunningBot, upload: tuple[str, bytes]) -> dict[str, Any]:
    """Upload an image the model has not seen; the classification request the model received."""
    before = len(bot.openai.responses_requests())
    event = bot.upload(upload)
    bot.wait_until_done(event)
    (request,) = bot.openai.responses_requests()[before:]
    return request


def fingerprints(bot: RunningBot) -> list[str]:
    """The fingerprint of every call, in the order they were made."""
    store = bot.services.store
    return [store._rows("SELECT fingerprint FROM calls WHERE id = ?", n)[0]["fingerprint"]
            for n in range(1, 100) if store.call(n)]


def examples_listing(bot: RunningBot, user: str = "U1") -> dict[str, Any]:
    envelope = bot.slack.push_slash_command(bot.slack.slash_command_payload("examples", channel=CHANNEL, user=user))
    return bot.slack.wait_for_ack(envelope)


def test_use_as_example_teaches_every_following_prompt_and_removing_it_restores_the_prompt(
        database_url, start_bot) -> None:
    bot = start_bot(DATABASE_URL=database_url)
    bot.openai.label_image(bot.normalised(CRYSTALS[1], CRYSTALS[0]).jpeg, "crystals")
    before = classify_next(bot, CLEAR)

    event, reply = reviewed_call(bot, CRYSTALS)
    assert _button(reply.params, EXAMPLE_ACTION)["text"]["text"] == "Use as example"
    click_use_as_example(bot, reply)
    (view,) = bot.slack.wait_for(bot.slack.opened_views, what="the example form")
    form = json.dumps(view["blocks"])
    assert ":gem: *crystals*" in form and "confirmed by <@U1>" in form
    (field,) = [b for b in view["blocks"] if b.get("block_id") == EXPLANATION_BLOCK]
    (job,) = bot.services.store.jobs_of_message(CHANNEL, event["ts"])
    assert field["element"]["initial_value"] == bot.services.store.call(job.call_id).explanation
    assert submit(bot, view, EXPLANATION) is None
    bot.drain()

    (note,) = [p for p in bot.thread_posts(event["ts"]) if ":pushpin:" in p.params["text"]]
    assert f"<@U1> made this image an example of :gem: *crystals*, explained as “{EXPLANATION}”" in section_text(note)
    taught = classify_next(bot, PRECIPITATE)
    items = content_items(taught)
    example_jpeg = bot.normalised(CRYSTALS[1], CRYSTALS[0]).jpeg
    (shown,) = [n for n, item in enumerate(items) if item.get("image_url", "").endswith(
        base64.b64encode(example_jpeg).decode())]
    assert items[shown - 1]["text"] == "**Example 5:**"
    # the explanation comes after the instructions, as the example's quoted explanation
    assert items[shown + 1]["text"] == f"Label: crystals\nExplanation: \"{EXPLANATION}\" (a lab member's words, quoted)"
    assert items[0]["text"].startswith(bot.services.prompt_set.instructions) and EXPLANATION not in items[0]["text"]
    assert items[:-5] == content_items(before)[:-2]  # the files' examples stay first, unchanged
    assert len(set(fingerprints(bot))) == 2
    again = classify_next(bot, ("216.jpeg", image_bytes("precipitate", 216)))
    assert prefix_json(again) == prefix_json(taught)  # byte-stable: the provider's prompt cache applies

    listing = examples_listing(bot)
    assert "1 added by the team" in listing["text"] and EXPLANATION in json.dumps(listing["blocks"])
    remove = _button(listing, EXAMPLE_REMOVE_ACTION)
    posts = len(bot.slack.response_url_posts)
    bot.slack.push_interactive(bot.slack.block_actions_payload(
        EXAMPLE_REMOVE_ACTION, remove["value"], message={"ts": "1.0", **listing}, channel=CHANNEL))
    (_, updated), = bot.slack.wait_for(lambda: bot.slack.response_url_posts[posts:], what="the list updated")
    assert updated["replace_original"] is True and "Removed the *crystals* example `10.jpeg`" in updated["text"]
    assert "0 added by the team" in updated["text"]

    restored = classify_next(bot, ("other.jpeg", image_bytes("other", 1254)))
    assert prefix_json(restored) == prefix_json(before)
    assert fingerprints(bot)[-1] == fingerprints(bot)[0]


def test_a_corrected_call_becomes_an_example_of_the_teams_label_with_what_the_model_observed(start_bot) -> None:
    bot = start_bot()
    event, reply = reviewed_call(bot, PRECIPITATE, label="crystals")
    click_use_as_example(bot, reply)
    (view,) = bot.slack.wait_for(bot.slack.opened_views, what="the example form")
    assert "corrected from *clear* by <@U1>" in json.dumps(view["blocks"])
    (field,) = [b for b in view["blocks"] if b.get("block_id") == EXPLANATION_BLOCK]
    (job,) = bot.services.store.jobs_of_message(CHANNEL, event["ts"])
    assert field["element"]["initial_value"] == bot.services.store.call(job.call_id).observations
    assert submit(bot, view, "Tiny crystals at the edge.") is None
    (example,) = bot.services.store.team_examples()
    assert (example.label, example.explanation, example.added_by) == ("crystals", "Tiny crystals at the edge.", "U1")


def test_an_empty_explanation_or_an_image_already_used_is_refused_in_the_form(start_bot) -> None:
    bot = start_bot()
    bot.openai.label_image(bot.normalised(CRYSTALS[1], CRYSTALS[0]).jpeg, "crystals")
    _, reply = reviewed_call(bot, CRYSTALS)
    click_use_as_example(bot, reply)
    (view,) = bot.slack.wait_for(bot.slack.opened_views, what="the example form")
    assert submit(bot, view, "   \n ") == {"response_action": "errors",
                                           "errors": {EXPLANATION_BLOCK: "Write one line on what in the image "
                                                                         "shows this label."}}
    assert submit(bot, view, "Rods.") is None
    again = submit(bot, view, "Rods, again.", user="U2")
    assert "already an example of *crystals* (added by <@U1>)" in again["errors"][EXPLANATION_BLOCK]
    assert [e.explanation for e in bot.services.store.team_examples()] == ["Rods."]

    posts = len(bot.slack.response_url_posts)
    click_use_as_example(bot, reply, user="U2")
    (_, told), = bot.slack.wait_for(lambda: bot.slack.response_url_posts[posts:], what="the click answered")
    assert "already an example" in told["text"] and told["response_type"] == "ephemeral"
    assert len(bot.slack.opened_views()) == 1


def test_someone_outside_example_editors_is_refused_with_a_clear_message(database_url, start_bot) -> None:
    bot = start_bot(DATABASE_URL=database_url, EXAMPLE_EDITORS="U9, U8")
    _, reply = reviewed_call(bot, CRYSTALS)
    click_use_as_example(bot, reply, user="U1")
    (_, refusal), = bot.slack.wait_for(lambda: bot.slack.response_url_posts, what="the refusal")
    assert refusal["text"] == ("Only <@U8>, <@U9> can add or remove the examples I learn from (EXAMPLE_EDITORS). "
                               "Ask one of them, or an admin to add you.")
    assert refusal["response_type"] == "ephemeral" and refusal["replace_original"] is False
    assert bot.slack.calls_to("views.open") == []

    click_use_as_example(bot, reply, user="U9")
    (view,) = bot.slack.wait_for(bot.slack.opened_views, what="the form, for an editor")
    forged = submit(bot, view, "Rods.", user="U1")  # a form reached by someone else is refused too
    assert "Only <@U8>, <@U9>" in forged["errors"][EXPLANATION_BLOCK]
    assert submit(bot, view, "Rods.", user="U9") is None

    listing = examples_listing(bot)
    posts = len(bot.slack.response_url_posts)
    bot.slack.push_interactive(bot.slack.block_actions_payload(
        EXAMPLE_REMOVE_ACTION, _button(listing, EXAMPLE_REMOVE_ACTION)["value"], message={"ts": "1.0", **listing},
        channel=CHANNEL, user="U1"))
    (_, refused), = bot.slack.wait_for(lambda: bot.slack.response_url_posts[posts:], what="the refusal")
    assert refused["text"].startswith("Only <@U8>, <@U9>") and refused["replace_original"] is False
    assert len(bot.services.store.team_examples()) == 1


def test_use_as_example_is_offered_only_once_the_team_reviewed_the_call(start_bot) -> None:
    bot = start_bot()
    event = bot.upload(CRYSTALS)
    (reply,) = bot.wait_for_posts(event["ts"], 1)
    actions = json.dumps(reply.params["blocks"])
    assert EXAMPLE_ACTION not in actions and CONFIRM_ACTION in actions
