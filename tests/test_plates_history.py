"""bot.plates.history: when inspections were imaged, their days, each drop's calls across them, since
when a drop has been crystals; bot.plates.history_report: what the bot says about it."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot.models import Inspection
from bot.plates.history import (DropRecord, asks_for_history, day_number, hit_since, in_date_order,
                                inspection_dating, since_text, sightings, timeline, when_text)
from bot.plates.history_report import HISTORY_ACTION, history_comment, timeline_comment, with_hit_history
from bot.plates.strip import DropHistory
from bot.prompt import Category
from bot.render import Message
from tests.plate_helpers import at

UPLOADED = datetime(2026, 12, 2, 15, 0, tzinfo=timezone.utc).timestamp()


def utc(*parts: int) -> float:
    return datetime(*parts, tzinfo=timezone.utc).timestamp()


@pytest.mark.parametrize(("name", "paths", "at_", "source"), [
    ("plate42_2026-12-01_0930.zip", ["2026-11-30/A1_20261130_120000.jpg"], utc(2026, 12, 1, 9, 30), "zip"),
    ("plate42.zip", ["12345_A01_1_Vis_20261201_093012.jpg", "12345_A02_1_Vis_20261201_093000.jpg",
                     "12345_A03_1_Vis_20261130_235959.jpg"], utc(2026, 12, 1, 9, 30), "images"),  # most say Dec 1
    ("Archive.zip", ["X0000158620361202008111512.jpg", "X0000158620362202008111512.jpg"], utc(2020, 8, 11), "images"),
    ("plate42.zip", ["A1.jpg", "A2.jpg"], UPLOADED, "upload"),
    ("plate42_2027-01-01.zip", ["A1.jpg"], UPLOADED, "upload"),  # in the future: a misreading
    ("plate42_2026-12-03.zip", ["A1.jpg"], utc(2026, 12, 3), "zip"),  # a day's slack for time zones
])
def test_an_inspection_is_dated_by_its_names_else_by_its_upload(name: str, paths: list[str], at_: float,
                                                                 source: str) -> None:
    dating = inspection_dating(name, paths, UPLOADED, now=UPLOADED + 60)
    assert (dating.at, dating.source) == (at_, source)


def test_a_message_of_images_is_dated_by_its_text() -> None:
    dating = inspection_dating("plate7 2026-11-28", ["A1.jpg", "A2.jpg"], UPLOADED, UPLOADED, "message")
    assert (dating.at, dating.source) == (utc(2026, 11, 28), "message")


@pytest.mark.parametrize(("first", "then", "day"), [
    (utc(2026, 11, 24, 9), utc(2026, 11, 24, 17), 0),
    (utc(2026, 11, 24, 23), utc(2026, 11, 25, 1), 1),  # calendar days, not 24-hour periods
    (utc(2026, 11, 24), utc(2026, 12, 1), 7),
    (utc(2026, 12, 28), utc(2027, 1, 4), 7),
])
def test_day_numbers_count_calendar_days_from_the_first_inspection(first: float, then: float, day: int) -> None:
    assert day_number(first, then) == day


def inspection(number: int, when: float | None, source: str = "zip") -> Inspection:
    return Inspection(number, "C1", "plate42", "plate42", f"{utc(2026, 12, 10) + number}", "1.0", "p.zip", "U1", 96, {},
                      None, True, None, 0.0, 1.0, imaged_at=when, dated_from=source)


DAYS = [inspection(1, utc(2026, 11, 24)), inspection(2, utc(2026, 11, 28)), inspection(3, utc(2026, 12, 1)),
        inspection(4, utc(2026, 12, 8))]


def records(*labels: str | None, team: dict[int, str] | None = None) -> list[DropRecord]:
    """One drop's records at DAYS' inspections: a label, `-` for no image, None for an image that could not
    be read, `!` for a failed model call."""
    return [DropRecord(n, 100 + n, 1, None if label in (None, "!") else label, 0.9 if label else None,
                       (team or {}).get(n), f"sha{n}", True, label is None)
            for n, label in enumerate(labels, start=1) if label != "-"]


def since_at(labels: list[str | None], upto: int, team: dict[int, str] | None = None):
    return hit_since(sightings(DAYS, records(*labels, team=team)), upto, hits={"crystals"})


def test_since_when_a_drop_has_been_crystals() -> None:
    since = since_at(["clear", "crystals", "crystals", "precipitate"], upto=3)
    assert (since.since.inspection.id, since.since.day, since.inspections, since.before.label) == (2, 4, 2, "clear")
    assert since_text(since) == "Crystals since *2026-11-28, day 4*: 2 inspections in a row (before: clear on day 0)."


def test_a_new_hit() -> None:
    since = since_at(["clear", "precipitate", "crystals"], upto=3)
    assert since_text(since) == ("Crystals since *2026-12-01, day 7*: new at this inspection "
                                 "(before: precipitate on day 4).")


def test_an_inspection_that_did_not_see_the_drop_breaks_no_run() -> None:
    assert since_at(["crystals", "-", "!", "crystals"], upto=4).inspections == 2
    since = since_at(["crystals", "-", None, "crystals"], upto=4)
    assert (since.since.day, since.inspections, since.before) == (0, 2, None)
    assert since_text(since) == "Crystals since *2026-11-24, day 0*: 2 inspections in a row."


def test_a_drop_imaged_for_the_first_time() -> None:
    assert since_text(since_at(["-", "-", "crystals"], upto=3)) == (
        "Crystals since *2026-12-01, day 7*: new at this inspection (the first time this drop was imaged).")


def test_the_teams_verdict_counts() -> None:
    corrected_away = since_at(["crystals", "crystals", "crystals"], upto=3, team={2: "precipitate"})
    assert (corrected_away.since.day, corrected_away.before.label) == (7, "precipitate")
    assert since_at(["crystals", "crystals"], upto=2, team={2: "other"}) is None  # no crystal now


@pytest.mark.parametrize(("labels", "upto"), [
    (["crystals"], 1),  # the plate's first inspection: nothing to tell yet
    (["crystals", "clear"], 2),  # no crystal at that inspection
    (["crystals", "-"], 2),  # not imaged then
    (["crystals", "crystals"], 99),  # not one of the plate's inspections
])
def test_nothing_to_say(labels: list[str], upto: int) -> None:
    assert since_at(labels, upto) is None


def test_inspections_line_up_by_date_and_old_ones_by_upload_time() -> None:
    late_upload = inspection(5, utc(2026, 11, 20))
    old = inspection(6, None, source="")  # recorded before dates were kept: its upload time
    assert [i.id for i in in_date_order([*DAYS, late_upload, old])] == [5, 1, 2, 3, 4, 6]
    assert when_text(old) == "2026-12-10 00:00 UTC"
    assert when_text(DAYS[0]) == "2026-11-24"
    assert when_text(inspection(7, utc(2026, 11, 24, 9, 30))) == "2026-11-24 09:30"


def test_the_timeline_names_each_inspections_new_hits() -> None:
    hits = {1: [at("B3")], 2: [at("B3"), at("D7")], 3: [at("D7")], 4: [at("D7"), at("B3"), at("E5")]}
    rows = timeline(DAYS[::-1], {1: {"clear": 95, "crystals": 1}}, hits)
    assert [(row.day, len(row.hits), sorted(str(p.well) for p in row.new_hits)) for row in rows] == [
        (0, 1, []), (4, 2, ["D7"]), (7, 1, []), (14, 3, ["B3", "E5"])]
    categories = [Category("clear", "", ":droplet:", "droplet"), Category("crystals", "", ":gem:", "gem")]
    text = timeline_comment("plate42", rows, [f"https://x/{n}" for n in range(4)], categories)
    assert text.splitlines()[0] == ("*Plate plate42*: 4 inspections in this channel, day 0 (2026-11-24) to day 14 "
                                    "(2026-12-08). The team's verdicts count where given.")
    assert text.splitlines()[1] == ("• *2026-11-24*, day 0: 96 images · :droplet: 95 :gem: 1 · *1 crystal hit* · "
                                    "<https://x/0|thread>")
    assert ":gem: 0 · *3 crystal hits*, :new: 2 new: B3, E5 · <https://x/3|thread>" in text.splitlines()[4]


def test_a_hit_reply_gets_the_note_and_the_history_button_under_the_call() -> None:
    since = since_at(["clear", "crystals"], upto=2)
    message = with_hit_history(Message("crystals", [{"type": "section"}, {"type": "actions"}]), since, 42)
    assert [b["type"] for b in message.blocks] == ["section", "section", "actions"]
    assert message.blocks[1]["text"]["text"].startswith(":calendar: Crystals since *2026-11-28, day 4*")
    assert message.blocks[1]["accessory"] == {"type": "button", "action_id": HISTORY_ACTION, "value": "42",
                                              "text": {"type": "plain_text", "text": "History"}}


def test_the_history_comment_lists_each_inspections_call() -> None:
    drop = DropHistory("B3", sightings(DAYS, records("clear", "-", None, "crystals")))
    assert history_comment("plate42", [drop], hit_since(drop.sightings, 4, hits={"crystals"})) == (
        "*B3* of plate plate42: clear (day 0) → not imaged (day 4) → could not be read (day 7) → "
        "crystals (day 14)\n"
        "Crystals since *2026-12-08, day 14*: new at this inspection (before: clear on day 0).")
    failed = DropHistory("B3", sightings(DAYS, records("clear", "!")))
    assert history_comment("plate42", [failed], None) == ("*B3* of plate plate42: clear (day 0) → not classified "
                                                         "(day 4) → not imaged (day 7) → not imaged (day 14)")


@pytest.mark.parametrize(("text", "asks"), [
    ("show D7 over time", True),
    ("D7's history please?", True),
    ("how did B3 look across inspections?", True),
    ("show me the time course of B3", True),
    ("B3 at every inspection?", True),
    ("why is D7 precipitate?", False),
    ("what would you try next for D7?", False),
    ("what is the progress of this plate?", False),  # no well: a question for the model
    ("show AF48 over time", True),
])
def test_asks_for_history(text: str, asks: bool) -> None:
    assert asks_for_history(text) is asks


def test_with_several_hit_categories_a_drop_is_a_hit_since_its_first_hit_of_any_of_them() -> None:
    drop = sightings(DAYS, records("skin", "microcrystals", "crystals", "crystals"))
    since = hit_since(drop, 4, hits={"microcrystals", "crystals"})
    assert (since.since.inspection.id, since.inspections, since.before.label) == (2, 3, "skin")
    assert hit_since(drop, 4, hits={"crystals"}).inspections == 2
    assert hit_since(drop, 1, hits={"skin"}) is None  # the plate's first inspection: nothing to tell yet
