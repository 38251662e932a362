"""bot.plates.report: the progress line, the summary within Slack's limits, and the CSV of every call."""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from bot.models import Call, Feedback, Job
from bot.plates.archive import Skip
from bot.plates.compare import compare
from bot.plates.retry import RETRY_WELLS_ACTION, WellsRetry, retrying
from bot.plates.report import (
    CSV_COLUMNS,
    MAX_HIT_LINES,
    MAX_SHARED_HITS,
    PlateImage,
    SharedPlate,
    calls_by_well_text,
    calls_csv,
    labels_of,
    plate_hits_message,
    plate_image,
    not_classified_positions,
    plate_view,
    position_payload,
    progress_text,
    summary_message,
)
from bot.plates.wells import ROWS, parse_position
from bot.render import FEEDBACK_MENU_ACTION
from bot.categories import hit_labels
from bot.prompt import Category, load_categories

PROMPTS = Path(__file__).resolve().parent.parent / "prompts"
HITS = hit_labels(load_categories(PROMPTS))


@pytest.fixture(scope="module")
def categories() -> tuple[Category, ...]:
    return load_categories(PROMPTS)


def call(label: str, confidence: float | None = 0.9, explanation: str = "Sharp edges.") -> Call:
    return Call(label=label, confidence=confidence, confidence_source="logprobs", observations="",
                explanation=explanation, model="gpt-4.1")


def image(name: str, label: str | None, **options) -> PlateImage:
    """A classified image, or (label None) one that could not be read."""
    error = None if label else "plate42/" + name + " is truncated or corrupt"
    return PlateImage(f"plate42/{name}", parse_position(name), call(label, **options) if label else None, error,
                      unreadable=label is None)


def failed(name: str, reason: str = "The model service failed (HTTP 500) after 1 retries. Try again later.") -> PlateImage:
    """An image whose model call failed."""
    return PlateImage(f"plate42/{name}", parse_position(name), None, reason)


def section_texts(message) -> list[str]:
    return [b["text"]["text"] for b in message.blocks if b["type"] == "section"]


def all_text(message) -> str:
    return "\n".join(section_texts(message))


def test_progress_line() -> None:
    assert progress_text("plate42", 37, 96) == "Plate plate42: 37 of 96 classified"
    assert progress_text("<plate>", 94, 96, unreadable=2) == "Plate &lt;plate&gt;: 94 of 96 classified (2 could not be read)"
    assert progress_text("p", 91, 96, 2, 3) == "Plate p: 91 of 96 classified (3 not classified, 2 could not be read)"


def test_counts_and_hits_by_well_in_plate_order(categories) -> None:
    images = [image("H12.jpg", "crystals", confidence=0.61, explanation="Needles\nat the rim."),
              image("A10.jpg", "crystals", confidence=0.9), image("A2.jpg", "crystals", confidence=None),
              image("A1.jpg", "clear"), image("B1.jpg", "precipitate"), image("B2.jpg", "other"),
              image("B3.jpg", None), image("scan7.jpg", "crystals", explanation="<!channel> rods")]
    message = summary_message("plate42", images, categories)
    text = all_text(message)
    assert text.startswith("*Plate plate42*: 8 images\n:droplet: 1 clear · :gem: 4 crystals · "
                           ":hourglass: 1 precipitate · :grey_question: 1 other · :warning: 1 could not be read")
    hits = re.findall(r"^• (.*)$", text.split("*Crystal hits (4), by well:*")[1], re.MULTILINE)
    assert hits[:4] == ["*A2* · unknown · Sharp edges.", "*A10* · 90% · Sharp edges.", "*H12* · 61% · Needles at the rim.",
                        "`plate42/scan7.jpg` · 90% · &lt;!channel&gt; rods"]
    assert "• `plate42/B3.jpg`: plate42/B3.jpg is truncated or corrupt" in text
    assert "*No well in the name (1),* classified all the same and listed in the CSV: `plate42/scan7.jpg`" in text
    assert "Since the last inspection" not in text
    assert message.text == "Plate plate42: 4 crystal hits in 8 images"


