"""A plate's context behind Slack's walls, end to end against the fake Slack and the fake OpenAI with the real
clients, in the workspace of tests/test_privacy.py (Alice in everything, Bob not in the private channel, a
guest in the public one): a screen belongs to the channel it was added in, so it is listed, used for plates
and removed only as that channel allows; a public channel's screen serves plates elsewhere; deleting a
screen's upload in Slack removes the screen; `/crystals plate NAME` is for the channel's members; and a
click (grid, History, Retry failed wells) whose value names another channel's plate does nothing."""
from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from bot.plates.history_report import HISTORY_ACTION
from bot.plates.retry import RETRY_WELLS_ACTION, WellsRetry
from bot.screens.messages import (GRID_ACTION, NOT_IN_SCREENS_CHANNEL, SCREEN_REMOVE_ACTION, no_such_screen,
                                  screen_unchecked)
from tests.helpers import content_items
from tests.slack_harness import RunningBot, section_text
from tests.test_plates_slack import drop_jpeg, make_zip, summary_post, teach
from bot.visibility import NOT_A_MEMBER
from tests.test_privacy import (ALICE, BOB, GUEST, MARKER, PRIVATE, PUBLIC, ZIP, audit, click, command,  # noqa: F401
                                deliver, sent_to, walls)
from tests.test_screens_slack import CSV

SECRET_D7 = f"0.1 M Sodium acetate pH 5.0, 20% w/v PEG 3350, 0.2 M {MARKER}ate"  # the private channel's chemistry
OPEN_D7 = "0.1 M Sodium acetate pH 4.6, 15% w/v PEG 3350"


def screen_csv(d7: str) -> bytes:
    return f'Well,Condition\nA1,"0.2 M NaCl, 0.1 M HEPES pH 7.5, 20% PEG 4000"\nD7,"{d7}"\n'.encode()


def add_screen(bot: RunningBot, channel: str, name: str, d7: str, file_name: str) -> dict[str, Any]:
    """Alice uploads a screen file in `channel` with the text `screen NAME`."""
    event = bot.upload((file_name, screen_csv(d7)), text=f"screen {name}", channel=channel, user=ALICE, **CSV)
    assert bot.wait_until_done(event, timeout=30) == {"test_tube"}
    return event


def plate(bot: RunningBot, channel: str, zip_name: str, text: str = "", *, user: str = ALICE, offset: int = 0,
          extra: dict[str, bytes] | None = None) -> dict[str, Any]:
    """A two-well plate (A1 clear, D7 crystals) uploaded in `channel`; done once everything it queued is."""
    members = {"A1.jpg": drop_jpeg(offset + 1), "D7.jpg": drop_jpeg(offset + 2)}
    teach(bot, members, {"A1.jpg": "clear", "D7.jpg": "crystals"})
    event = bot.upload((zip_name, make_zip({**members, **(extra or {})})), text=text, channel=channel, user=user,
                       **ZIP)
    bot.wait_until_done(event, timeout=60)
    bot.drain()
    return event


def hit_reply(bot: RunningBot, event: dict[str, Any]) -> dict[str, Any]:
    """The plate's D7 reply, as a message a click can come from."""
    (reply,) = [c for c in bot.thread_posts(event["ts"]) if c.params["text"].startswith("crystals")]
    return {**reply.params, "ts": reply.response["ts"]}


def listed(answer: dict[str, Any]) -> str:
    return json.dumps(answer, ensure_ascii=False)


