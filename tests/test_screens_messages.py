"""bot.screens.common and bot.screens.messages: what a plate's hits share, and how screens read in Slack."""
from __future__ import annotations

import json

from bot.models import SavedScreen
from bot.render import Message
from bot.screens.chemistry import PlateConditions, parse_condition
from bot.screens.common import hits_chemistry
from bot.screens.grid import GridSize
from bot.screens.messages import (GRID_ACTION, SCREEN_REMOVE_ACTION, add_command, conditions_for_model, link_command,
                                  parse_grid_value, screen_added, screen_directive, screen_summary, screens_message,
                                  wells_text, with_condition)
from bot.screens.reading import read_screen
from bot.visibility import Viewer

HITS = [parse_condition(text) for text in (
    "0.1 M Sodium acetate pH 4.6, 15% w/v PEG 3350", "0.1 M NaOAc pH 5.0, 20% PEG 3350, 0.2 M NaCl",
    "0.1 M sodium acetate trihydrate pH 5.6, 25% w/v Polyethylene glycol 3,350", "0.2 M NaCl, 2 M AmSO4")]


def test_what_the_hits_share() -> None:
    assert hits_chemistry(HITS) == ("NaOAc in 3 of 4 hits (0.1 M); PEG 3350 in 3 of 4 hits (15–25%); NaCl in 2 of 4 "
                                    "hits (0.2 M); pH 4.6–5.6 (3 of 4 hits)")
    assert hits_chemistry(HITS[:2]) == "NaOAc in 2 of 2 hits (0.1 M); PEG 3350 in 2 of 2 hits (15–20%); pH 4.6–5.0"
    assert hits_chemistry(HITS[:1]) == ""  # one hit: its condition says it all
    assert hits_chemistry([parse_condition("0.1 M NaCl"), parse_condition("1 M KCl")]) == \
        "no chemical in more than one of the 2 hits"


def test_a_chemical_counts_once_per_hit_and_at_most_three_are_named() -> None:
    twice = [parse_condition("0.1 M NaCl, 0.2 M NaCl, 1% A, 1% B, 1% C, 1% D")] * 2
    assert hits_chemistry(twice) == "NaCl in 2 of 2 hits (0.1 M); A in 2 of 2 hits (1%); B in 2 of 2 hits (1%)"


def test_an_uploads_text_names_the_screen_and_the_rest_names_the_plate() -> None:
    assert screen_directive("plate42 screen JCSG+") == screen_directive("plate42  Screen: JCSG+")
    assert (screen_directive("plate42 screen JCSG+").rest, screen_directive("plate42 screen JCSG+").screen) == \
        ("plate42", "JCSG+")
    assert screen_directive("screen PEG &amp; Ion").screen == "PEG & Ion"  # Slack's escapes undone
    assert screen_directive("plate42\nscreen Index HT\nday 3").screen == "Index HT"
    assert [screen_directive(t).screen for t in ("plate7 day 3", "rescreen of plate 7", "the screen")] == [None] * 3
    assert link_command("plate plate42 screen JCSG+") == ("plate42", "JCSG+") and link_command("plate plate42") is None
    assert add_command("screens add  Index HT ") == "Index HT" and add_command("screens") is None


def test_which_wells_a_screen_fills() -> None:
    assert wells_text([f"{r}{c}" for r in "ABCDEFGH" for c in range(1, 13)], 96) == "all 96 wells (A1–H12)"
    assert wells_text(["A1", "A2", "A3", "B1", "B5", "B6"], 96) == "A1–A3, B1, B5–B6"
    assert wells_text([f"A{c}" for c in range(1, 48, 2)], 1536) == "24 wells from A1 to A47"


def test_the_reply_to_a_screen_file() -> None:
    data = b"Well,Condition\nA1,0.1 M HEPES pH 7.5\nA2,Tacsimate pH 7.0\nA3,\n"
    screen = read_screen(data, "index.csv", 10_000)
    saved = SavedScreen(1, "Index", "index.csv", screen.kind, screen.layout, 2, "C1", "U1", 0.0)
    text = screen_added(saved, screen, "plate42").text
    assert text.startswith(":test_tube: Added screen *Index*: 2 conditions read, for A1–A2 of a 24-well tray, "
                           "from `index.csv` (well and condition table, utf-8).")
    assert "*Not understood (1)*, kept as written: A2 `Tacsimate pH 7.0`." in text
    assert "*Rows not read (1):* line 4: no condition." in text
    assert "Plate *plate42* in this channel uses it from now on." in text


def test_the_list_of_screens_has_a_remove_button_with_a_confirmation() -> None:
    screen = SavedScreen(7, "JCSG+", "jcsg.csv", "well and condition table", 96, 96, "C1", "U1", 1_790_000_000.0)
    message = screens_message([screen], {7: [("C1", "plate42"), ("C2", "plate9")]}, Viewer("U1", frozenset({"C1", "C2"})))
    (block,) = [b for b in message.blocks if b.get("block_id") == "screen-7"]
    assert block["text"]["text"] == ("*JCSG+* · 96 wells of a 96-well plate · `jcsg.csv` · <@U1> in <#C1>, "
                                     "2026-09-21\nUsed by plate42 in <#C1>, plate9 in <#C2>")
    assert block["accessory"]["action_id"] == SCREEN_REMOVE_ACTION and block["accessory"]["value"] == "7"
    assert "Plates that use it (2) show no conditions" in block["accessory"]["confirm"]["text"]["text"]
    empty = screens_message([], {}, Viewer("U1", frozenset()))
    assert empty.blocks[0]["text"]["text"] == "*No screens in your channels yet.*" and "more screen" not in empty.text


