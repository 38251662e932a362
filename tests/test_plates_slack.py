"""Whole plates end to end: zips and messages of images named by well, through the real Slack and
OpenAI clients against the fakes, on SQLite and PostgreSQL."""
from __future__ import annotations

import csv
import json
import io
import re
import zipfile
from typing import Callable

import pytest
from PIL import Image
from slack_sdk import WebClient

from bot.plates.wells import PLATE_SHAPES, ROWS
from bot.render import CONFIRM_ACTION, FEEDBACK_MENU_ACTION
from tests.fakes.slack_server import ApiCall, SlackError, Upload
from tests.helpers import content_items
from tests.slack_harness import CHANNEL, RunningBot, section_text
from tests.test_team import HITS, channel_posts

ZIP = {"mimetype": "application/zip", "filetype": "zip"}


def drop_jpeg(index: int) -> bytes:
    """A small JPEG unlike every other index's (the fake model answers by the image's bytes)."""
    image = Image.new("RGB", (64, 48), (index % 256, index // 256 * 40 % 256, 255 - index % 256))
    image.putpixel((index % 64, index // 64 % 48), (255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def well_names(wells: int = 96) -> list[str]:
    rows, columns = PLATE_SHAPES[wells]
    return [f"{ROWS[r]}{c}" for r in range(rows) for c in range(1, columns + 1)]


def make_zip(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def plate_members(labels: dict[str, str], wells: int = 96, drops: int = 1,
                  offset: int = 0) -> tuple[dict[str, bytes], dict[str, str]]:
    """Imager-style members of a plate (`12345_B04_1_Vis_20261126_093000.jpg`) and each member's label
    (clear unless `labels` names the well, or `well drop`)."""
    members, label_of = {}, {}
    for index, well in enumerate(well_names(wells)):
        for drop in range(1, drops + 1):
            name = f"inspection/12345_{well[0]}{int(well[1:]):02d}_{drop}_Vis_20261126_093000.jpg"
            members[name] = drop_jpeg(offset + index * drops + drop)
            label_of[name] = labels.get(f"{well} drop {drop}", labels.get(well, "clear") if drop == 1 else "clear")
    return members, label_of


def teach(bot: RunningBot, members: dict[str, bytes], label_of: dict[str, str]) -> None:
    for name, data in members.items():
        bot.openai.label_image(bot.normalised(data, name.rsplit("/", 1)[-1]).jpeg, label_of[name])


def progress_posts(bot: RunningBot, thread_ts: str) -> list[ApiCall]:
    return [c for c in bot.thread_posts(thread_ts) if re.match(r"Plate .+: \d+ of \d+ classified", c.params["text"])]


def final_progress(bot: RunningBot, progress: ApiCall) -> str:
    updates = [c for c in bot.slack.calls_to("chat.update") if c.params["ts"] == progress.response["ts"]]
    return updates[-1].params["text"]


def uploads_in(bot: RunningBot, thread_ts: str) -> dict[str, Upload]:
    """A thread's uploaded files by kind: `png` the plate map, `csv` the calls, `hits` the gallery of hits."""
    kinds = {"map.png": "png", "calls.csv": "csv", "hits.png": "hits"}
    return {kinds.get(u.filename.rsplit("_", 1)[-1], u.filename): u for u in bot.slack.uploads
            if u.thread_ts == thread_ts}


def csv_rows(upload: Upload) -> list[dict[str, str]]:
    assert upload.data is not None
    return list(csv.DictReader(io.StringIO(upload.data.decode("utf-8"))))


def summary_post(bot: RunningBot, thread_ts: str) -> ApiCall:
    (summary,) = [c for c in bot.thread_posts(thread_ts) if "crystal hit" in c.params["text"]]
    return summary


@pytest.fixture
def plate_bot(database_url: str, start_bot: Callable[..., RunningBot]) -> RunningBot:
    return start_bot(DATABASE_URL=database_url)


def test_a_96_well_zip_gets_one_progress_message_a_summary_a_map_a_csv_and_its_hits(plate_bot: RunningBot) -> None:
    bot = plate_bot
    labels = {"B3": "crystals", "D7": "crystals", "H12": "crystals", "A1": "precipitate", "C5": "other"}
    members, label_of = plate_members(labels)
    teach(bot, members, label_of)
    zipped = make_zip({**members, "inspection/12345.xml": b"<plate/>", "../evil.jpg": drop_jpeg(999)})

    event = bot.upload(("plate42_2026-11-26.zip", zipped), **ZIP)

    assert bot.wait_until_done(event, timeout=60) == {"gem"}
    bot.drain()
    (progress,) = progress_posts(bot, event["ts"])
    assert progress.params["text"] == "Plate plate42: 0 of 96 classified"
    assert final_progress(bot, progress) == "Plate plate42: 96 of 96 classified · done"
    hits = [c for c in bot.thread_posts(event["ts"]) if c.params["text"].startswith("crystals")]
    assert sorted(section_text(h).splitlines()[0] for h in hits) == [
        ":gem: *crystals* · `B3 · 12345_B03_1_Vis_20261126_093000.jpg`",
        ":gem: *crystals* · `D7 · 12345_D07_1_Vis_20261126_093000.jpg`",
        ":gem: *crystals* · `H12 · 12345_H12_1_Vis_20261126_093000.jpg`"]
    assert all(any(b["type"] == "actions" for b in h.params["blocks"]) for h in hits)
    summary = summary_post(bot, event["ts"])
    text = section_text(summary)
    assert summary.params["text"] == "Plate plate42: 3 crystal hits in 96 images"
    assert ":droplet: 91 clear · :gem: 3 crystals · :hourglass: 1 precipitate · :grey_question: 1 other" in text
    assert text.index("*B3*") < text.index("*D7*") < text.index("*H12*")
    assert "Skipped 2 files in the zip" in text and "not images: 1" in text and "(.. or absolute): 1" in text
    assert len(bot.thread_posts(event["ts"])) == 5  # progress, 3 hits, summary: nothing per image
    files = uploads_in(bot, event["ts"])
    assert set(files) == {"png", "csv", "hits"} and files["png"].channel == CHANNEL
    with Image.open(io.BytesIO(files["png"].data or b"")) as picture:
        assert picture.format == "PNG" and picture.width >= 800
    rows = csv_rows(files["csv"])
    assert len(rows) == 96 and rows[0]["well"] == "A1" and rows[-1]["well"] == "H12"
    assert {row["file"]: row["category"] for row in rows} == label_of
    assert len(bot.openai.responses_requests()) == 96


def test_the_same_plate_again_names_the_new_hits(plate_bot: RunningBot) -> None:
    bot = plate_bot
    first_members, first_labels = plate_members({"B3": "crystals", "E5": "precipitate"})
    again_members, again_labels = plate_members({"E5": "crystals", "B3": "precipitate", "G2": "other"}, offset=500)
    teach(bot, first_members, first_labels)
    teach(bot, again_members, again_labels)

    first = bot.upload(("plate42_2026-11-26.zip", make_zip(first_members)), **ZIP)
    bot.wait_until_done(first, timeout=60)
    again = bot.upload(("plate42_2026-12-01_0930.zip", make_zip(again_members)), **ZIP)
    bot.wait_until_done(again, timeout=60)

    bot.drain()
    summary = summary_post(bot, again["ts"])
    text = section_text(summary)
    assert summary.params["text"] == "Plate plate42: 1 crystal hit (1 new) in 96 images"
    assert ":new: *1 new hit:* *E5* (was precipitate)" in text
    assert "*Lost crystals (1):* B3 (now precipitate)" in text
    assert "*Other changes (1):* G2 clear → other" in text
    assert "*Since the last inspection:*" not in section_text(summary_post(bot, first["ts"]))


def test_a_384_well_plate_with_two_drops_per_well(start_bot: Callable[..., RunningBot]) -> None:
    bot = start_bot()
    members, label_of = plate_members({"P24 drop 2": "crystals", "I13": "crystals"}, wells=384, drops=2)
    teach(bot, members, label_of)

    event = bot.upload(("Screen_7 2026-11-26.zip", make_zip(members)), **ZIP)

    assert bot.wait_until_done(event, timeout=120) == {"gem"}
    bot.drain()
    text = section_text(summary_post(bot, event["ts"]))
    assert "*Plate Screen_7*: 768 images" in text
    assert text.index("*I13 drop 1*") < text.index("*P24 drop 2*")
    rows = csv_rows(uploads_in(bot, event["ts"])["csv"])
    assert len(rows) == 768 and (rows[-1]["well"], rows[-1]["drop"], rows[-1]["category"]) == ("P24", "2", "crystals")
    with Image.open(io.BytesIO(uploads_in(bot, event["ts"])["png"].data or b"")) as picture:
        assert picture.width > 1200  # 24 columns


def test_loose_images_named_by_well_are_one_plate(plate_bot: RunningBot) -> None:
    bot = plate_bot
    files = {f"{well}.jpg": drop_jpeg(index) for index, well in enumerate(["A1", "A2", "B1"])}
    teach(bot, files, {"A1.jpg": "clear", "A2.jpg": "crystals", "B1.jpg": "precipitate"})

    event = bot.upload(*files.items(), text="plate7 day 3")

    assert bot.wait_until_done(event, timeout=30) == {"gem"}
    bot.drain()
    (progress,) = progress_posts(bot, event["ts"])
    assert final_progress(bot, progress) == "Plate plate7: 3 of 3 classified · done"
    assert "*A2*" in section_text(summary_post(bot, event["ts"]))
    assert [r["well"] for r in csv_rows(uploads_in(bot, event["ts"])["csv"])] == ["A1", "A2", "B1"]
    assert len(bot.thread_posts(event["ts"])) == 3  # progress, the hit, the summary


def test_a_follow_up_naming_a_well_shows_the_model_that_well(start_bot: Callable[..., RunningBot]) -> None:
    bot = start_bot()
    members, label_of = plate_members({"D7": "precipitate", "B3": "crystals"})
    teach(bot, members, label_of)
    event = bot.upload(("plate42.zip", make_zip(members)), **ZIP)
    bot.wait_until_done(event, timeout=60)
    bot.drain()

    bot.say("why is D7 precipitate and not B3?", thread_ts=event["ts"])

    answer = bot.slack.wait_for(lambda: [c for c in bot.thread_posts(event["ts"]) if "Fake answer" in c.params["text"]],
                                30, what="the answer")
    assert len(answer) == 1
    request = bot.openai.responses_requests()[-1]
    images = [item for item in content_items(request) if item["type"] == "input_image"]
    texts = " ".join(item.get("text", "") for item in content_items(request) if item["type"] == "input_text")
    assert len(images) == 2
    assert "Image D7 · 12345_D07_1_Vis_20261126_093000.jpg: your call was precipitate" in texts
    assert "Image B3 · 12345_B03_1_Vis_20261126_093000.jpg: your call was crystals" in texts
    assert "your calls by well: A1 drop 1: clear" in texts


@pytest.mark.parametrize(("name", "data", "expected"), [
    ("bomb.zip", make_zip({"A1.jpg": drop_jpeg(1), "A2.jpg": bytes(20_000_000)}, zipfile.ZIP_DEFLATED),
     "compressed suspiciously well (possible zip bomb): 1"),
    ("escape.zip", make_zip({"../../A1.jpg": drop_jpeg(1), "/etc/A2.jpg": drop_jpeg(2)}),
     "escape.zip holds no images I can read"),
    ("broken.zip", make_zip({"A1.jpg": drop_jpeg(1)})[:-30], "broken.zip is not a zip file I can read"),
    ("notes.zip", make_zip({"readme.txt": b"hello"}), "notes.zip holds no images I can read"),
])
def test_hostile_and_broken_zips_get_a_clear_message(start_bot: Callable[..., RunningBot], name: str, data: bytes,
                                                    expected: str) -> None:
    bot = start_bot()

    event = bot.upload((name, data), **ZIP)

    done = bot.wait_until_done(event, timeout=30)
    bot.drain()
    texts = [section_text(c) for c in bot.thread_posts(event["ts"])]
    assert any(expected in text for text in texts), texts
    if "holds" in expected or "not a zip" in expected:
        assert done == {"warning"} and len(texts) == 1 and bot.slack.uploads == []
        assert bot.openai.responses_requests() == []


def test_zip_limits_come_from_the_settings(start_bot: Callable[..., RunningBot]) -> None:
    bot = start_bot(MAX_ZIP_IMAGES="2", MAX_ZIP_DOWNLOAD_MB="1")
    three = bot.upload(("three.zip", make_zip({f"A{c}.jpg": drop_jpeg(c) for c in (1, 2, 3)})), **ZIP)
    large = bot.upload(("large.zip", make_zip({"A1.jpg": drop_jpeg(1), "A2.tif": bytes(3 * 1024 * 1024)})), **ZIP)

    bot.wait_until_done(three, timeout=30)
    bot.wait_until_done(large, timeout=30)
    assert "three.zip holds 3 images; the most I classify from one zip is 2" in section_text(
        bot.wait_for_posts(three["ts"], 1)[0])  # the reaction is set just before the reply is posted
    assert "large.zip: the file is too large" in section_text(bot.wait_for_posts(large["ts"], 1)[0])


def test_recent_lists_plates(start_bot: Callable[..., RunningBot]) -> None:
    bot = start_bot()
    members, label_of = plate_members({"C4": "crystals"})
    teach(bot, members, label_of)
    event = bot.upload(("plate42_2026-11-26.zip", make_zip(members)), **ZIP)
    bot.wait_until_done(event, timeout=60)

    envelope = bot.slack.push_slash_command(bot.slack.slash_command_payload("recent", channel=CHANNEL))
    text = bot.slack.wait_for_ack(envelope)["text"]

    assert "*Plate plate42*: 1 crystal hit in 96 images" in text and "plate42_2026-11-26.zip" in text
    assert "12345_C04" not in text  # a plate's images are not listed one by one


def test_a_zip_announced_before_slack_scanned_it_is_still_a_plate(start_bot: Callable[..., RunningBot]) -> None:
    bot = start_bot()
    members, label_of = plate_members({"A1": "crystals"})
    teach(bot, members, label_of)

    event = bot.upload(bot.slack.add_file("plate42.zip", make_zip(members), pending_scan=True, **ZIP))

    assert bot.wait_until_done(event, timeout=60) == {"gem"}
    bot.drain()
    assert len(csv_rows(uploads_in(bot, event["ts"])["csv"])) == 96


def permalink_in_thread(bot: RunningBot, ts: str, thread_ts: str) -> str:
    """Slack's own permalink of a message in a thread (it must be there)."""
    assert any(m["ts"] == ts and m.get("thread_ts") == thread_ts for m in bot.slack.messages(CHANNEL))
    link = WebClient(token=bot.slack.bot_token, base_url=bot.slack.api_url).chat_getPermalink(
        channel=CHANNEL, message_ts=ts)["permalink"]
    return f"{link}?thread_ts={thread_ts}&cid={CHANNEL}"


def test_a_plate_with_hits_is_one_message_in_the_hits_channel_that_shows_the_verdicts_on_its_wells(
        database_url: str, start_bot: Callable[..., RunningBot]) -> None:
    bot = start_bot(DATABASE_URL=database_url, HITS_CHANNEL=HITS)
    members, label_of = plate_members({"D7": "crystals", "B3": "crystals", "A1": "precipitate"})
    teach(bot, members, label_of)
    event = bot.upload(("plate42_2026-11-26.zip", make_zip(members)), **ZIP)
    bot.wait_until_done(event, timeout=60)
    bot.drain()

    (shared,) = channel_posts(bot, HITS)
    text = section_text(shared)
    assert text.splitlines()[0] == ":gem: *Plate plate42*: 2 crystal hits in 96 images · from <@U1> in <#C1>"
    store = bot.services.store
    inspection = store.thread_inspection(CHANNEL, event["ts"])
    replies = {j.payload["well"]: j.reply_ts for j in store.inspection_jobs(inspection.id) if j.reply_ts}
    assert set(replies) == {"B3", "D7"}
    well_links = re.findall(r"• \*<(\S+)\|(\w+)>\* · 93% · ", text)
    assert well_links == [(permalink_in_thread(bot, replies[well], event["ts"]), well) for well in ("B3", "D7")]
    (picture,) = [b for b in shared.params["blocks"] if b["type"] == "image"]
    assert picture["slack_file"] == {"id": uploads_in(bot, event["ts"])["png"].file_id}
    (progress,) = progress_posts(bot, event["ts"])
    thread_link = re.search(r"<(\S+)\|Open the thread>", text).group(1)
    assert thread_link == permalink_in_thread(bot, progress.response["ts"], event["ts"])

    plate_job = next(j for j in map(store.job, range(1, 120)) if j and j.kind == "plate")
    (summary,) = [p for p in bot.thread_posts(event["ts"]) if "crystal hit" in p.params["text"]]
    store.finish_job(plate_job.id, "done")  # the summary runs again, as after a retry
    bot.bot.queue.notify()
    bot.slack.wait_for(lambda: [u for u in bot.slack.calls_to("chat.update") if u.params["ts"] == shared.response["ts"]],
                       what="the hits message brought up to date by the summary run again")
    bot.drain()
    assert [p for p in bot.thread_posts(event["ts"]) if "crystal hit" in p.params["text"]] == [summary]
    assert [u.params["ts"] for u in bot.slack.calls_to("chat.update") if "crystal hit" in u.params["text"]
            and u.params["channel"] == CHANNEL] == [summary.response["ts"]]  # the summary updated, not posted again
    assert len(channel_posts(bot, HITS)) == 1 and len(bot.slack.calls_to("files.completeUploadExternal")) == 1
    updates_before_click = len(bot.slack.calls_to("chat.update"))

    reply = next(p for p in bot.thread_posts(event["ts"]) if p.response["ts"] == replies["D7"])
    value = next(b for b in reply.params["blocks"] if b["type"] == "actions")["elements"][0]["value"]
    bot.slack.push_interactive(bot.slack.block_actions_payload(
        CONFIRM_ACTION, value, message={**reply.params, "ts": reply.response["ts"]}, channel=CHANNEL, user="U7"))
    (update,) = bot.slack.wait_for(lambda: [u for u in bot.slack.calls_to("chat.update")[updates_before_click:]
                                            if u.params["channel"] == HITS], what="the hits message updated")
    assert update.params["ts"] == shared.response["ts"]
    (d7,) = [line for line in section_text(update).splitlines() if "|D7>" in line]
    assert d7.endswith(":white_check_mark: Confirmed by <@U7>")
    assert ":white_check_mark:" not in section_text(update).replace(d7, "")

    (b3_menu,) = [b for b in update.params["blocks"] if "|B3>" in b.get("text", {}).get("text", "")]
    corrected_value = next(o["value"] for o in b3_menu["accessory"]["options"] if o["value"].endswith(":precipitate"))
    before = len(bot.slack.calls_to("chat.update"))
    bot.slack.push_interactive(bot.slack.block_actions_payload(  # corrected in the hits channel this time
        FEEDBACK_MENU_ACTION, None, message={**update.params}, channel=HITS, user="U8",
        selected_option_value=corrected_value))
    both = bot.slack.wait_for(lambda: len(bot.slack.calls_to("chat.update")[before:]) == 2
                              and bot.slack.calls_to("chat.update")[before:], what="the well's reply and the hits message")
    assert {(u.params["channel"], u.params["ts"]) for u in both} == {(CHANNEL, replies["B3"]), (HITS, shared.response["ts"])}
    assert all(":pencil2: Corrected to :hourglass: *precipitate* by <@U8>" in section_text(u) for u in both)


def test_a_plate_without_hits_posts_nothing_in_the_hits_channel(database_url: str,
                                                                start_bot: Callable[..., RunningBot]) -> None:
    bot = start_bot(DATABASE_URL=database_url, HITS_CHANNEL=HITS)
    members, label_of = plate_members({"A1": "precipitate"}, wells=96)
    teach(bot, members, label_of)
    event = bot.upload(("plate9.zip", make_zip(members)), **ZIP)
    bot.wait_until_done(event, timeout=60)
    bot.drain()
    assert summary_post(bot, event["ts"]).params["text"] == "Plate plate9: 0 crystal hits in 96 images"
    assert channel_posts(bot, HITS) == []


def test_a_plate_in_the_hits_channel_itself_is_not_posted_there_again(start_bot: Callable[..., RunningBot]) -> None:
    bot = start_bot(HITS_CHANNEL=CHANNEL)
    members, label_of = plate_members({"B3": "crystals"})
    teach(bot, members, label_of)
    event = bot.upload(("plate42.zip", make_zip(members)), **ZIP)
    assert bot.wait_until_done(event, timeout=60) == {"gem"}
    bot.drain()
    assert channel_posts(bot, CHANNEL) == [] and "1 crystal hit" in summary_post(bot, event["ts"]).params["text"]


def test_a_map_and_csv_slack_refuses_are_named_in_the_summary_and_the_plate_still_finishes(
        start_bot: Callable[..., RunningBot]) -> None:
    bot = start_bot(JOB_RETRY_SECONDS="0.1")

    def no_scope(params: dict) -> dict:
        raise SlackError("missing_scope")

    bot.slack.set_handler("files.getUploadURLExternal", no_scope)  # an app installed without files:write
    members, label_of = plate_members({"B3": "crystals"}, wells=96)
    teach(bot, members, label_of)
    event = bot.upload(("plate7.zip", make_zip(members)), **ZIP)

    assert bot.wait_until_done(event, timeout=60) == {"gem"}
    bot.drain()
    summary = summary_post(bot, event["ts"])
    (update,) = [u for u in bot.slack.calls_to("chat.update") if u.params["ts"] == summary.response["ts"]]
    assert ("I could not attach the plate map and the CSV: Slack refused the upload (`missing_scope`). An admin "
            "should check that the app has the `files:write` scope") in json.dumps(update.params["blocks"])
    assert bot.slack.uploads == [] and len(bot.slack.calls_to("files.getUploadURLExternal")) == 1  # not retried
    inspection = bot.services.store.thread_inspection(CHANNEL, event["ts"])
    assert inspection.finished_at is not None and not inspection.uploaded


def test_eyes_stay_until_every_zip_and_image_of_a_message_is_done(start_bot: Callable[..., RunningBot]) -> None:
    bot = start_bot()
    bot.openai.delay = 0.2
    small, _ = plate_members({}, wells=96)
    small = dict(list(small.items())[:2])
    large, _ = plate_members({}, wells=96, offset=1)
    large = dict(list(large.items())[:12])
    zips = [bot.slack.add_file(name, make_zip(members), **ZIP) for name, members in (("small.zip", small),
                                                                                      ("large.zip", large))]
    event = bot.upload(*zips, bot.slack.add_file("loose.jpg", drop_jpeg(500)))

    bot.wait_until_done(event, timeout=60)
    calls = bot.slack.calls
    summaries = [n for n, c in enumerate(calls) if c.method == "chat.postMessage" and "crystal hit" in c.params["text"]]
    (eyes_off,) = [n for n, c in enumerate(calls) if c.method == "reactions.remove" and c.params["name"] == "eyes"]
    assert len(summaries) == 2 and eyes_off > max(summaries)  # not when the first zip was done
    loose_reply = next(n for n, c in enumerate(calls) if c.method == "chat.postMessage" and "loose.jpg" in c.params["text"])
    assert eyes_off > loose_reply
