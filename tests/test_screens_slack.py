"""Screens end to end, through the real Slack and OpenAI clients against the fakes: a screen uploaded and
linked to a plate, the plate's hits with their conditions everywhere a well appears, what the hits share,
the optimisation grid, a follow-up that sees the conditions, `/crystals screens` and its Remove button."""
from __future__ import annotations

import csv
import io
from typing import Any, Callable

import pytest
from PIL import Image

from bot.screens.messages import GRID_ACTION, SCREEN_REMOVE_ACTION
from tests.helpers import DATA, content_items
from tests.slack_harness import CHANNEL, RunningBot, section_text
from tests.test_plates_slack import ZIP, csv_rows, make_zip, plate_members, summary_post, teach, uploads_in
from tests.test_team import HITS, channel_posts

CSV = {"mimetype": "text/csv", "filetype": "csv"}
HWI = DATA / "screens" / "hwi-22_C1536.csv"
B3 = "0.1 M Sodium acetate pH 4.6, 15% w/v PEG 3350"
D7 = "0.1 M Sodium acetate pH 5.0, 20% w/v PEG 3350"


def jcsg_csv() -> bytes:
    """A hand-kept 96-well screen: semicolons, `A01` wells, Windows-1252 with a `®`."""
    lines = ["Well;Condition;Notes"]
    for row in "ABCDEFGH":
        for column in range(1, 13):
            well = f"{row}{column:02d}"
            condition = {"B03": B3, "D07": D7}.get(well, f"0.2 M NaCl, 0.1 M HEPES pH 7.5, {column + 10}% PEG 4000")
            lines.append(f"{well};{condition};{'Jeffamine® batch 2' if row == 'A' else ''}")
    return "\r\n".join(lines).encode("cp1252")


def reply_to(bot: RunningBot, event: dict[str, Any]) -> str:
    return section_text(bot.wait_for_posts(event["ts"], 1)[0])


def command(bot: RunningBot, text: str, user: str = "U1") -> dict[str, Any]:
    envelope = bot.slack.push_slash_command(bot.slack.slash_command_payload(text, channel=CHANNEL, user=user))
    return bot.slack.wait_for_ack(envelope)


def add_jcsg(bot: RunningBot) -> None:
    added = bot.upload(("jcsg.csv", jcsg_csv()), text="screen JCSG+", **CSV)
    assert bot.wait_until_done(added, timeout=30) == {"test_tube"}


def plate_with_hits(bot: RunningBot, text: str = "", extra: dict[str, bytes] | None = None) -> dict[str, Any]:
    members, label_of = plate_members({"B3": "crystals", "D7": "crystals", "A1": "precipitate"})
    teach(bot, members, label_of)
    event = bot.upload(("plate42_2026-11-26.zip", make_zip({**members, **(extra or {})})), text=text, **ZIP)
    assert bot.wait_until_done(event, timeout=60) == {"gem"}
    bot.drain()
    return event


def hit_replies(bot: RunningBot, event: dict[str, Any]) -> dict[str, Any]:
    return {call.params["text"].split(" for ")[1].split(" ")[0]: call for call in bot.thread_posts(event["ts"])
            if call.params["text"].startswith("crystals (")}


@pytest.fixture
def screen_bot(database_url: str, start_bot: Callable[..., RunningBot]) -> RunningBot:
    return start_bot(DATABASE_URL=database_url, HITS_CHANNEL=HITS)


