"""Plates tried again, end to end through the fake Slack and the fake OpenAI with the real clients: wells
whose model call failed are "not classified" with Retry failed wells, a click classifies only those and
updates the summary, the map, the CSV and the hits in place; a plate uploaded again links to the hits it
already answered and never calls a well it could not classify "not imaged before"."""
from __future__ import annotations

import hashlib
import io
from typing import Callable

from PIL import Image

from bot.plates.retry import RETRY_WELLS_ACTION
from bot.render import CONFIRM_ACTION
from tests.fakes.openai_server import query_image_sha256
from tests.fakes.slack_server import ApiCall
from tests.slack_harness import CHANNEL, RunningBot, section_text
from tests.test_plates_slack import (ZIP, csv_rows, final_progress, make_zip, plate_members, progress_posts, summary_post,
                                     teach, uploads_in)
from tests.test_team import HITS, channel_posts

INVALID_REQUEST = "The model service rejected the request (HTTP 422)"


def first_wells(count: int, labels: dict[str, str], offset: int = 0) -> tuple[dict[str, bytes], dict[str, str]]:
    """The first `count` wells of a 96-well plate (A1, A2, ...), as plate_members makes them."""
    members, label_of = plate_members(labels, offset=offset)
    kept = list(members)[:count]
    return {name: members[name] for name in kept}, {name: label_of[name] for name in kept}


def updates_of(bot: RunningBot, post: ApiCall) -> list[ApiCall]:
    return [u for u in bot.slack.calls_to("chat.update") if u.params["ts"] == post.response["ts"]]


def click(bot: RunningBot, post: ApiCall, action_id: str, value: str, channel: str = CHANNEL, user: str = "U1") -> None:
    message = {**post.params, "ts": post.response["ts"]}
    bot.slack.push_interactive(bot.slack.block_actions_payload(action_id, value, message=message, channel=channel,
                                                               user=user))


def retry_value(post: ApiCall) -> str:
    (button,) = [element for block in post.params["blocks"] if block["type"] == "actions"
                 for element in block["elements"] if element["action_id"] == RETRY_WELLS_ACTION]
    return button["value"]


def hit_replies(bot: RunningBot, thread_ts: str) -> list[ApiCall]:
    return [c for c in bot.thread_posts(thread_ts) if c.params["text"].startswith("crystals")]


def image_sha(bot: RunningBot, name: str, data: bytes) -> str:
    """The sha256 of an image as the model receives it (normalised)."""
    return hashlib.sha256(bot.normalised(data, name.rsplit("/", 1)[-1]).jpeg).hexdigest()


