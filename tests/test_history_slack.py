"""A plate's history end to end, through the real Slack and OpenAI clients against the fakes: since when a
re-inspected hit has been crystals, the History picture (button and question), the gallery with each
summary, `/crystals plate NAME`, and a 1536-image HWI plate."""
from __future__ import annotations

import io
import time
from typing import Any, Callable

import pytest
from PIL import Image

from bot.plates.gallery import CONDITION_LINES
from bot.plates.history_report import HISTORY_ACTION
from bot.plates.sheets import CAPTION_SIZE
from bot.plates.wells import well_from_number
from bot.render import CONFIRM_ACTION
from tests.fakes.slack_server import ApiCall, SlackError, Upload
from tests.slack_harness import CHANNEL, RunningBot, section_text
from tests.test_screens_slack import add_jcsg
from tests.test_plates_slack import (ZIP, csv_rows, drop_jpeg, make_zip, plate_members, summary_post, teach,
                                     uploads_in)

ROWS_KEPT = "ABCD"  # 48 wells of a 96-well plate: enough for a plate, quick to classify


def small_plate(labels: dict[str, str], offset: int) -> tuple[dict[str, bytes], dict[str, str]]:
    members, label_of = plate_members(labels, offset=offset)
    kept = {name: data for name, data in members.items() if name.split("_")[1][0] in ROWS_KEPT}
    return kept, {name: label_of[name] for name in kept}


def inspect(bot: RunningBot, zip_name: str, labels: dict[str, str], offset: int) -> dict[str, Any]:
    members, label_of = small_plate(labels, offset)
    teach(bot, members, label_of)
    event = bot.upload((zip_name, make_zip(members)), **ZIP)
    bot.wait_until_done(event, timeout=60)
    return event


def hit_replies(bot: RunningBot, thread_ts: str) -> dict[str, ApiCall]:
    """The thread's crystal hit replies by well."""
    return {section_text(post).split("`")[1].split(" · ")[0]: post for post in bot.thread_posts(thread_ts)
            if post.params["text"].startswith("crystals")}


def note(reply: ApiCall) -> dict[str, Any] | None:
    return next((b for b in reply.params["blocks"] if b.get("accessory", {}).get("action_id") == HISTORY_ACTION), None)


def shared_comment(bot: RunningBot, upload: Upload) -> str:
    """The comment posted with an uploaded file (Slack shares it as a message with the file)."""
    (message,) = [m for m in bot.slack.messages(CHANNEL) if any(f["id"] == upload.file_id for f in m.get("files", []))]
    return message["text"]


def wait_for_upload(bot: RunningBot, predicate: Callable[[Upload], bool], what: str) -> Upload:
    return bot.slack.wait_for(lambda: next((u for u in bot.slack.uploads if predicate(u)), None), 30, what=what)


def picture(upload: Upload) -> Image.Image:
    image = Image.open(io.BytesIO(upload.data or b""))
    assert image.format == "PNG"
    return image


@pytest.fixture
def reinspected(database_url: str, start_bot: Callable[..., RunningBot]) -> tuple[RunningBot, dict, dict]:
    """plate42 imaged on 2026-11-26 (B3 crystals) and on 2026-12-01 (B3 and D7 crystals)."""
    bot = start_bot(DATABASE_URL=database_url)
    first = inspect(bot, "plate42_2026-11-26.zip", {"B3": "crystals", "D7": "clear"}, offset=0)
    again = inspect(bot, "plate42_2026-12-01_0930.zip", {"B3": "crystals", "D7": "crystals"}, offset=500)
    bot.drain()
    return bot, first, again