def test_a_screen_uploaded_and_named_by_a_plate_shows_every_hits_condition(screen_bot: RunningBot) -> None:
    bot = screen_bot
    added = bot.upload(("JCSG+ 2024.csv", jcsg_csv()), text="screen JCSG+", **CSV)
    assert bot.wait_until_done(added, timeout=30) == {"test_tube"}
    assert reply_to(bot, added).startswith(":test_tube: Added screen *JCSG+*: 96 conditions read, for all 96 wells "
                                           "(A1–H12) of a 96-well plate, from `JCSG+ 2024.csv` (well and condition "
                                           "table, cp1252).")

    event = plate_with_hits(bot, text="plate42 screen JCSG+")

    replies = hit_replies(bot, event)
    assert set(replies) == {"B3", "D7"}
    assert ":test_tube: *JCSG+ D7*: 0.1 M NaOAc pH 5.0, 20% PEG 3350" in section_text(replies["D7"])
    summary = section_text(summary_post(bot, event["ts"]))
    assert "• *B3* · 93% · _0.1 M NaOAc pH 4.6, 15% PEG 3350_ · " in summary
    assert "• *D7* · 93% · _0.1 M NaOAc pH 5.0, 20% PEG 3350_ · " in summary
    assert (":test_tube: *Screen JCSG+* · *the hits share:* NaOAc in 2 of 2 hits (0.1 M); PEG 3350 in 2 of 2 hits "
            "(15–20%); pH 4.6–5.0") in summary
    rows = {row["well"]: row for row in csv_rows(uploads_in(bot, event["ts"])["csv"])}
    assert rows["D7"]["condition"] == "0.1 M NaOAc pH 5.0, 20% PEG 3350"
    assert rows["A5"]["condition"] == "0.2 M NaCl, 0.1 M HEPES pH 7.5, 15% PEG 4000"
    (shared,) = channel_posts(bot, HITS)
    assert "|D7>* · 93% · _0.1 M NaOAc pH 5.0, 20% PEG 3350_ · " in section_text(shared)

    again = plate_with_hits(bot)  # the next inspection of plate42 names no screen: the plate remembers it
    assert ":test_tube: *Screen JCSG+*" in section_text(summary_post(bot, again["ts"]))


def test_the_real_hwi_screen_added_after_screens_add_and_linked_by_command(screen_bot: RunningBot) -> None:
    bot = screen_bot
    assert command(bot, "screens add HWI 22")["text"].startswith(
        "Upload the screen's CSV file in this channel within 10 minutes")
    added = bot.upload(("22_C1536.csv", HWI.read_bytes()), **CSV)  # no text: the command named it
    assert bot.wait_until_done(added, timeout=30) == {"test_tube"}
    assert "1,536 conditions read, for all 1,536 wells (A1–AF48) of a 1,536-well plate" in reply_to(bot, added)
    linked = command(bot, "plate plate42 screen hwi 22")
    assert linked["text"].startswith(":test_tube: Plate *plate42* in this channel uses screen *HWI 22* "
                                     "(1,536 conditions) from now on")

    event = plate_with_hits(bot)

    d7 = section_text(hit_replies(bot, event)["D7"])
    assert ":test_tube: *HWI 22 D7* (22_C0729): 0.1 M KNO3, 0.1 M CAPS pH 10.0, 20% PEG 1000" in d7  # HWI well 151
    listing = command(bot, "screens")
    text = "\n".join(block["text"]["text"] for block in listing["blocks"] if block["type"] == "section")
    assert "*HWI 22* · 1,536 wells of a 1,536-well plate · `22_C1536.csv` · <@U1>" in text
    assert "Used by plate42 in <#C1>" in text


def test_the_optimisation_grid_of_a_hit_arrives_as_a_csv_and_a_picture_in_the_thread(screen_bot: RunningBot) -> None:
    bot = screen_bot
    add_jcsg(bot)
    event = plate_with_hits(bot, text="screen JCSG+")
    reply = hit_replies(bot, event)["D7"]
    (grid_block,) = [b for b in reply.params["blocks"] if b.get("block_id", "").startswith("grid-")]
    button = next(e for e in grid_block["elements"] if e["value"].endswith(":4x6"))
    before = len(bot.slack.uploads)

    def click() -> None:
        bot.slack.wait_for_ack(bot.slack.push_interactive(bot.slack.block_actions_payload(
            GRID_ACTION, button["value"], message={**reply.params, "ts": reply.response["ts"]}, channel=CHANNEL,
            user="U7")))

    click()
    bot.slack.wait_for(lambda: len(bot.slack.uploads) == before + 2, 30, what="the grid's CSV and picture")
    click()  # a second click on the same button makes no second grid
    bot.drain()
    assert len(bot.slack.uploads) == before + 2
    files = {u.filename.rsplit(".", 1)[1]: u for u in bot.slack.uploads[before:]}
    assert set(files) == {"csv", "png"} and files["csv"].thread_ts == event["ts"]
    rows = list(csv.DictReader(io.StringIO((files["csv"].data or b"").decode("utf-8"))))
    assert [r["PEG 3350 (%)"] for r in rows[:6]] == ["16", "18", "20", "22", "24", "26"]
    assert [r["pH"] for r in rows[::6]] == ["4.8", "5.0", "5.2", "5.4"]
    assert [r["well"] for r in rows if r["hit"] == "yes"] == ["B3"]
    with Image.open(io.BytesIO(files["png"].data or b"")) as picture:
        assert picture.format == "PNG"
    (shared,) = [c for c in bot.slack.calls_to("files.completeUploadExternal") if "Optimisation grid" in
                 c.params.get("initial_comment", "")]
    assert shared.params["initial_comment"].startswith(
        ":test_tube: Optimisation grid around *D7* (0.1 M NaOAc pH 5.0, 20% PEG 3350) for a 24-well tray, asked for "
        "by <@U7>: columns PEG 3350 16–26% (step 2%), rows pH 4.8–5.4 (step 0.2); B3 is the hit's own condition.")


