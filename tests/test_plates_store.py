"""The store's plate records on SQLite and PostgreSQL: inspections, the summary queued when an
inspection's last job ends, the throttled progress, the previous inspection of a plate."""
from __future__ import annotations

import time

import pytest

from bot.store import open_store


@pytest.fixture
def store(database_url):
    store = open_store(database_url)
    yield store
    store.close()


def plate_job(store, ts: str = "1.1", file_id: str = "FZIP"):
    job_id = store.enqueue("plate", "C1", ts, ts, file_id, "plate42.zip", "U1", {"id": file_id})
    return store.job(job_id)


def image_of(store, job, inspection_id: int, path: str) -> int:
    return store.enqueue("plate_image", job.channel, job.message_ts, job.thread_ts, f"plate:{inspection_id}:{path}",
                         path, job.user_id, {"path": path, "well": path[:2], "drop": 1}, inspection_id)


def kinds(jobs) -> list[str]:
    return [job.kind for job in jobs]


def test_an_inspection_is_recorded_once_and_ties_its_plate_job(store):
    job = plate_job(store)
    first = store.start_inspection(job, "Plate42", "plate42_2026-11-26.zip", 96, {"NOT_IMAGE": 2})
    again = store.start_inspection(job, "Plate42", "plate42_2026-11-26.zip", 96, {"NOT_IMAGE": 2})  # job ran again
    assert again == first and store.job(job.id).inspection_id == first.id
    assert (first.plate, first.plate_name, first.images, first.skipped) == ("plate42", "Plate42", 96, {"NOT_IMAGE": 2})
    assert not first.uploaded and first.map_file_id is None and first.progress_ts is None and first.finished_at is None
    store.update_inspection(first.id, progress_ts="9.9", map_file_id="F0MAP")
    updated = store.inspection(first.id)
    assert (updated.progress_ts, updated.uploaded, updated.map_file_id) == ("9.9", True, "F0MAP")
    with pytest.raises(ValueError):
        store.update_inspection(first.id, plate="other")


def test_the_summary_is_queued_once_the_plate_job_and_every_image_have_ended(store):
    job = plate_job(store)
    inspection = store.start_inspection(job, "plate42", "plate42.zip", 2, {})
    first, second = image_of(store, job, inspection.id, "A1.jpg"), image_of(store, job, inspection.id, "A2.jpg")
    store.finish_job(first, "done")
    store.finish_job(second, "failed", error="not an image")
    assert "plate_summary" not in kinds(store.claim("A", 60, 10))  # the plate job is still reading the zip
    store.finish_job(job.id, "done")
    (summary,) = [j for j in store.claim("A", 60, 10) if j.kind == "plate_summary"]
    assert (summary.inspection_id, summary.thread_ts) == (inspection.id, "1.1")
    assert store.inspection_outcomes(inspection.id) == (1, 0, 1)  # done, unreadable, not classified
    assert [j.payload["path"] for j in store.inspection_jobs(inspection.id)] == ["A1.jpg", "A2.jpg"]


def test_a_plate_that_fails_before_its_inspection_queues_nothing(store):
    job = plate_job(store)
    store.finish_job(job.id, "failed", error="corrupt zip")
    assert store.claim("A", 60, 10) == []


def test_two_zips_in_one_message_are_two_inspections(store):
    first, second = plate_job(store, file_id="F1"), plate_job(store, file_id="F2")
    one = store.start_inspection(first, "plate1", "plate1.zip", 1, {})
    two = store.start_inspection(second, "plate2", "plate2.zip", 1, {})
    assert one.id != two.id
    image_of(store, first, one.id, "A1.jpg")
    store.finish_job(first.id, "done")
    image = image_of(store, second, two.id, "A1.jpg")  # the same member name in the other zip
    store.finish_job(second.id, "done")
    store.finish_job(image, "done")
    summaries = [j for j in store.claim("A", 60, 10) if j.kind == "plate_summary"]
    assert [s.inspection_id for s in summaries] == [two.id]


def test_progress_is_due_at_most_once_per_interval(store):
    inspection = store.start_inspection(plate_job(store), "plate42", "plate42.zip", 96, {})
    assert store.progress_due(inspection.id, 60)
    assert not store.progress_due(inspection.id, 60)
    assert store.progress_due(inspection.id, 0)