def test_retry_failed_wells_classifies_only_those_and_updates_everything_in_place(
        database_url: str, start_bot: Callable[..., RunningBot]) -> None:
    bot = start_bot(DATABASE_URL=database_url, HITS_CHANNEL=HITS)
    members, label_of = first_wells(12, {f"A{c}": "crystals" for c in range(1, 13)})  # every well a hit
    teach(bot, members, label_of)
    bot.openai.fail_next(422, times=3)  # three model calls fail for good (a 422 is not tried again; a 400 is, once)

    event = bot.upload(("plate42_2026-11-26.zip", make_zip(members)), **ZIP)

    assert bot.wait_until_done(event, timeout=60) == {"gem", "warning"}
    bot.drain()
    summary = summary_post(bot, event["ts"])
    text = section_text(summary)
    assert summary.params["text"] == "Plate plate42: 9 crystal hits in 12 images · 3 not classified"
    assert ":warning: 3 not classified" in text and "could not be read" not in text.lower()
    assert ":warning: *Not classified (3):* the model call failed. *Retry failed wells* (below) classifies only these" in text
    assert INVALID_REQUEST in text
    (progress,) = progress_posts(bot, event["ts"])
    assert final_progress(bot, progress) == "Plate plate42: 9 of 12 classified (3 not classified) · done"
    store = bot.services.store
    inspection = store.thread_inspection(CHANNEL, event["ts"])
    failed = {j.payload["path"] for j in store.inspection_jobs(inspection.id) if j.state == "failed"}
    assert len(failed) == 3 and len(hit_replies(bot, event["ts"])) == 9
    old_files = uploads_in(bot, event["ts"])
    assert [r["error"].startswith(INVALID_REQUEST) for r in csv_rows(old_files["csv"]) if r["file"] in failed] == [True] * 3
    (shared,) = channel_posts(bot, HITS)
    assert "9 crystal hits in 12 images" in section_text(shared)
    assert len(bot.openai.responses_requests()) == 12

    click(bot, summary, RETRY_WELLS_ACTION, retry_value(summary), channel="C2")  # not the plate's channel
    click(bot, summary, RETRY_WELLS_ACTION, f"{inspection.id + 1}:0")  # no such inspection
    click(bot, summary, RETRY_WELLS_ACTION, "<script>")
    bot.drain()
    assert store.retry_rounds(inspection.id) == 0 and len(bot.openai.responses_requests()) == 12

    click(bot, summary, RETRY_WELLS_ACTION, retry_value(summary))
    click(bot, summary, RETRY_WELLS_ACTION, retry_value(summary))  # a double click

    bot.slack.wait_for(lambda: bot.slack.reactions(CHANNEL, event["ts"]) == {"gem"}, 60, what=":warning: gone")
    bot.drain()
    requests = bot.openai.responses_requests()
    assert len(requests) == 15  # the three failed wells, once each
    assert {query_image_sha256(r) for r in requests[12:]} == {image_sha(bot, name, members[name]) for name in failed}
    assert store.retry_rounds(inspection.id) == 1
    assert summary_post(bot, event["ts"]) == summary  # no second summary: the first is updated
    retrying, *_, final = updates_of(bot, summary)
    assert ":arrows_counterclockwise: Retrying 3 wells (asked by <@U1>)" in section_text(retrying)
    assert all(b["type"] != "actions" for b in retrying.params["blocks"])
    assert final.params["text"] == "Plate plate42: 12 crystal hits in 12 images"
    assert "Not classified" not in section_text(final) and all(b["type"] != "actions" for b in final.params["blocks"])
    assert final_progress(bot, progress) == "Plate plate42: 12 of 12 classified · done"
    replies = hit_replies(bot, event["ts"])
    assert len(replies) == 12 and len({section_text(r).splitlines()[0] for r in replies}) == 12  # each well once

    new_files = uploads_in(bot, event["ts"])
    kinds = ("png", "csv", "hits")  # the map, the CSV and the gallery of the hits
    assert {new_files[kind].file_id for kind in kinds}.isdisjoint({old_files[kind].file_id for kind in kinds})
    assert sorted(bot.slack.deleted_files) == sorted(old_files[kind].file_id for kind in kinds)
    rows = csv_rows(new_files["csv"])
    assert [(r["category"], r["error"]) for r in rows] == [("crystals", "")] * 12
    with Image.open(io.BytesIO(new_files["png"].data or b"")) as picture:
        assert picture.format == "PNG"
    assert store.inspection(inspection.id).map_file_id == new_files["png"].file_id
    assert channel_posts(bot, HITS) == [shared]  # the hits channel's message, updated in place
    (hits_update,) = [u for u in updates_of(bot, shared)]
    assert "12 crystal hits in 12 images" in section_text(hits_update)
    (picture,) = [b for b in hits_update.params["blocks"] if b["type"] == "image"]
    assert picture["slack_file"] == {"id": new_files["png"].file_id}

    click(bot, summary, RETRY_WELLS_ACTION, retry_value(summary))  # the old button, clicked once more
    bot.drain()
    assert store.retry_rounds(inspection.id) == 1 and len(bot.openai.responses_requests()) == 15


