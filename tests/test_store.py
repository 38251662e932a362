"""bot.store: versioned schema, the call cache, Slack jobs, feedback and per-channel stats in SQLite."""
from __future__ import annotations

import io
import sqlite3
import threading
from dataclasses import replace

import pytest
from PIL import Image as PILImage

from bot.images import normalise
from bot.models import Call, Usage
from bot.store import MIGRATIONS, Store

CALL = Call(label="crystals", confidence=0.9, confidence_source="logprobs", observations="edges",
            explanation="faceted", model="gpt-4.1", usage=Usage(4119, 1752, 44), cost_usd=0.006)


def make_image(colour: tuple[int, int, int], name: str = "drop.png"):
    buffer = io.BytesIO()
    PILImage.new("RGB", (32, 24), colour).save(buffer, format="PNG")
    return normalise(buffer.getvalue(), name, max_side=1024, max_pixels=60_000_000)


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "data" / "crystals.db")
    yield store
    store.close()


@pytest.fixture
def new_job(store):
    """Create a job in channel C1 (message ts from a counter) and return its id."""
    count = iter(range(1, 1000))

    def create(channel: str = "C1", thread_ts: str | None = None, file_id: str = "F1") -> int:
        ts = f"1700000000.{next(count):06d}"
        return store.create_job(channel, ts, thread_ts or ts, file_id, "drop.png", "U1")

    return create


def classified(store, job_id: int, label: str, colour=(10, 20, 30)) -> int:
    """Save a call with `label` for `job_id` and mark the job replied; returns the call id."""
    call = store.save_call(make_image(colour), replace(CALL, label=label), "fp")
    store.update_job(job_id, "replied", call_id=call.id, reply_ts="1700000001.000000")
    return call.id


def test_schema_is_created_at_the_latest_version_and_reopening_keeps_data(tmp_path):
    path = tmp_path / "crystals.db"
    store = Store(path)
    assert store.schema_version == len(MIGRATIONS) == 2
    saved = store.save_call(make_image((1, 2, 3)), CALL, "fp")
    store.close()
    reopened = Store(path)  # re-running a migration would fail: its tables already exist
    assert reopened.schema_version == len(MIGRATIONS)
    assert reopened.find_call(make_image((1, 2, 3)).sha256, "fp", "gpt-4.1").id == saved.id
    reopened.close()