def test_a_private_channels_screen_is_listed_used_and_removed_only_as_its_channel_allows(walls, audit,
                                                                                        caplog) -> None:
    bot = walls()
    caplog.set_level(logging.INFO)
    store = bot.services.store
    add_screen(bot, PRIVATE, "Secret", SECRET_D7, f"{MARKER}-screen.csv")
    add_screen(bot, PUBLIC, "Open", OPEN_D7, "open.csv")
    secret = store.screen_named("Secret", PRIVATE)

    mine, bobs, guests = (command(bot, audit, person, "screens") for person in (ALICE, BOB, GUEST))
    assert "*Screens (2)*" in listed(mine) and f"{MARKER}-screen.csv" in listed(mine) and "*Secret*" in listed(mine)
    for theirs in (bobs, guests):
        assert "*Screens (1)*" in listed(theirs) and "*Open*" in listed(theirs)
        assert "1 more screen from channels you are not in" in listed(theirs) and "*Secret*" not in listed(theirs)

    # Bob cannot use it for a plate of the public channel: told the same as for a name nobody has
    assert command(bot, audit, BOB, "plate plate7 screen secret")["text"] == no_such_screen("secret")
    assert store.plate_screen(PUBLIC, "plate7") is None
    named = plate(bot, PUBLIC, "plate8.zip", "plate8 screen Secret", user=BOB)
    assert no_such_screen("Secret") in section_text(summary_post(bot, named["ts"]))
    assert ":test_tube:" not in shown_text(hit_reply(bot, named)) and store.plate_screen(PUBLIC, "plate8") is None
    # ...nor remove it, with a Remove button's value forged in the public channel
    click(bot, audit, BOB, SCREEN_REMOVE_ACTION, str(secret.id), {"ts": "1.0", **bobs}, PUBLIC)
    (_, refused), = bot.slack.wait_for(lambda: bot.slack.response_url_posts[-1:], what="the refusal")
    assert refused["text"].startswith(NOT_IN_SCREENS_CHANNEL) and store.screen(secret.id) == secret
    assert f"{BOB} may not remove screen {secret.id} of channel {PRIVATE}" in caplog.text

    own = plate(bot, PRIVATE, "plate42.zip", "plate42 screen Secret", offset=10)  # in its own channel it works
    assert f":test_tube: *Secret D7*: 0.1 M NaOAc pH 5.0, 20% PEG 3350, 0.2 M {MARKER}ate" in shown_text(
        hit_reply(bot, own))
    listing = command(bot, audit, ALICE, "screens", PRIVATE)
    responses = len(bot.slack.response_url_posts)
    click(bot, audit, ALICE, SCREEN_REMOVE_ACTION, str(secret.id), {"ts": "1.0", **listing}, PRIVATE)
    (_, removed), = bot.slack.wait_for(lambda: bot.slack.response_url_posts[responses:], what="the list updated")
    assert removed["text"].startswith(":wastebasket: Removed screen *Secret*") and store.screen(secret.id) is None

    for person in (BOB, GUEST):
        assert MARKER not in sent_to(bot, audit, person), person
    assert MARKER in sent_to(bot, audit, ALICE)  # the same search finds it for a member: the test can fail


def test_a_public_channels_screen_serves_plates_elsewhere_and_a_private_ones_never_does(walls, audit,
                                                                                      caplog) -> None:
    bot = walls()
    caplog.set_level(logging.INFO)
    store = bot.services.store
    add_screen(bot, PUBLIC, "Open", OPEN_D7, "open.csv")

    bot.slack.fail_next("conversations.info", 500)  # Slack cannot say whether the screen's channel is public
    assert command(bot, audit, ALICE, "plate plate42 screen Open", PRIVATE)["text"] == screen_unchecked("Open")
    assert store.plate_screen(PRIVATE, "plate42") is None
    linked = command(bot, audit, ALICE, "plate plate42 screen Open", PRIVATE)["text"]
    assert linked.startswith(f":test_tube: Plate *plate42* in this channel uses screen *Open* of <#{PUBLIC}>")
    used = plate(bot, PRIVATE, "plate42.zip")
    assert ":test_tube: *Open D7*: 0.1 M NaOAc pH 4.6, 15% PEG 3350" in shown_text(hit_reply(bot, used))

    # a plate of the public channel linked to a private channel's screen (as the bot allowed before screens
    # belonged to their channel) shows none of it: not in its replies, its grid or a follow-up's model input
    add_screen(bot, PRIVATE, "Secret", SECRET_D7, f"{MARKER}-screen.csv")
    store.link_plate(PUBLIC, "plate9", store.screen_named("Secret", PRIVATE).id, ALICE)
    shown = plate(bot, PUBLIC, "plate9.zip", user=BOB, offset=20)
    reply = hit_reply(bot, shown)
    assert ":test_tube:" not in shown_text(reply) and GRID_ACTION not in shown_text(reply)
    assert "Screen" not in section_text(summary_post(bot, shown["ts"]))
    assert f"plate plate9 of channel {PUBLIC} is linked to screen" in caplog.text
    job_id = next(job.id for job in store.every_job_of_message(PUBLIC, shown["ts"]) if job.kind == "plate_image"
                  and job.payload.get("well") == "D7")
    click(bot, audit, BOB, GRID_ACTION, f"{job_id}:4x6", reply, PUBLIC)  # a grid asked for all the same
    bot.slack.wait_for(lambda: any("its plate has no screen" in c.params["text"]
                                   for c in bot.thread_posts(shown["ts"])), 30, what="the grid refused")
    bot.say("why crystals in D7?", thread_ts=shown["ts"], channel=PUBLIC, user=BOB)
    bot.slack.wait_for(lambda: [c for c in bot.thread_posts(shown["ts"]) if "Fake answer" in c.params["text"]], 30,
                       what="the answer")
    question = json.dumps(content_items(bot.openai.responses_requests()[-1]))
    assert "D7" in question and MARKER not in question and "The plate's screen is" not in question
    assert MARKER not in sent_to(bot, audit, BOB)