def test_a_retry_that_fails_again_offers_the_button_once_more(start_bot: Callable[..., RunningBot]) -> None:
    bot = start_bot()
    members, label_of = first_wells(4, {"A1": "crystals"})
    teach(bot, members, label_of)
    bot.openai.fail_next(422, times=2)
    event = bot.upload(("plate9.zip", make_zip(members)), **ZIP)
    bot.wait_until_done(event, timeout=60)
    bot.drain()
    summary = summary_post(bot, event["ts"])
    first_value = retry_value(summary)

    bot.openai.fail_next(422, times=1)  # one of the two fails again
    click(bot, summary, RETRY_WELLS_ACTION, first_value)
    bot.slack.wait_for(lambda: len(updates_of(bot, summary)) >= 2, 60, what="the summary drawn again")
    bot.drain()
    final = updates_of(bot, summary)[-1]
    assert ":warning: *Not classified (1):*" in section_text(final) and final.params["text"].endswith("· 1 not classified")
    assert retry_value(final) != first_value  # the next round
    assert len(bot.openai.responses_requests()) == 6
    assert bot.slack.reactions(CHANNEL, event["ts"]) >= {"warning"}


def test_a_plate_uploaded_again_links_to_its_earlier_hit_replies_and_knows_what_it_could_not_classify(
        database_url: str, start_bot: Callable[..., RunningBot]) -> None:
    bot = start_bot(DATABASE_URL=database_url, HITS_CHANNEL=HITS, JOB_WORKERS="1")  # images in order: A1, A2, ...
    members, label_of = first_wells(8, {"A2": "crystals", "A5": "crystals"})
    teach(bot, members, label_of)
    bot.openai.fail_next(422, times=2)  # A1 and A2 are not classified the first time
    zipped = make_zip(members)
    first = bot.upload(("plate42_2026-11-26.zip", zipped), **ZIP)
    bot.wait_until_done(first, timeout=60)
    bot.drain()
    (a5_reply,) = hit_replies(bot, first["ts"])
    assert "`A5 · " in section_text(a5_reply)
    assert ":warning: *Not classified (2):*" in section_text(summary_post(bot, first["ts"]))

    again = bot.upload(("plate42_2026-12-01.zip", zipped), **ZIP)  # the same images, uploaded again
    bot.wait_until_done(again, timeout=60)
    bot.drain()

    replies = hit_replies(bot, again["ts"])
    assert [section_text(r).splitlines()[0].split("`")[1].split(" ")[0] for r in replies] == ["A2"]  # A5: not again
    summary = summary_post(bot, again["ts"])
    text = section_text(summary)
    assert summary.params["text"] == "Plate plate42: 2 crystal hits in 8 images"
    assert "*Crystals where the last inspection has no call (1):* *A2*" in text
    assert "not imaged before" not in text and ":new:" not in text
    link = f"https://lab.slack.com/archives/{CHANNEL}/p{a5_reply.response['ts'].replace('.', '')}?thread_ts={first['ts']}&cid={CHANNEL}"
    assert f"• *A5* · 93% · fake explanation of crystals · <{link}|answered before>" in text
    assert len(bot.openai.responses_requests()) == 8 + 2  # A1 and A2 asked again; the rest from the cache

    first_shared, again_shared = channel_posts(bot, HITS)
    assert f"<{link}|A5>" in section_text(again_shared)
    a5_menu = next(b["accessory"] for b in again_shared.params["blocks"] if "|A5>" in b.get("text", {}).get("text", ""))
    a5_job = next(j for j in bot.services.store.thread_jobs(CHANNEL, first["ts"]) if j.reply_ts == a5_reply.response["ts"])
    assert a5_menu["options"][0]["value"] == f"{a5_job.id}:crystals"  # a verdict from here goes to that reply

    value = next(b for b in a5_reply.params["blocks"] if b["type"] == "actions")["elements"][0]["value"]
    before = len(bot.slack.calls_to("chat.update"))
    click(bot, a5_reply, CONFIRM_ACTION, value, user="U7")
    updated = bot.slack.wait_for(lambda: {u.params["ts"] for u in bot.slack.calls_to("chat.update")[before:]
                                          if u.params["channel"] == HITS} == {first_shared.response["ts"],
                                                                              again_shared.response["ts"]} or None,
                                 30, what="both hits messages show the verdict")
    assert updated
    bot.drain()
    assert all(":white_check_mark: Confirmed by <@U7>" in section_text(u) for u in bot.slack.calls_to("chat.update")[before:]
               if u.params["channel"] == HITS)