def test_an_older_database_is_migrated_forward(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
    store = Store(path)
    assert store.schema_version == len(MIGRATIONS)
    assert store.create_job("C1", "1.0", "1.0", "F1", "a.png", "U1") is not None
    store.close()


def test_find_call_returns_the_saved_call_from_the_cache(store):
    image = make_image((200, 40, 60))
    saved = store.save_call(image, CALL, "fp1")
    assert saved.id is not None and not saved.from_cache
    found = store.find_call(image.sha256, "fp1", "gpt-4.1")
    assert found == replace(CALL, id=saved.id, from_cache=True)
    assert store.find_call(image.sha256, "fp2", "gpt-4.1") is None
    assert store.find_call(image.sha256, "fp1", "gpt-4.1-mini") is None
    assert store.find_call(make_image((0, 0, 0)).sha256, "fp1", "gpt-4.1") is None


def test_find_call_returns_the_latest_call(store):
    image = make_image((5, 5, 5))
    store.save_call(image, CALL, "fp")
    newer = store.save_call(image, replace(CALL, label="clear", confidence=None, confidence_source="none"), "fp")
    found = store.find_call(image.sha256, "fp", "gpt-4.1")
    assert (found.id, found.label, found.confidence, found.confidence_source) == (newer.id, "clear", None, "none")


def test_image_of_call_returns_the_image_bytes(store):
    image = make_image((90, 180, 30), name="plate.png")
    call = store.save_call(image, CALL, "fp")
    assert store.image_of_call(call.id) == image
    assert store.image(image.sha256).jpeg == image.jpeg
    assert store.call(call.id) == replace(CALL, id=call.id)
    assert store.image_of_call(call.id + 100) is None


def test_create_job_refuses_the_same_file_of_the_same_message_twice(store):
    first = store.create_job("C1", "1.1", "1.1", "F1", "a.png", "U1")
    assert first is not None
    assert store.create_job("C1", "1.1", "1.1", "F1", "a.png", "U1") is None
    assert store.create_job("C1", "1.1", "1.1", "F2", "b.png", "U1") not in (None, first)
    assert store.create_job("C2", "1.1", "1.1", "F1", "a.png", "U1") is not None
    job = store.job(first)
    assert (job.state, job.file_name, job.call_id) == ("received", "a.png", None)
    assert [j.file_id for j in store.jobs_of_message("C1", "1.1")] == ["F1", "F2"]


def test_first_sighting(store):
    assert store.first_sighting("Ev1") is True
    assert store.first_sighting("Ev1") is False
    assert store.first_sighting("Ev2") is True


def test_update_job(store, new_job):
    job_id = new_job()
    store.update_job(job_id, "failed", error="not an image")
    assert (store.job(job_id).state, store.job(job_id).error) == ("failed", "not an image")
    with pytest.raises(ValueError):
        store.update_job(job_id, "done")
    with pytest.raises(ValueError):
        store.update_job(job_id, "replied", user_id="U666")  # not an updatable column
    assert store.job(job_id).state == "failed"


def test_discard_job(store, new_job):
    job_id = new_job()
    store.discard_job(job_id)
    assert store.job(job_id) is None


def test_thread_jobs_only_returns_jobs_with_a_call(store, new_job):
    with_call, without_call = new_job(thread_ts="T1"), new_job(thread_ts="T1")
    elsewhere = new_job(thread_ts="T2")
    classified(store, with_call, "crystals")
    classified(store, elsewhere, "clear")
    store.update_job(without_call, "failed", error="too large")
    assert [job.id for job in store.thread_jobs("C1", "T1")] == [with_call]


def test_recent_jobs_newest_first(store, new_job):
    ids = [new_job() for _ in range(3)]
    new_job(channel="C2")
    assert [job.id for job in store.recent_jobs("C1", 2)] == ids[:0:-1]


def test_channel_stats_counts_labels_failures_and_only_the_latest_feedback(store, new_job):
    jobs = [new_job() for _ in range(5)]
    classified(store, jobs[0], "crystals")
    classified(store, jobs[1], "crystals", colour=(1, 1, 1))
    classified(store, jobs[2], "clear")
    store.update_job(jobs[3], "failed", error="corrupt")
    store.add_feedback(jobs[0], "U2", "confirmed", "crystals")
    store.add_feedback(jobs[0], "U3", "corrected", "precipitate")  # the latest verdict counts
    store.add_feedback(jobs[1], "U2", "corrected", "other")
    store.add_feedback(jobs[1], "U2", "confirmed", "crystals")
    other_channel = new_job(channel="C2")
    classified(store, other_channel, "other")
    store.add_feedback(other_channel, "U2", "confirmed", "other")
    stats = store.channel_stats("C1")
    assert stats.calls_by_label == {"crystals": 2, "clear": 1}
    assert (stats.failed, stats.confirmed, stats.corrected) == (1, 1, 1)
    assert store.latest_feedback(jobs[0]).label == "precipitate"
    assert store.latest_feedback(jobs[2]) is None


def test_confirm_then_correct_counts_as_corrected_only(store, new_job):
    job_id = new_job()
    classified(store, job_id, "crystals")
    store.add_feedback(job_id, "U2", "confirmed", "crystals")
    store.add_feedback(job_id, "U2", "corrected", "clear")
    stats = store.channel_stats("C1")
    assert (stats.confirmed, stats.corrected) == (0, 1)


def test_batches_round_trip(store):
    store.save_batch("batch_1", "gpt-4.1", "fp", {"req-1": "a.png"})
    assert store.batch("batch_1") == ("gpt-4.1", "fp", {"req-1": "a.png"})
    assert store.batch("batch_2") is None


def test_concurrent_save_call_from_8_threads(store):
    images = [make_image((n * 20, 0, 0), name=f"{n}.png") for n in range(8)]
    errors, ids = [], []

    def work(image):
        try:
            for _ in range(10):
                ids.append(store.save_call(image, CALL, "fp").id)
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(image,)) for image in images]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(ids)) == 80
    assert all(store.find_call(image.sha256, "fp", "gpt-4.1") for image in images)