def test_the_screens_of_channels_a_person_is_not_in_are_only_counted() -> None:
    ours = SavedScreen(7, "JCSG+", "jcsg.csv", "well and condition table", 96, 96, "C1", "U1", 1_790_000_000.0)
    secret = SavedScreen(8, "Secret", "secret.csv", "well and condition table", 96, 96, "CSECRET", "U3", 0.0)
    gone = SavedScreen(9, "Gone", "gone.csv", "well and condition table", 96, 96, "CGONE", "U3", 0.0)
    message = screens_message([secret, ours, gone], {8: [("C1", "plate42")]},
                              Viewer("U2", frozenset({"C1"}), gone=frozenset({"CGONE"})))
    text = message.text + json.dumps(message.blocks, ensure_ascii=False)
    assert [b.get("block_id") for b in message.blocks if b.get("block_id", "").startswith("screen-")] == ["screen-7"]
    assert "*Screens (1)*" in text and "_1 more screen from channels you are not in._" in text  # a removed one: neither
    assert not any(word in text for word in ("Secret", "secret.csv", "CSECRET", "U3", "Gone", "CGONE"))


def test_plates_in_channels_a_person_is_not_in_are_counted_not_named() -> None:
    screen = SavedScreen(7, "JCSG+", "jcsg.csv", "well and condition table", 96, 96, "C1", "U1", 1_790_000_000.0)
    plates = {7: [("C1", "plate42"), ("CSECRET", "secret-plate"), ("CGONE", "removed-plate")]}
    message = screens_message([screen], plates, Viewer("U2", frozenset({"C1"}), gone=frozenset({"CGONE"})))
    text = message.text + json.dumps(message.blocks, ensure_ascii=False)
    assert "Used by plate42 in <#C1>, 1 more plate in channels you are not in" in text  # a removed channel: neither
    assert not any(word in text for word in ("secret-plate", "CSECRET", "removed-plate", "CGONE"))


def test_a_hits_reply_gets_its_condition_and_a_grid_button_per_size() -> None:
    reply = Message("crystals", [{"type": "section", "text": {"type": "mrkdwn", "text": "call"}},
                                 {"type": "actions", "elements": []}])
    condition = parse_condition("0.1 M NaOAc pH 5.0, 20% PEG 8000", reference="22_C0479")
    shown = with_condition(reply, 12, "D7", condition, "HWI 22", (GridSize(4, 6), GridSize(8, 12)))
    assert shown.blocks[1]["elements"][0]["text"] == ":test_tube: *HWI 22 D7* (22_C0479): 0.1 M NaOAc pH 5.0, 20% PEG 8000"
    buttons = shown.blocks[-1]["elements"]  # no footer in this reply: the buttons come last
    assert [(b["action_id"], b["value"], b["text"]["text"]) for b in buttons] == [
        (GRID_ACTION, "12:4x6", "Optimisation grid, 24-well tray"), (GRID_ACTION, "12:8x12", "Optimisation grid, 96-well plate")]
    assert parse_grid_value("12:8x12", (GridSize(8, 12),)) == (12, GridSize(8, 12))
    assert parse_grid_value("12:3x3", (GridSize(8, 12),)) is None and parse_grid_value("x:8x12", (GridSize(8, 12),)) is None


def test_the_summary_names_the_screen_and_what_the_hits_share() -> None:
    plate = PlateConditions("JCSG+", {"B3": HITS[0], "D7": HITS[1], "E1": HITS[2]})
    assert screen_summary(plate, ["B3", "D7", "D7"]) == (  # two drops of D7 are one hit
        ":test_tube: *Screen JCSG+* · *the hits share:* NaOAc in 2 of 2 hits (0.1 M); PEG 3350 in 2 of 2 hits (15–20%); "
        "pH 4.6–5.0")
    assert screen_summary(None, ["B3"]) == "" and screen_summary(None, [], ":warning: note") == ":warning: note"


def test_a_follow_up_sees_the_conditions_of_the_wells_asked_about_and_of_the_hits() -> None:
    plate = PlateConditions("JCSG+", {"B3": HITS[0], "D7": HITS[1]})
    assert conditions_for_model(plate, ["D7"], ["B3", "D7"], 4000) == (
        "The plate's screen is JCSG+. Conditions of the wells asked about: D7: 0.1 M NaOAc pH 5.0, 20% PEG 3350, "
        "0.2 M NaCl. Conditions of the crystal hits: B3: 0.1 M Sodium acetate pH 4.6, 15% w/v PEG 3350; D7: 0.1 M "
        "NaOAc pH 5.0, 20% PEG 3350, 0.2 M NaCl.")
    assert conditions_for_model(None, ["D7"], [], 4000) == ""
