"""bot.plates.compare: new hits, lost crystals and other changes between two inspections."""
from __future__ import annotations

from bot.plates.compare import Change, compare
from bot.plates.wells import Position, parse_position
from tests.plate_helpers import at

HITS = frozenset({"crystals"})  # MARCO's: crystals is the one hit category
LAB_HITS = frozenset({"microcrystals", "crystals"})


def labels(**by_name: str) -> dict[Position, str]:
    """`A1="clear", B2_2="crystals"` -> {A1 drop 1: "clear", B2 drop 2: "crystals"}."""
    return {parse_position(name): label for name, label in by_name.items()}  # type: ignore[misc]


def test_new_hits_lost_crystals_and_other_changes_in_plate_order() -> None:
    previous = labels(A1="clear", A2="crystals", B1="precipitate", B12_2="clear", C3="crystals", D4="clear")
    current = labels(A1="crystals", A2="precipitate", B1="other", B12_2="crystals", C3="crystals", D4="clear",
                     E5="crystals", F6="clear")
    comparison = compare(previous, current, hits=HITS)
    assert comparison.new_hits == (Change(at("A1"), "clear", "crystals"), Change(at("B12_2"), "clear", "crystals"),
                                   Change(at("E5"), None, "crystals"))
    assert comparison.lost_hits == (Change(at("A2"), "crystals", "precipitate"),)
    assert comparison.other_changes == (Change(at("B1"), "precipitate", "other"),)
    assert comparison


def test_a_drop_without_a_call_now_is_not_a_lost_crystal() -> None:
    comparison = compare(labels(A1="crystals", A2="clear"), labels(A2="clear"), hits=HITS)
    assert not comparison
    assert comparison.lost_hits == () and comparison.new_hits == () and comparison.other_changes == ()


def test_drops_of_one_well_are_compared_apart() -> None:
    comparison = compare(labels(A1_1="crystals", A1_2="clear"), labels(A1_1="clear", A1_2="crystals"), hits=HITS)
    assert [str(c.position) for c in comparison.new_hits] == ["A1 drop 2"]
    assert [str(c.position) for c in comparison.lost_hits] == ["A1 drop 1"]


def test_a_drop_imaged_but_not_classified_last_time_is_no_new_hit_nor_a_change() -> None:
    comparison = compare(labels(A1="clear"), labels(A1="crystals", B2="crystals", C3="clear", D4="crystals"),
                         not_classified_before=[at("B2"), at("C3")], hits=HITS)
    assert comparison.new_hits == (Change(at("A1"), "clear", "crystals"), Change(at("D4"), None, "crystals"))
    assert comparison.hits_not_classified_before == (Change(at("B2"), None, "crystals"),)
    assert comparison.other_changes == () and comparison.lost_hits == ()
    assert compare(labels(), labels(B2="crystals"), [at("B2")], hits=HITS)  # only that news: still a change to tell


def test_with_several_hit_categories_a_hit_changing_category_is_neither_new_nor_lost() -> None:
    previous = labels(A1="clear", A2="microcrystals", A3="crystals", A4="skin", A5="crystals")
    current = labels(A1="microcrystals", A2="crystals", A3="microcrystals", A4="phase separation", A5="precipitate",
                     A6="crystals")
    comparison = compare(previous, current, hits=LAB_HITS)
    assert comparison.new_hits == (Change(at("A1"), "clear", "microcrystals"), Change(at("A6"), None, "crystals"))
    assert comparison.lost_hits == (Change(at("A5"), "crystals", "precipitate"),)
    assert comparison.other_changes == (Change(at("A2"), "microcrystals", "crystals"),
                                        Change(at("A3"), "crystals", "microcrystals"),
                                        Change(at("A4"), "skin", "phase separation"))


def test_what_is_a_hit_comes_from_the_categories_not_from_the_name_crystals() -> None:
    comparison = compare(labels(A1="clear", A2="crystals"), labels(A1="spherulites", A2="clear"),
                         hits=frozenset({"spherulites"}))
    assert comparison.new_hits == (Change(at("A1"), "clear", "spherulites"),)
    assert comparison.lost_hits == ()
    assert comparison.other_changes == (Change(at("A2"), "crystals", "clear"),)