def test_a_reinspected_hit_says_since_when_and_history_shows_the_drop_at_each_inspection(reinspected) -> None:
    bot, first, again = reinspected
    assert note(hit_replies(bot, first["ts"])["B3"]) is None  # the plate's first inspection: nothing to tell yet
    replies = hit_replies(bot, again["ts"])
    assert set(replies) == {"B3", "D7"}
    assert note(replies["B3"])["text"]["text"] == (":calendar: Crystals since *2026-11-26, day 0*: 2 inspections in "
                                                   "a row.")
    d7_note = note(replies["D7"])
    assert d7_note["text"]["text"] == (":calendar: Crystals since *2026-12-01, day 5*: new at this inspection "
                                       "(before: clear on day 0).")
    assert [b["type"] for b in replies["D7"].params["blocks"]][:2] == ["section", "section"]  # right under the call

    reply = replies["D7"]
    bot.slack.push_interactive(bot.slack.block_actions_payload(
        HISTORY_ACTION, d7_note["accessory"]["value"], message={**reply.params, "ts": reply.response["ts"]},
        channel=CHANNEL))
    strip = wait_for_upload(bot, lambda u: u.filename == "plate42_D7_history.png", "the history picture")
    assert (strip.channel, strip.thread_ts, strip.title) == (CHANNEL, again["ts"], "D7 of plate42 over time")
    assert shared_comment(bot, strip) == ("*D7* of plate plate42: clear (day 0) → crystals (day 5)\n"
                                          "Crystals since *2026-12-01, day 5*: new at this inspection (before: clear "
                                          "on day 0).")
    with picture(strip) as image:
        assert image.width >= 640 and image.height < 500  # two inspections side by side

    before = len(bot.slack.calls_to("chat.update"))
    b3 = replies["B3"]
    value = next(b for b in b3.params["blocks"] if b["type"] == "actions")["elements"][0]["value"]
    bot.slack.push_interactive(bot.slack.block_actions_payload(
        CONFIRM_ACTION, value, message={**b3.params, "ts": b3.response["ts"]}, channel=CHANNEL, user="U7"))
    (update,) = bot.slack.wait_for(lambda: [u for u in bot.slack.calls_to("chat.update")[before:]
                                            if u.params["ts"] == b3.response["ts"]], what="the confirmed reply")
    assert "Crystals since *2026-11-26, day 0*" in section_text(update)  # the note stays with the verdict


def test_show_a_well_over_time_even_when_its_images_are_pruned_or_slack_refuses_the_picture(reinspected) -> None:
    bot, _, again = reinspected
    model_calls = len(bot.openai.responses_requests())
    store = bot.services.store
    assert store.prune(0, time.time() + 60) == (0, 96)  # KEEP_IMAGES_DAYS has passed for every image

    bot.say("show B3 over time", thread_ts=again["ts"])
    strip = wait_for_upload(bot, lambda u: u.filename == "plate42_B3_history.png", "the history picture")
    assert shared_comment(bot, strip).startswith("*B3* of plate plate42: crystals (day 0) → crystals (day 5)\n")
    with picture(strip) as image:
        assert image.width >= 640
    bot.say("show AF48 over time please", thread_ts=again["ts"])
    answer = bot.slack.wait_for(lambda: [p for p in bot.thread_posts(again["ts"]) if "AF48" in p.params["text"]],
                                what="the answer about AF48")
    assert answer[0].params["text"] == "Plate plate42 has no image of AF48 at any inspection."

    def no_scope(params: dict) -> dict:
        raise SlackError("missing_scope")

    bot.slack.set_handler("files.getUploadURLExternal", no_scope)  # an app installed without files:write
    bot.say("show D7 over time", thread_ts=again["ts"])
    refused = bot.slack.wait_for(lambda: [p for p in bot.thread_posts(again["ts"]) if "refused" in p.params["text"]],
                                 what="the refused picture's message")
    assert refused[0].params["text"] == (":warning: I could not post the picture: Slack refused the upload "
                                         "(`missing_scope`). An admin should check that the app has the `files:write` "
                                         "scope.")
    bot.drain()
    assert len(bot.openai.responses_requests()) == model_calls  # pictures, not model calls


def test_the_gallery_comes_with_the_summary(reinspected) -> None:
    bot, first, again = reinspected
    files = uploads_in(bot, again["ts"])
    assert set(files) == {"png", "csv", "hits"}
    assert files["hits"].title == "Crystal hits of plate42"
    with picture(files["hits"]) as image:
        assert 700 < image.width < 1000  # two hits: big tiles
    assert uploads_in(bot, first["ts"])["hits"].data != files["hits"].data