def test_changes_since_the_last_inspection_come_before_the_hits(categories) -> None:
    before = [image("A1_1.jpg", "clear"), image("A1_2.jpg", "crystals"), image("A2_1.jpg", "precipitate"),
              image("B5_1.jpg", "crystals")]
    now = [image("A1_1.jpg", "crystals"), image("A1_2.jpg", "precipitate"), image("A2_1.jpg", "other"),
           image("B5_1.jpg", "crystals"), image("C7_2.jpg", "crystals")]
    comparison = compare(labels_of(before), labels_of(now), hits=HITS)
    message = summary_message("plate42", now, categories, comparison)
    text = all_text(message)
    assert ("*Since the last inspection:*\n"
            ":new: *2 new hits:* *A1 drop 1* (was clear), *C7 drop 2* (not imaged before)\n"
            "*Lost crystals (1):* A1 drop 2 (now precipitate)\n"
            "*Other changes (1):* A2 drop 1 precipitate → other") in text
    assert text.index("Since the last inspection") < text.index("Crystal hits")
    assert "• *A1 drop 1* :new: · 90%" in text and "• *B5 drop 1* · 90%" in text
    assert message.text == "Plate plate42: 3 crystal hits (2 new) in 5 images"
    unchanged = summary_message("plate42", now, categories, compare(labels_of(now), labels_of(now), hits=HITS))
    assert "*Since the last inspection:* no changes." in all_text(unchanged)


def test_skipped_members_are_counted(categories) -> None:
    message = summary_message("plate42", [image("A1.jpg", "clear")], categories,
                              skipped={Skip.NOT_IMAGE: 3, Skip.LINK: 1})
    context = message.blocks[-1]
    assert context["type"] == "context"
    assert context["elements"][0]["text"] == "Skipped 4 files in the zip — not images: 3, links: 1."
    assert "*No crystal hits.*" in all_text(message)


def test_a_full_384_well_plate_of_hits_stays_within_slacks_limits(categories) -> None:
    long = "A long explanation of faceted objects. " * 20
    images = [image(f"{row}{column}_{drop}.jpg", "crystals", explanation=long)
              for row in ROWS[:16] for column in range(1, 25) for drop in (1, 2, 3)]
    images += [image(f"x{i}.jpg", None) for i in range(100)]
    previous = {p: "clear" for p in labels_of(images)}
    message = summary_message("plate42", images, categories, compare(previous, labels_of(images), hits=HITS),
                              skipped={Skip.NOT_IMAGE: 5})
    assert len(message.blocks) <= 50
    assert all(len(text) <= 3000 for text in section_texts(message))
    assert len(message.text) <= 3900
    text = all_text(message)
    assert text.count("\n• *") == MAX_HIT_LINES
    assert f"…and {1152 - MAX_HIT_LINES} more: see the plate map and the CSV." in text
    assert ":new: *1152 new hits:*" in text and "and 1112 more" in text