def test_deleting_a_screens_file_or_the_zip_it_came_in_removes_the_screen(walls, audit, caplog) -> None:
    bot = walls()
    caplog.set_level(logging.INFO)
    store = bot.services.store
    upload = add_screen(bot, PUBLIC, "Open", OPEN_D7, "open.csv")
    assert command(bot, audit, ALICE, "plate plate42 screen Open")["text"].startswith(":test_tube: Plate *plate42*")
    before = plate(bot, PUBLIC, "plate42_2026-11-26.zip")
    assert ":test_tube: *Open D7*" in shown_text(hit_reply(bot, before))
    screen = store.screen_named("Open", PUBLIC)

    deliver(bot, bot.slack.file_deleted_event(upload["files"][0]["id"]))
    assert store.screens() == [] and store.screen_conditions(screen.id) == {}
    assert store.plate_screen(PUBLIC, "plate42") is None  # its plate unlinked
    assert f"screens removed: {screen.id} 'Open' of {PUBLIC}," in caplog.text
    assert "*Open*" not in listed(command(bot, audit, ALICE, "screens"))
    after = plate(bot, PUBLIC, "plate42_2026-12-01.zip", offset=30)  # the plate's next inspection shows none
    assert ":test_tube:" not in shown_text(hit_reply(bot, after))
    assert "Screen" not in section_text(summary_post(bot, after["ts"]))

    zipped = plate(bot, PUBLIC, "plate9.zip", offset=40, extra={"inspection/Index9.csv": screen_csv(OPEN_D7)})
    assert [s.name for s in store.screens()] == ["Index9"]
    deliver(bot, bot.slack.delete_message(PUBLIC, zipped["ts"]))
    assert store.screens() == [] and store.plate_screen(PUBLIC, "plate9") is None

    unshared = add_screen(bot, PUBLIC, "Unshared", OPEN_D7, "unshared.csv")
    deliver(bot, bot.slack.unshare_file(unshared["files"][0]["id"], PUBLIC))  # left in no channel
    assert store.screens() == []


def shown_text(message: dict[str, Any]) -> str:
    """Everything a posted message's blocks show (sections, context lines, buttons)."""
    return json.dumps(message.get("blocks", []), ensure_ascii=False)


# --- a plate's inspections and the clicks on a plate ------------------------------------------------------


def test_crystals_plate_name_is_for_the_channels_members_only(walls, audit) -> None:
    bot = walls()
    plate(bot, PRIVATE, f"{MARKER}-plate.zip")
    name = bot.services.store.recent_inspections(PRIVATE, 1)[0].plate_name

    # a plate it has (its inspections would be posted there), and one it has not (the answer lists its plates)
    for text in (f"plate {name}", "plate nosuch"):
        assert command(bot, audit, BOB, text, PRIVATE)["text"] == NOT_A_MEMBER
    assert command(bot, audit, ALICE, f"plate {name}", PRIVATE)["text"].startswith(f"Plate {name}: its inspections")
    bot.drain()
    assert len([u for u in bot.slack.uploads if u.filename.endswith("_hits_per_inspection.png")]) == 1  # Alice's
    assert MARKER not in sent_to(bot, audit, BOB)


CLICKS = {  # a click -> the job it makes, and what the log says of a forged one
    GRID_ACTION: ("grid", "ignored a grid click with value"),
    HISTORY_ACTION: ("history", "ignored a History click with value"),
    RETRY_WELLS_ACTION: ("plate_retry", "ignored (no finished inspection of that channel"),
}


@pytest.mark.parametrize("action", list(CLICKS))
def test_a_click_whose_value_names_another_channels_plate_does_nothing(walls, audit, caplog, action: str) -> None:
    bot = walls()
    caplog.set_level(logging.INFO)
    store = bot.services.store
    add_screen(bot, PRIVATE, "Lab", SECRET_D7, f"{MARKER}-screen.csv")
    event = plate(bot, PRIVATE, "plate5.zip", "plate5 screen Lab")
    reply = hit_reply(bot, event)
    (hit,) = [job for job in store.every_job_of_message(PRIVATE, event["ts"]) if job.payload.get("well") == "D7"]
    values = {GRID_ACTION: next(e["value"] for b in reply["blocks"] for e in b.get("elements", [])
                                if e.get("action_id") == GRID_ACTION),
              HISTORY_ACTION: str(hit.id),
              RETRY_WELLS_ACTION: WellsRetry(hit.inspection_id or 0, 0).value}
    kind, logged = CLICKS[action]

    def made() -> list[str]:
        return [job.kind for job in store.every_job_of_message(PRIVATE, event["ts"]) if job.kind == kind]

    sent = len(bot.slack.calls), len(bot.slack.uploads)
    click(bot, audit, BOB, action, values[action], {"ts": "1.0", "blocks": []}, PUBLIC)  # forged in the public channel
    bot.drain()
    assert made() == [] and logged in caplog.text
    assert [c.method for c in bot.slack.calls[sent[0]:] if c.method.startswith(("chat.", "files."))] == []
    assert len(bot.slack.uploads) == sent[1]

    click(bot, audit, ALICE, action, values[action], reply, PRIVATE)  # the same value, in its own channel, works
    bot.slack.wait_for(made, 30, what=f"the {kind} job")