def test_crystals_plate_name_posts_the_plates_inspections_and_a_chart(reinspected) -> None:
    bot, first, again = reinspected
    envelope = bot.slack.push_slash_command(bot.slack.slash_command_payload("plate PLATE42", channel=CHANNEL))
    assert bot.slack.wait_for_ack(envelope)["text"] == (
        "Plate plate42: its inspections and a chart of its hits are coming up in this channel.")
    chart = wait_for_upload(bot, lambda u: u.filename == "plate42_hits_per_inspection.png", "the chart")
    assert (chart.channel, chart.thread_ts) == (CHANNEL, None)
    lines = shared_comment(bot, chart).splitlines()
    assert lines[0] == ("*Plate plate42*: 2 inspections in this channel, day 0 (2026-11-26) to day 5 (2026-12-01). "
                        "The team's verdicts count where given.")
    assert lines[1].startswith("• *2026-11-26*, day 0: 48 images · :droplet: 47 :gem: 1 :hourglass: 0 "
                               ":grey_question: 0 · *1 crystal hit* · <")
    assert lines[2].startswith("• *2026-12-01 09:30*, day 5: 48 images · :droplet: 46 :gem: 2 :hourglass: 0 "
                               ":grey_question: 0 · *2 crystal hits*, :new: 1 new: D7 · <")
    with picture(chart) as image:
        assert image.width >= 500

    envelope = bot.slack.push_slash_command(bot.slack.slash_command_payload("plate plate9", channel=CHANNEL))
    assert bot.slack.wait_for_ack(envelope)["text"] == (
        "No plate named plate9 has been inspected in this channel. Plates here, latest first: plate42.")

    bot.slack.wait_for_ack(bot.slack.push_event(bot.slack.delete_message(CHANNEL, first["ts"])))  # shared nowhere now
    bot.drain(timeout=30)
    envelope = bot.slack.push_slash_command(bot.slack.slash_command_payload("plate plate42", channel=CHANNEL))
    bot.slack.wait_for_ack(envelope)
    again_chart = wait_for_upload(bot, lambda u: u.filename == chart.filename and u.file_id != chart.file_id,
                                  "the chart without the deleted inspection")
    assert shared_comment(bot, again_chart).splitlines()[0] == (
        "*Plate plate42*: 1 inspection in this channel. The team's verdicts count where given.")


HWI_PLATE = "X000015862"


def test_a_1536_image_hwi_plate_gets_its_map_summary_csv_and_gallery(start_bot: Callable[..., RunningBot]) -> None:
    bot = start_bot(JOB_WORKERS="32")
    hits = {361: "H25", 1536: "AF48", 1249: "AA1"}
    members = {f"{HWI_PLATE}-Visible/{HWI_PLATE}{n:04d}202008111512.jpg": drop_jpeg(n) for n in range(1, 1537)}
    teach(bot, members, {name: "crystals" if int(name[-20:-16]) in hits else "clear" for name in members})

    event = bot.upload((f"{HWI_PLATE}.zip", make_zip(members)), **ZIP)

    assert bot.wait_until_done(event, timeout=300) == {"gem"}
    bot.drain(timeout=60)
    summary = section_text(summary_post(bot, event["ts"]))
    assert f"*Plate {HWI_PLATE}*: 1536 images" in summary
    assert summary.index("*H25*") < summary.index("*AA1*") < summary.index("*AF48*")
    files = uploads_in(bot, event["ts"])
    rows = csv_rows(files["csv"])
    assert len(rows) == 1536 and (rows[0]["well"], rows[-1]["well"]) == ("A1", "AF48")
    assert {row["well"] for row in rows if row["category"] == "crystals"} == {str(well_from_number(n)) for n in hits}
    with picture(files["png"]) as plate_map:
        assert plate_map.width > 1700  # 48 columns
    assert set(hit_replies(bot, event["ts"])) == set(hits.values())
    inspection = bot.services.store.thread_inspection(CHANNEL, event["ts"])
    assert (inspection.dated_from, time.strftime("%Y-%m-%d", time.gmtime(inspection.imaged_at))) == ("images",
                                                                                                     "2020-08-11")
    with picture(files["hits"]) as gallery:
        assert gallery.width > 1000  # three hits


def test_the_gallery_labels_each_hit_with_its_wells_condition(start_bot: Callable[..., RunningBot]) -> None:
    bot = start_bot()
    add_jcsg(bot)
    members, label_of = plate_members({"B3": "crystals", "D7": "crystals"})
    teach(bot, members, label_of)
    plain = bot.upload(("plate41.zip", make_zip(members)), **ZIP)
    bot.wait_until_done(plain, timeout=60)
    screened = bot.upload(("plate42.zip", make_zip(members)), text="plate42 screen JCSG+", **ZIP)
    bot.wait_until_done(screened, timeout=60)
    bot.drain()

    with picture(uploads_in(bot, plain["ts"])["hits"]) as without, \
            picture(uploads_in(bot, screened["ts"])["hits"]) as with_conditions:
        assert with_conditions.width == without.width
        assert with_conditions.height == without.height + CONDITION_LINES * (CAPTION_SIZE + 6)  # the condition's lines
