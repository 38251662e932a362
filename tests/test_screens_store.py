"""bot.store's screen queries on SQLite and PostgreSQL: screens kept with their conditions, names in use
once per channel, plates linked for all their inspections, a waiting `/crystals screens add`, the screens of a
deleted upload forgotten."""
from __future__ import annotations

import sqlite3
import time

from bot.screens.reading import read_screen
from tests.test_store import store  # noqa: F401 (fixture)

SCREEN = read_screen(b"Well,Condition\nA1,0.1 M HEPES pH 7.5, 20% PEG 3350\nD7,0.1 M NaOAc pH 5.0, 20% PEG 8000\n",
                     "jcsg.csv", 10_000)


def inspection_of(store, plate: str = "Plate42", ts: str = "1.1"):
    job = store.job(store.enqueue("plate", "C1", ts, ts, "FZIP", f"{plate}.zip", "U1", {"id": "FZIP"}))
    return store.start_inspection(job, plate, f"{plate}.zip", 1, {})


def test_a_screen_is_kept_with_its_conditions_and_its_name_is_in_use_once_per_channel(store):
    saved = store.add_screen("JCSG+", "jcsg.csv", "abc", SCREEN, "C1", "U1")
    assert (saved.name, saved.wells, saved.layout, saved.channel, saved.added_by) == ("JCSG+", 2, 96, "C1", "U1")
    assert store.add_screen(" jcsg+ ", "other.csv", "def", SCREEN, "C1", "U2") is None  # the same name, told apart
    elsewhere = store.add_screen("JCSG+", "theirs.csv", "abc", SCREEN, "C2", "U2")  # another channel's own
    assert elsewhere is not None and elsewhere.id != saved.id
    assert store.screen_named("JCSG+ ", "C1") == saved and store.screen_named("jcsg+", "C2") == elsewhere
    assert store.screen_named("JCSG+", "C3") is None and store.screens_named("jcsg+") == [elsewhere, saved]
    assert store.screen_with_content("abc", "C1") == saved and store.screen_with_content("abc", "C3") is None
    assert store.screen(saved.id) == saved
    assert store.screen_conditions(saved.id) == SCREEN.conditions
    assert list(store.screen_conditions(saved.id, ["D7", "H12"])) == ["D7"]
    assert store.plate_conditions(saved, ["D7"]).short("D7") == "0.1 M NaOAc pH 5.0, 20% PEG 8000"
    assert store.screens() == [elsewhere, saved]


def test_a_removed_screen_is_no_longer_used_and_its_name_is_free_again(store):
    saved = store.add_screen("JCSG+", "jcsg.csv", "abc", SCREEN, "C1", "U1")
    store.link_plate("C1", "plate42", saved.id, "U1")
    assert store.remove_screen(saved.id, "U9") == saved and store.remove_screen(saved.id, "U9") is None
    assert store.screens() == [] and store.screen_named("JCSG+", "C1") is None and store.screen(saved.id) is None
    assert store.plate_screen("C1", "plate42") is None
    again = store.add_screen("JCSG+", "jcsg2.csv", "abc", SCREEN, "C1", "U1")
    assert again is not None and again.id != saved.id


def test_a_plate_is_linked_to_one_screen_for_all_its_inspections_and_may_change_it(store):
    first = store.add_screen("JCSG+", "jcsg.csv", "abc", SCREEN, "C1", "U1")
    second = store.add_screen("Index", "index.csv", "def", SCREEN, "C1", "U1")
    assert store.plate_screen("C1", "plate42") is None
    store.link_plate("C1", "PLATE42", first.id, "U1")  # the plate's name, any case
    assert store.plate_screen("C1", "Plate42") == first
    store.link_plate("C1", "plate42", second.id, "U2")
    assert store.plate_screen("C1", "Plate42") == second and store.plate_screen("C2", "plate42") is None
    assert store.plates_of_screens() == {second.id: [("C1", "plate42")]}


def test_the_screens_of_a_deleted_upload_are_forgotten_and_their_plates_unlinked(store):
    screen_job = store.enqueue("screen", "C1", "5.5", "5.5", "FCSV", "jcsg.csv", "U1", {})
    zip_job = store.enqueue("plate", "C1", "6.6", "6.6", "FZIP", "plate42.zip", "U1", {})
    from_file = store.add_screen("JCSG+", "jcsg.csv", "abc", SCREEN, "C1", "U1", screen_job)
    from_zip = store.add_screen("Index", "index.csv", "def", SCREEN, "C1", "U1", zip_job)
    store.link_plate("C1", "plate42", from_file.id, "U1")
    store.link_plate("C1", "plate9", from_zip.id, "U1")

    assert store.forget_screens([screen_job]) == [from_file]
    assert store.screens() == [from_zip] and store.screen_conditions(from_file.id) == {}
    assert store.plate_screen("C1", "plate42") is None
    assert store.plates_of_screens() == {from_zip.id: [("C1", "plate9")]}
    assert store.forget_screens([screen_job]) == [] and store.forget_screens([]) == []  # a second event: nothing more
    assert store.add_screen("JCSG+", "jcsg.csv", "abc", SCREEN, "C1", "U1") is not None  # the name is free again


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


def test_screens_kept_before_they_knew_their_job_are_matched_to_it_when_the_database_is_migrated(tmp_path):
    """The migration that gives screens their job finds it for the screens already kept: the latest screen job
    of that file from that person in that channel before the screen was kept, else their latest plate job."""
    from bot.store.schema import MIGRATIONS, SQLITE_TYPES, statements
    from bot.store.sqlite import SQLiteStore

    before = next(index for index, migration in enumerate(MIGRATIONS) if "screens_in_use_by_channel" in migration)
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        for migration in MIGRATIONS[:before]:
            for statement in statements(migration, SQLITE_TYPES):
                db.execute(statement)
        jobs = [("screen", "C1", "1.0", "FCSV", "jcsg.csv", 10.0), ("screen", "C1", "2.0", "FOTHER", "other.csv", 11.0),
                ("plate", "C1", "3.0", "FZIP", "plate42.zip", 20.0), ("plate", "C1", "4.0", "FLATER", "p9.zip", 40.0)]
        for kind, channel, ts, file_id, name, at in jobs:
            db.execute("INSERT INTO jobs (kind, channel, message_ts, thread_ts, file_id, file_name, user_id, state,"
                       " created_at, updated_at) VALUES (?,?,?,?,?,?, 'U1', 'done', ?, ?)",
                       (kind, channel, ts, ts, file_id, name, at, at))
        for name, file_name, at in (("JCSG+", "jcsg.csv", 12.0), ("Index", "index.csv", 21.0)):  # a file's, a zip's
            db.execute("INSERT INTO screens (name, name_key, file_name, kind, encoding, layout, wells, sha256, channel,"
                       " added_by, added_at) VALUES (?, ?, ?, 'table', 'utf-8', 96, 2, 'x', 'C1', 'U1', ?)",
                       (name, name.casefold(), file_name, at))
        db.execute(f"PRAGMA user_version = {before}")
    store = SQLiteStore(path)
    (jcsg,) = store.forget_screens([store.jobs_of_file("FCSV")[0].id])
    (index,) = store.forget_screens([store.jobs_of_file("FZIP")[0].id])
    assert (jcsg.name, index.name, store.screens()) == ("JCSG+", "Index", [])
    store.close()