def test_a_follow_up_question_shows_the_model_the_conditions(screen_bot: RunningBot) -> None:
    bot = screen_bot
    add_jcsg(bot)
    event = plate_with_hits(bot, text="screen JCSG+")

    bot.say("what would you try next around A1?", thread_ts=event["ts"])

    bot.slack.wait_for(lambda: [c for c in bot.thread_posts(event["ts"]) if "Fake answer" in c.params["text"]], 30,
                       what="the answer")
    request = bot.openai.responses_requests()[-1]
    texts = " ".join(item.get("text", "") for item in content_items(request) if item["type"] == "input_text")
    assert "The plate's screen is JCSG+." in texts
    assert "Conditions of the wells asked about: A1: 0.2 M NaCl, 0.1 M HEPES pH 7.5, 11% PEG 4000." in texts
    assert f"Conditions of the crystal hits: B3: {B3}; D7: {D7}." in texts


def test_a_screen_file_inside_the_plates_zip_becomes_its_screen(screen_bot: RunningBot) -> None:
    bot = screen_bot
    event = plate_with_hits(bot, extra={"inspection/JCSG+.csv": jcsg_csv()})

    summary = section_text(summary_post(bot, event["ts"]))
    assert ":test_tube: Screen *JCSG+* (96 conditions) read from the zip's `inspection/JCSG+.csv`." in summary
    assert "_0.1 M NaOAc pH 5.0, 20% PEG 3350_" in summary
    assert [s.name for s in bot.services.store.screens()] == ["JCSG+"]


def test_a_screen_and_its_plate_in_one_message(start_bot: Callable[..., RunningBot]) -> None:
    bot = start_bot(JOB_RETRY_SECONDS="0.1")
    members, label_of = plate_members({"D7": "crystals"})
    teach(bot, members, label_of)
    event = bot.upload(bot.slack.add_file("plate42.zip", make_zip(members), **ZIP),
                       bot.slack.add_file("jcsg.csv", jcsg_csv(), **CSV), text="plate42 screen JCSG+")

    assert bot.wait_until_done(event, timeout=60) == {"gem", "test_tube"}
    bot.drain()
    assert "• *D7* · 93% · _0.1 M NaOAc pH 5.0, 20% PEG 3350_ · " in section_text(summary_post(bot, event["ts"]))


def test_a_file_that_is_no_screen_changes_nothing_and_the_reply_says_why(screen_bot: RunningBot) -> None:
    bot = screen_bot
    twice = bot.upload(("dup.csv", b"Well,Condition\nA1,0.1 M NaCl\nA01,0.2 M KCl\n"), text="screen Dup", **CSV)
    assert bot.wait_until_done(twice, timeout=30) == {"warning"}
    assert reply_to(bot, twice) == (":warning: I did not add `dup.csv` as a screen: dup.csv: well A1 appears twice "
                                    "(lines 2 and 3); a screen has one condition per well. Nothing was changed.")
    workbook = bot.upload(("screen.xlsx", b"PK\x03\x04..."), text="screen Wb", mimetype="application/vnd.ms-excel",
                          filetype="xlsx")
    bot.wait_until_done(workbook, timeout=30)
    assert "Save it as CSV (File → Save As → CSV UTF-8)" in reply_to(bot, workbook)
    assert bot.services.store.screens() == []
    unnamed = plate_with_hits(bot, text="screen Nope")
    assert (":warning: There is no screen named *Nope* in this channel or in a public channel."
            in section_text(summary_post(bot, unnamed["ts"])))


