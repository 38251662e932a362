"""bot.store's screen queries on SQLite and PostgreSQL: screens kept with their conditions, names in use
once, plates linked for all their inspections, a waiting `/crystals screens add`, conditions in exports."""
from __future__ import annotations

import time

from bot.screens.reading import read_screen
from tests.test_store import store  # noqa: F401 (fixture)

SCREEN = read_screen(b"Well,Condition\nA1,0.1 M HEPES pH 7.5, 20% PEG 3350\nD7,0.1 M NaOAc pH 5.0, 20% PEG 8000\n",
                     "jcsg.csv", 10_000)


def inspection_of(store, plate: str = "Plate42", ts: str = "1.1"):
    job = store.job(store.enqueue("plate", "C1", ts, ts, "FZIP", f"{plate}.zip", "U1", {"id": "FZIP"}))
    return store.start_inspection(job, plate, f"{plate}.zip", 1, {})


def test_a_screen_is_kept_with_its_conditions_and_its_name_is_in_use_once(store):
    saved = store.add_screen("JCSG+", "jcsg.csv", "abc", SCREEN, "C1", "U1")
    assert (saved.name, saved.wells, saved.layout, saved.added_by) == ("JCSG+", 2, 96, "U1")
    assert store.add_screen(" jcsg+ ", "other.csv", "def", SCREEN, "C1", "U2") is None  # the same name, told apart
    assert store.screen_named("JCSG+ ") == saved and store.screen_with_content("abc") == saved
    assert store.screen_conditions(saved.id) == SCREEN.conditions
    assert list(store.screen_conditions(saved.id, ["D7", "H12"])) == ["D7"]
    assert store.screens() == [saved]


def test_a_removed_screen_is_no_longer_used_and_its_name_is_free_again(store):
    saved = store.add_screen("JCSG+", "jcsg.csv", "abc", SCREEN, "C1", "U1")
    inspection = inspection_of(store)
    store.link_plate("C1", "plate42", saved.id, "U1")
    assert store.remove_screen(saved.id, "U9") == saved and store.remove_screen(saved.id, "U9") is None
    assert store.screens() == [] and store.screen_named("JCSG+") is None
    assert store.inspection_conditions(inspection) is None
    again = store.add_screen("JCSG+", "jcsg2.csv", "abc", SCREEN, "C1", "U1")
    assert again is not None and again.id != saved.id


def test_a_plate_uses_its_screen_in_every_inspection_and_may_change_it(store):
    first = store.add_screen("JCSG+", "jcsg.csv", "abc", SCREEN, "C1", "U1")
    second = store.add_screen("Index", "index.csv", "def", SCREEN, "C1", "U1")
    earlier, later = inspection_of(store, ts="1.1"), inspection_of(store, ts="2.2")
    assert store.inspection_conditions(earlier) is None and store.condition_short_form(earlier.id, "D7") is None
    store.link_plate("C1", "PLATE42", first.id, "U1")  # the plate's name, any case
    assert store.inspection_conditions(later).screen == "JCSG+"
    assert store.condition_short_form(earlier.id, "D7") == "0.1 M NaOAc pH 5.0, 20% PEG 8000"
    assert store.condition_short_form(earlier.id, "B2") is None
    store.link_plate("C1", "plate42", second.id, "U2")
    assert store.plate_screen("C1", "Plate42") == second and store.plate_screen("C2", "plate42") is None
    assert store.plates_of_screens() == {second.id: [("C1", "plate42")]}


def test_a_screen_add_waits_for_that_persons_next_upload_in_that_channel(store):
    store.expect_screen("C1", "U1", "JCSG+")
    store.expect_screen("C1", "U1", "Index")  # asked again: the latest name
    assert store.take_screen_request("C2", "U1", 600) is None and store.take_screen_request("C1", "U2", 600) is None
    assert store.take_screen_request("C1", "U1", 600) == "Index"
    assert store.take_screen_request("C1", "U1", 600) is None  # taken once
    store.expect_screen("C1", "U1", "Old")
    time.sleep(0.02)
    assert store.take_screen_request("C1", "U1", 0.01) is None


def test_an_inspections_screen_note_and_a_screen_file_still_being_read(store):
    inspection = inspection_of(store)
    assert store.screen_note(inspection.id) == ""
    store.set_screen_note(inspection.id, "no screen named X")
    assert store.screen_note(inspection.id) == "no screen named X"
    job_id = store.enqueue("screen", "C1", "5.5", "5.5", "FCSV", "jcsg.csv", "U1", {})
    assert store.screen_job_open("C1", "5.5") and not store.screen_job_open("C1", "6.6")
    store.finish_job(job_id, "done")
    assert not store.screen_job_open("C1", "5.5")


def test_exports_carry_a_plate_images_plate_well_drop_screen_and_condition(store):
    saved = store.add_screen("JCSG+", "jcsg.csv", "abc", SCREEN, "C1", "U1")
    inspection = inspection_of(store)
    store.link_plate("C1", "plate42", saved.id, "U1")
    pages = [[{"inspection_id": inspection.id, "well": "D7"}, {"inspection_id": None, "well": None},
              {"inspection_id": inspection.id, "well": "H12"}]]
    (page,) = store.with_conditions(iter(pages))
    assert [(r["screen"], r["condition"]) for r in page] == [
        ("JCSG+", "0.1 M NaOAc pH 5.0, 20% PEG 8000"), ("", ""), ("JCSG+", "")]