def test_the_csv_has_every_call_in_plate_order(categories) -> None:
    images = [image("B1.jpg", "precipitate"), image("A1_2.jpg", "crystals", explanation='Rods, "sharp"'),
              image("A1_1.jpg", "clear", confidence=None), image("loose.jpg", "other"), image("A3.jpg", None)]
    rows = list(csv.DictReader(io.StringIO(calls_csv(images).decode("utf-8"))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [(r["well"], r["drop"], r["category"]) for r in rows] == [
        ("A1", "1", "clear"), ("A1", "2", "crystals"), ("A3", "1", ""), ("B1", "1", "precipitate"), ("", "", "other")]
    assert rows[1] == {"well": "A1", "drop": "2", "file": "plate42/A1_2.jpg", "category": "crystals",
                       "confidence": "0.900", "explanation": 'Rods, "sharp"', "model": "gpt-4.1", "error": "",
                       "condition": ""}
    assert rows[0]["confidence"] == ""
    assert rows[2]["error"] == "plate42/A3.jpg is truncated or corrupt"


def test_the_plate_view_for_the_map(categories) -> None:
    images = [image("A1.jpg", "crystals"), image("A2.jpg", None), image("P24.jpg", "clear"), image("x.jpg", "clear")]
    comparison = compare({}, labels_of(images), hits=HITS)
    view = plate_view("plate42", "2026-11-26", images, categories, comparison)
    assert view.labels == {parse_position("A1"): "crystals", parse_position("P24"): "clear"}
    assert view.unreadable == {parse_position("A2")} and view.not_classified == frozenset()
    with_failure = plate_view("plate42", "2026-11-26", [*images, failed("B7.jpg")], categories)
    assert with_failure.not_classified == {parse_position("B7")} and with_failure.unreadable == {parse_position("A2")}
    assert view.new_hits == {parse_position("A1")}
    assert view.categories == categories
    assert view.well_count == 384


def test_a_plate_image_job_becomes_what_the_summary_shows():
    def job(state: str, **payload) -> Job:
        return Job(id=1, kind="plate_image", channel="C1", message_ts="1.1", thread_ts="1.1", file_id="k",
                   file_name="B4", user_id="U1", state=state, error="not an image" if state == "failed" else None,
                   call_id=None, reply_ts=None, attempts=1, payload={"path": "x/B4_2.jpg", **payload})

    position = parse_position("B4_2.jpg")
    assert position_payload(position) == {"well": "B4", "drop": 2}
    assert plate_image(job("done", **position_payload(position)), call("crystals")) == PlateImage("x/B4_2.jpg", position, call("crystals"))
    assert plate_image(job("failed", **position_payload(None)), None) == PlateImage("x/B4_2.jpg", None, None,
                                                                                     "not an image")
    unreadable = plate_image(job("failed", error="not an image", **position_payload(position)), None)
    assert unreadable.unreadable and unreadable.call is None


def test_the_calls_by_well_for_a_question_are_in_plate_order_and_bounded():
    images = [PlateImage("B1.jpg", parse_position("B1.jpg"), call("crystals")), PlateImage("A2.jpg", parse_position("A2.jpg")),
              PlateImage("notes.jpg", None, call("crystals")), PlateImage("C3.jpg", parse_position("C3"), unreadable=True)]
    text = calls_by_well_text("plate42", images, 1000)
    assert text == ("Plate plate42, your calls by well: A2 drop 1: not classified; B1 drop 1: crystals (90%);"
                    " C3 drop 1: could not be read; notes.jpg: crystals (90%)")
    assert len(calls_by_well_text("plate42", images * 100, 500)) == 500


def shared_plate(images: list[PlateImage], **options) -> SharedPlate:
    links = {i.file: f"https://lab.slack.com/archives/C1/p{n}?thread_ts=1.1&cid=C1" for n, i in enumerate(images)}
    return SharedPlate(**{"plate": "plate42", "user_id": "U1", "channel": "C1", "thread_link": "https://t/1",
                          "map_file_id": "F0MAP", "images": images, "reply_links": links, "verdicts": {},
                          "job_ids": {i.file: n for n, i in enumerate(images)}, **options})


def test_the_hits_channel_message_lists_the_hits_by_well_with_links_verdicts_and_the_map(categories) -> None:
    images = [image("D7.jpg", "crystals", confidence=0.93, explanation="Sharp\nfaceted <edges>."),
              image("A1.jpg", "clear"), image("B3.jpg", "crystals", confidence=0.81), image("C2.jpg", None)]
    verdicts = {"plate42/D7.jpg": Feedback("U8", "corrected", "precipitate"),
                "plate42/A1.jpg": Feedback("U7", "confirmed", "clear")}
    message = plate_hits_message(shared_plate(images, verdicts=verdicts), categories)

    assert section_texts(message) == [
        ":gem: *Plate plate42*: 2 crystal hits in 4 images · from <@U1> in <#C1>",
        "• *<https://lab.slack.com/archives/C1/p2?thread_ts=1.1&cid=C1|B3>* · 81% · Sharp edges.",
        "• *<https://lab.slack.com/archives/C1/p0?thread_ts=1.1&cid=C1|D7>* · 93% · Sharp faceted &lt;edges&gt;. · "
        ":pencil2: Corrected to :hourglass: *precipitate* by <@U8>"]
    menus = [b["accessory"] for b in message.blocks if "accessory" in b]
    assert [m["action_id"] for m in menus] == [FEEDBACK_MENU_ACTION] * 2
    assert [(o["text"]["text"], o["value"]) for o in menus[1]["options"]] == [
        ("Confirm crystals", "0:crystals"), ("Correct to clear", "0:clear"), ("Correct to precipitate", "0:precipitate"),
        ("Correct to other", "0:other")]
    (picture,) = [b for b in message.blocks if b["type"] == "image"]
    assert picture["slack_file"] == {"id": "F0MAP"} and picture["alt_text"] == "Plate map of plate42"
    assert message.blocks[-1]["elements"][0]["text"] == "<https://t/1|Open the thread>"
    assert message.text == "Plate plate42: 2 crystal hits in 4 images from <@U1> in <#C1>"


def test_the_hits_channel_message_names_drops_and_shows_no_map_without_its_id(categories) -> None:
    images = [image("A1_1.jpg", "clear"), image("A1_2.jpg", "crystals"), image("loose|name.jpg", "crystals")]
    message = plate_hits_message(shared_plate(images, map_file_id=None, reply_links={}), categories)
    assert section_texts(message)[1:] == ["• *A1 drop 2* · 90% · Sharp edges.",
                                          "• *plate42/loose/name.jpg* · 90% · Sharp edges."]
    assert not [b for b in message.blocks if b["type"] == "image"]


def test_a_plate_full_of_hits_lists_the_first_in_the_hits_channel_within_slacks_limits(categories) -> None:
    long = "A long explanation of faceted objects. " * 20
    images = [image(f"{row}{column}.jpg", "crystals", explanation=long) for row in ROWS[:16] for column in range(1, 25)]
    verdicts = {i.file: Feedback("U8", "corrected", "precipitate") for i in images}
    message = plate_hits_message(shared_plate(images, verdicts=verdicts, plate="p" * 3000), categories)
    texts = section_texts(message)
    assert all(len(text) <= 3000 for text in texts) and len(message.blocks) <= 50 and len(message.text) <= 3900
    assert all(len(b["alt_text"]) <= 2000 for b in message.blocks if b["type"] == "image")
    assert len([text for text in texts if text.startswith("• *")]) == MAX_SHARED_HITS
    assert message.blocks[-3]["elements"][0]["text"] == f"…and {384 - MAX_SHARED_HITS} more in the thread."


def test_wells_whose_model_call_failed_are_not_classified_with_the_retry_button(categories) -> None:
    images = [image("A1.jpg", "crystals"), failed("C4.jpg"), failed("B2.jpg"), image("D1.jpg", None),
              failed("E5.jpg", "The model service rejected the request (HTTP 400): <b>Invalid</b> request.")]
    message = summary_message("plate42", images, categories, retry=WellsRetry(7, 2))
    text = all_text(message)
    assert text.startswith("*Plate plate42*: 5 images\n:droplet: 0 clear · :gem: 1 crystals · :hourglass: 0 precipitate"
                           " · :grey_question: 0 other · :warning: 3 not classified, 1 could not be read")
    assert (":warning: *Not classified (3):* the model call failed. *Retry failed wells* (below) classifies only "
            "these again.\n"
            "• B2, C4: The model service failed (HTTP 500) after 1 retries. Try again later.\n"
            "• E5: The model service rejected the request (HTTP 400): &lt;b&gt;Invalid&lt;/b&gt; request.") in text
    assert ":warning: *Could not be read (1):*\n• `plate42/D1.jpg`: plate42/D1.jpg is truncated or corrupt" in text
    assert "could not be read" not in text.split("*Not classified")[1].split("*Could not be read")[0]
    button = message.blocks[-1]
    assert button["type"] == "actions" and button["elements"][0]["action_id"] == RETRY_WELLS_ACTION
    assert button["elements"][0]["value"] == "7:2" and button["elements"][0]["text"]["text"] == "Retry failed wells"
    assert message.text == "Plate plate42: 1 crystal hit in 5 images · 3 not classified"


def test_without_a_retry_or_without_failed_wells_there_is_no_button(categories) -> None:
    no_offer = summary_message("plate42", [failed("C4.jpg")], categories)
    assert "Retry failed wells" not in all_text(no_offer) and no_offer.blocks[-1]["type"] == "section"
    broken_only = summary_message("plate42", [image("D1.jpg", None)], categories, retry=WellsRetry(7, 0))
    assert all(block["type"] != "actions" for block in broken_only.blocks)
    assert "Not classified" not in all_text(broken_only)


def test_a_full_plate_of_failures_and_hits_keeps_its_button_within_slacks_limits(categories) -> None:
    long = "A long explanation of faceted objects. " * 20
    images = [image(f"{row}{column}_{drop}.jpg", "crystals", explanation=long)
              for row in ROWS[:16] for column in range(1, 25) for drop in (1, 2)]
    images += [failed(f"{row}{column}_3.jpg", f"reason {column}" * 30) for row in ROWS[:16] for column in range(1, 25)]
    message = summary_message("plate42", images, categories, skipped={Skip.NOT_IMAGE: 5}, retry=WellsRetry(1, 0))
    assert len(message.blocks) <= 50 and message.blocks[-1]["type"] == "actions"
    assert all(len(line) < 400 for line in all_text(message).splitlines())  # reasons clipped
    assert all(len(text) <= 3000 for text in section_texts(message))


def test_the_summary_while_retrying_has_a_note_instead_of_the_button(categories) -> None:
    summary = summary_message("plate42", [failed("C4.jpg")], categories, retry=WellsRetry(7, 0))
    shown = retrying(summary, 1, "U9")
    assert all(block["type"] != "actions" for block in shown.blocks) and shown.text == summary.text
    assert shown.blocks[-1]["elements"][0]["text"].startswith(":arrows_counterclockwise: Retrying 1 well (asked by <@U9>)")
    assert shown.blocks[:-1] == summary.blocks[:-1]


def test_a_hit_answered_in_an_earlier_inspection_links_to_that_reply(categories) -> None:
    images = [image("B3.jpg", "crystals"), image("D7.jpg", "crystals")]
    text = all_text(summary_message("plate42", images, categories,
                                    earlier_replies={"plate42/D7.jpg": "https://lab.slack.com/archives/C1/p9"}))
    assert "• *B3* · 90% · Sharp edges.\n• *D7* · 90% · Sharp edges. · <https://lab.slack.com/archives/C1/p9|answered before>" in text


def test_crystals_in_a_well_the_last_inspection_could_not_classify_are_no_new_hit(categories) -> None:
    before = [image("A1.jpg", "clear"), failed("B2.jpg"), image("C3.jpg", None)]
    now = [image("A1.jpg", "crystals"), image("B2.jpg", "crystals"), image("C3.jpg", "crystals"),
           image("D4.jpg", "crystals")]
    comparison = compare(labels_of(before), labels_of(now), not_classified_positions(before), hits=HITS)
    message = summary_message("plate42", now, categories, comparison)
    text = all_text(message)
    assert ":new: *2 new hits:* *A1* (was clear), *D4* (not imaged before)" in text
    assert "*Crystals where the last inspection has no call (2):* *B2*, *C3*" in text
    assert "*B2* (not imaged before)" not in text and message.text == "Plate plate42: 4 crystal hits (2 new) in 4 images"


# --- a lab's own categories, two of them hits ------------------------------------------------------------


@pytest.fixture(scope="module")
def lab() -> tuple[Category, ...]:
    return load_categories(PROMPTS.parent / "prompts-labscores")


def test_with_two_hit_categories_the_summary_counts_both_and_names_each_hit_s_category(lab) -> None:
    before = [image("A1.jpg", "clear"), image("A2.jpg", "microcrystals"), image("A3.jpg", "crystals")]
    now = [image("A1.jpg", "microcrystals"), image("A2.jpg", "crystals"), image("A3.jpg", "skin"),
           image("B1.jpg", "phase separation"), image("B2.jpg", "crystals", confidence=0.7)]
    comparison = compare(labels_of(before), labels_of(now), hits=hit_labels(lab))
    message = summary_message("plate42", now, lab, comparison)
    text = all_text(message)
    assert text.startswith("*Plate plate42*: 5 images\n:droplet: 0 clear · :hourglass: 0 precipitate · "
                           ":oil_drum: 1 phase separation · :scroll: 1 skin · :sparkles: 1 microcrystals · "
                           ":gem: 2 crystals")
    assert ":new: *2 new hits:* *A1* microcrystals (was clear), *B2* crystals (not imaged before)" in text
    assert "*Lost crystals (1):* A3 (now skin)" in text and "*Other changes (1):* A2 microcrystals → crystals" in text
    hits = re.findall(r"^• (.*)$", text.split("*Crystal hits (3), by well:*")[1], re.MULTILINE)
    assert hits == ["*A1* :new: · microcrystals · 90% · Sharp edges.", "*A2* · crystals · 90% · Sharp edges.",
                    "*B2* :new: · crystals · 70% · Sharp edges."]
    assert message.text == "Plate plate42: 3 crystal hits (2 new) in 5 images"


def test_with_two_hit_categories_the_hits_channel_names_each_and_its_menu_offers_every_category(lab) -> None:
    images = [image("D7.jpg", "microcrystals"), image("B3.jpg", "crystals"), image("A1.jpg", "skin")]
    message = plate_hits_message(shared_plate(images), lab)
    texts = section_texts(message)
    assert texts[0] == ":sparkles: :gem: *Plate plate42*: 2 crystal hits in 3 images · from <@U1> in <#C1>"
    assert texts[1].endswith("|B3>* · crystals · 90% · Sharp edges.")
    assert texts[2].endswith("|D7>* · microcrystals · 90% · Sharp edges.")
    menu = message.blocks[1]["accessory"]
    assert (menu["type"], menu["action_id"]) == ("static_select", FEEDBACK_MENU_ACTION)  # 6 options: no overflow
    assert [o["text"]["text"] for o in menu["options"]] == [
        "Confirm crystals", "Correct to clear", "Correct to precipitate", "Correct to phase separation",
        "Correct to skin", "Correct to microcrystals"]


def test_a_lab_s_plate_view_carries_its_categories(lab) -> None:
    view = plate_view("plate42", "today", [image("A1.jpg", "microcrystals")], lab)
    assert view.categories == lab and view.labels == {parse_position("A1"): "microcrystals"}