def test_a_name_in_use_is_refused_and_a_screen_is_removed_from_the_list(start_bot: Callable[..., RunningBot]) -> None:
    bot = start_bot(MAX_SCREEN_KB="1")
    first = bot.upload(("a.csv", b"A1,0.1 M NaCl\n"), text="screen Mine", **CSV)
    bot.wait_until_done(first, timeout=30)
    second = bot.upload(("b.csv", b"A1,0.2 M NaCl\n"), text="screen mine", **CSV)
    bot.wait_until_done(second, timeout=30)
    assert "there is already a screen named *Mine* (1 well, added by <@U1>" in reply_to(bot, second)
    large = bot.upload(("large.csv", b"A1,0.1 M NaCl\n" * 100), text="screen Large", **CSV)
    bot.wait_until_done(large, timeout=30)
    assert "the most I read as a screen is 1 KB (MAX_SCREEN_KB)" in reply_to(bot, large)

    listing = command(bot, "screens")
    (remove,) = [b["accessory"] for b in listing["blocks"] if b.get("accessory", {}).get("action_id") == SCREEN_REMOVE_ACTION]
    bot.slack.add_user("U8", guest=True)
    assert command(bot, "screens add Theirs", user="U8")["text"].startswith("Guests cannot add or remove")

    def click(user: str) -> dict[str, Any]:
        posts = len(bot.slack.response_url_posts)
        bot.slack.push_interactive(bot.slack.block_actions_payload(
            SCREEN_REMOVE_ACTION, remove["value"], message={"ts": "1.0", **listing}, channel=CHANNEL, user=user))
        (_, answer), = bot.slack.wait_for(lambda: bot.slack.response_url_posts[posts:], what="the list updated")
        return answer

    assert click("U8")["text"].startswith("Guests cannot add or remove the lab's screens. Members of the workspace "
                                          "who are not guests can, in the channels they are in.\n1 screen.")
    assert [s.name for s in bot.services.store.screens()] == ["Mine"]
    updated = click("U9")
    assert updated["replace_original"] is True
    assert updated["text"] == ":wastebasket: Removed screen *Mine* (added by <@U1>).\nNo screens in your channels yet."
    assert bot.services.store.screens() == []


def test_plates_of_channels_someone_is_not_in_are_not_named_to_them(screen_bot: RunningBot) -> None:
    bot = screen_bot
    add_jcsg(bot)
    bot.slack.add_channel("lab-secret", "CSECRET", private=True, members=["U1", bot.slack.bot_user_id])
    store = bot.services.store
    store.link_plate("CSECRET", "secret-plate", store.screen_named("JCSG+", CHANNEL).id, "U1")
    store.link_plate(CHANNEL, "plate42", store.screen_named("JCSG+", CHANNEL).id, "U1")

    for user, named in (("U1", True), ("U2", False)):
        text = "\n".join(b["text"]["text"] for b in command(bot, "screens", user=user)["blocks"] if b["type"] == "section")
        assert "plate42 in <#C1>" in text and ("secret-plate in <#CSECRET>" in text) is named
        assert named or "1 more plate in channels you are not in" in text


def test_export_has_each_plate_images_well_and_condition(screen_bot: RunningBot) -> None:
    bot = screen_bot
    add_jcsg(bot)
    plate_with_hits(bot, text="screen JCSG+")

    command(bot, "export", user="U5")
    bot.drain()

    (export,) = [u for u in bot.slack.uploads if u.filename.startswith("crystals-C1")]
    rows = {row["well"]: row for row in csv.DictReader(io.StringIO((export.data or b"").decode("utf-8")))}
    assert rows["D7"]["plate"] == "plate42" and rows["D7"]["screen"] == "JCSG+"
    assert rows["D7"]["condition"] == "0.1 M NaOAc pH 5.0, 20% PEG 3350" and rows["D7"]["category"] == "crystals"
    assert len(rows) == 96