def test_the_previous_inspection_is_the_same_plate_finished_in_the_same_channel(store):
    earlier = store.start_inspection(plate_job(store, "1.1"), "Plate42", "plate42_2026-11-26.zip", 96, {})
    other_plate = store.start_inspection(plate_job(store, "2.2"), "plate43", "plate43.zip", 96, {})
    unfinished = store.start_inspection(plate_job(store, "3.3"), "plate42", "plate42 (1).zip", 96, {})
    later = store.start_inspection(plate_job(store, "4.4"), "plate42", "plate42_2026-12-01.zip", 96, {})
    for inspection in (earlier, other_plate):
        store.update_inspection(inspection.id, finished_at=1.0)
    assert store.previous_inspection(later).id == earlier.id
    assert store.previous_inspection(earlier) is None
    assert store.thread_inspection("C1", "3.3").id == unfinished.id
    assert [i.id for i in store.recent_inspections("C1", 2)] == [later.id, unfinished.id]


def test_an_inspection_uploaded_before_map_ids_were_kept_has_no_map_id(store):
    inspection = store.start_inspection(plate_job(store), "plate42", "plate42.zip", 1, {})
    with store._transaction() as db:  # as an older bot recorded an upload
        db.run("UPDATE inspections SET uploaded = '1' WHERE id = ?", inspection.id)
    older = store.inspection(inspection.id)
    assert (older.uploaded, older.map_file_id) == (True, None)


def test_plate_hits_of_finds_the_one_job_that_shared_an_inspection(store):
    job = plate_job(store)
    inspection = store.start_inspection(job, "plate42", "plate42.zip", 1, {})
    assert store.plate_hits_of(inspection.id) is None
    shared = store.enqueue("plate_hits", "C1", job.message_ts, job.thread_ts, f"plate_hits:{inspection.id}", "plate42",
                           "U1", {"hits_channel": "CHITS"}, inspection.id)
    assert store.plate_hits_of(inspection.id).id == shared
    assert store.enqueue("plate_hits", "C1", job.message_ts, job.thread_ts, f"plate_hits:{inspection.id}", "plate42",
                         "U1", {}, inspection.id) is None  # shared once
    assert store.inspection_jobs(inspection.id) == []  # not one of the plate's images


def test_a_held_image_is_not_claimed_until_released_and_a_poll_uses_up_no_attempt(store):
    job = plate_job(store)
    inspection = store.start_inspection(job, "plate42", "plate42.zip", 1, {})
    held = store.enqueue("plate_image", "C1", "1.1", "1.1", "plate:1:A1.jpg", "A1", "U1", {"path": "A1.jpg"},
                         inspection.id, run_after=time.time() + 3600)
    poller = store.enqueue("plate_batch", "C1", "1.1", "1.1", "plate_batch:1", "plate batch", "U1", {}, inspection.id)
    assert kinds(store.claim("A", 60, 10)) == ["plate", "plate_batch"]
    store.poll_later(poller, 0)
    store.poll_later(poller, 0)
    (again,) = [j for j in store.claim("B", 60, 10) if j.id == poller]
    assert again.attempts == 1  # polls are no failed attempts
    store.release_jobs([held])
    assert [j.id for j in store.claim("C", 60, 10)] == [held]
    store.save_plate_batch(inspection.id, "batch_1", "gpt-4.1", "fp", {str(held): "sha"})
    store.collected_plate_batch("batch_1")
    (batch,) = store.plate_batches(inspection.id)
    assert (batch.batch_id, batch.model, batch.fingerprint, batch.entries, batch.collected) == (
        "batch_1", "gpt-4.1", "fp", {str(held): "sha"}, True)


def test_the_map_and_csv_ids_are_kept_and_marked_out_of_date_by_a_retry(store):
    inspection = store.start_inspection(plate_job(store), "plate42", "plate42.zip", 1, {})
    assert store.stale_plate_files(inspection.id) is None
    store.save_plate_files(inspection.id, "F0MAP", "F0CSV")
    assert store.inspection(inspection.id).map_file_id == "F0MAP" and store.stale_plate_files(inspection.id) is None
    store.mark_plate_files_stale(inspection.id)
    assert store.stale_plate_files(inspection.id) == ["F0MAP", "F0CSV"]
    store.save_plate_files(inspection.id, "F1MAP", "F1CSV")
    assert store.stale_plate_files(inspection.id) is None and store.inspection(inspection.id).map_file_id == "F1MAP"
