"""bot.store on SQLite and on PostgreSQL: versioned schema, the call cache, the job queue's records,
feedback, per-channel stats, pruning and copying a database."""
from __future__ import annotations

import io
import sqlite3
import threading
import time
from dataclasses import replace

import pytest
from PIL import Image as PILImage

from bot.images import normalise
from bot.models import Call, Usage
from bot.store import MIGRATIONS, SQLiteStore, StoreError, copy_database, open_store
from bot.store.schema import SQLITE_TYPES, statements

CALL = Call(label="crystals", confidence=0.9, confidence_source="logprobs", observations="edges",
            explanation="faceted", model="gpt-4.1", usage=Usage(4119, 1752, 44), cost_usd=0.006)


def make_image(colour: tuple[int, int, int], name: str = "drop.png"):
    buffer = io.BytesIO()
    PILImage.new("RGB", (32, 24), colour).save(buffer, format="PNG")
    return normalise(buffer.getvalue(), name, max_side=1024, max_pixels=60_000_000)


@pytest.fixture
def store(database_url):
    store = open_store(database_url)
    yield store
    store.close()


def image_job(store, channel: str = "C1", ts: str = "1.1", file_id: str = "F1", thread_ts: str | None = None):
    return store.enqueue("image", channel, ts, thread_ts or ts, file_id, f"{file_id}.png", "U1", {"id": file_id})


@pytest.fixture
def new_job(store):
    """Create an image job in channel C1 (message ts from a counter) and return its id."""
    count = iter(range(1, 1000))

    def create(channel: str = "C1", thread_ts: str | None = None, file_id: str = "F1") -> int:
        return image_job(store, channel, f"1700000000.{next(count):06d}", file_id, thread_ts)

    return create


def classified(store, job_id: int, label: str, colour=(10, 20, 30)) -> int:
    """Save a call with `label` for `job_id` and finish the job; returns the call id."""
    call = store.save_call(make_image(colour), replace(CALL, label=label), "fp")
    store.update_job(job_id, "replied", call_id=call.id, reply_ts="1700000001.000000")
    store.finish_job(job_id, "done")
    return call.id


def test_schema_is_created_at_the_latest_version_and_reopening_keeps_data(database_url):
    store = open_store(database_url)
    assert store.schema_version == len(MIGRATIONS)
    saved = store.save_call(make_image((1, 2, 3)), CALL, "fp")
    store.close()
    reopened = open_store(database_url)  # re-running a migration would fail: its tables already exist
    assert reopened.schema_version == len(MIGRATIONS)
    assert reopened.find_call(make_image((1, 2, 3)).sha256, "fp", "gpt-4.1").id == saved.id
    reopened.close()


def test_an_older_sqlite_database_is_migrated_forward_and_its_finished_jobs_stay_finished(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        for statement in statements(MIGRATIONS[0], SQLITE_TYPES) + statements(MIGRATIONS[1], SQLITE_TYPES):
            db.execute(statement)
        db.execute("INSERT INTO jobs (channel, message_ts, thread_ts, file_id, file_name, user_id, state, created_at,"
                   " updated_at) VALUES ('C1', '1.0', '1.0', 'F1', 'a.png', 'U1', 'replied', 0, 0)")
        db.execute("INSERT INTO jobs (channel, message_ts, thread_ts, file_id, file_name, user_id, state, created_at,"
                   " updated_at) VALUES ('C1', '2.0', '2.0', 'F2', 'b.png', 'U1', 'received', 0, 0)")
        db.execute("PRAGMA user_version = 2")
    store = SQLiteStore(path)
    assert store.schema_version == len(MIGRATIONS)
    (stuck,) = store.claim("me", 60, 10)  # the job the old thread pool left unfinished is taken up again
    assert (stuck.file_id, stuck.kind, stuck.payload) == ("F2", "image", {})
    store.close()


def test_a_database_from_a_newer_bot_opens_with_a_warning(tmp_path, caplog):
    path = tmp_path / "new.db"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    SQLiteStore(path).close()
    assert "newer than this bot knows" in caplog.text


def test_a_database_that_cannot_be_reached_is_named_without_its_password():
    with pytest.raises(StoreError) as raised:
        open_store("postgresql://lab:hunter2-SECRET@127.0.0.1:1/crystals?connect_timeout=1", pool_size=1,
                   wait_seconds=0.5)
    assert "127.0.0.1" in str(raised.value) and "hunter2" not in str(raised.value)


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


def test_enqueue_refuses_the_same_key_of_the_same_message_twice(store):
    first = image_job(store)
    assert first is not None
    assert image_job(store) is None
    assert image_job(store, file_id="F2") not in (None, first)
    assert image_job(store, channel="C2") is not None
    job = store.job(first)
    assert (job.state, job.kind, job.file_name, job.call_id, job.payload) == ("received", "image", "F1.png", None,
                                                                              {"id": "F1"})
    assert [j.file_id for j in store.jobs_of_message("C1", "1.1")] == ["F1", "F2"]


def test_first_sighting(store):
    assert store.first_sighting("Ev1") is True
    assert store.first_sighting("Ev1") is False
    assert store.first_sighting("Ev2") is True


def test_claim_takes_due_unleased_jobs_oldest_first_and_counts_attempts(store):
    ids = [image_job(store, file_id=f"F{n}") for n in range(3)]
    first = store.claim("A", 60, 2)
    assert [job.id for job in first] == ids[:2] and {job.attempts for job in first} == {1}
    assert [job.id for job in store.claim("B", 60, 5)] == ids[2:]  # leased jobs are not taken twice
    assert store.claim("B", 60, 5) == []


def test_a_job_whose_lease_ran_out_is_claimed_again(store):
    job_id = image_job(store)
    store.claim("dead process", 0.05, 1)
    time.sleep(0.1)
    (again,) = store.claim("B", 60, 1)
    assert (again.id, again.attempts) == (job_id, 2)


def test_extended_leases_are_kept_and_released_jobs_are_free_at_once(store):
    job_id = image_job(store)
    store.claim("A", 0.05, 1)
    store.extend_leases("A", [job_id], 60)
    time.sleep(0.1)
    assert store.claim("B", 60, 1) == []
    assert store.release("A") == 1
    assert [job.id for job in store.claim("B", 60, 1)] == [job_id]


def test_retry_later_waits_before_the_job_is_due_again(store):
    job_id = image_job(store)
    store.claim("A", 60, 1)
    store.retry_later(job_id, 0.2, "model busy")
    assert store.claim("A", 60, 1) == []
    time.sleep(0.25)
    (job,) = store.claim("A", 60, 1)
    assert (job.id, job.error, job.attempts) == (job_id, "model busy", 2)


def test_the_last_image_of_a_message_to_finish_queues_its_outcome_once(store):
    first, second = image_job(store, file_id="F1"), image_job(store, file_id="F2")
    store.finish_job(first, "done")
    assert [job.kind for job in store.claim("A", 60, 10)] == ["image"]  # F2 still open: no outcome yet
    store.finish_job(second, "failed", error="corrupt")
    (outcome,) = store.claim("A", 60, 10)
    assert (outcome.kind, outcome.message_ts, outcome.payload) == ("outcome", "1.1", {})
    store.finish_job(outcome.id, "done")
    assert store.requeue(second, "C1")  # Retry: the image runs again, and its end redoes the outcome
    store.finish_job(second, "done")
    (redone,) = [job for job in store.claim("A", 60, 10) if job.kind == "outcome"]
    assert (redone.id, redone.payload) == (outcome.id, {"again": True})


def test_forgetting_the_only_image_of_a_message_still_queues_its_outcome(store):
    job_id = image_job(store)
    store.finish_job(job_id, None)
    assert store.jobs_of_message("C1", "1.1") == []
    assert [job.kind for job in store.claim("A", 60, 10)] == ["outcome"]


def test_requeue_takes_only_a_failed_job_of_the_same_channel(store):
    job_id = image_job(store)
    assert not store.requeue(job_id, "C1")  # not failed
    store.finish_job(job_id, "failed", error="model down")
    assert not store.requeue(job_id, "C2")  # a click from another channel
    assert store.requeue(job_id, "C1")
    job = store.job(job_id)
    assert (job.state, job.attempts, job.error) == ("received", 0, None)


def test_retry_sets_an_ended_service_notice_aside_so_the_next_wait_gets_a_new_one(store):
    from bot.store.notices import NOTICE_KEY, NOTICE_KIND

    def notice() -> int | None:
        return store.enqueue(NOTICE_KIND, "C1", "1.1", "1.1", NOTICE_KEY, "", "U1", {})

    first = notice()
    assert notice() is None  # one per upload while it lasts
    store.rearm_service_notice("C1", "1.1")
    assert notice() is None  # not while it is open: a Retry then changes nothing
    store.finish_job(first, "done")
    store.rearm_service_notice("C1", "1.1")
    second = notice()
    assert second not in (None, first) and store.job(first).state == "done"
    assert store.job(first).file_id == f"{NOTICE_KEY}:{first}" and store.job(second).file_id == NOTICE_KEY


def test_update_job_records_steps_only(store, new_job):
    job_id = new_job()
    store.update_job(job_id, "downloaded", file_name="real.png")
    assert (store.job(job_id).state, store.job(job_id).file_name) == ("downloaded", "real.png")
    with pytest.raises(ValueError):
        store.update_job(job_id, "done")
    with pytest.raises(ValueError):
        store.update_job(job_id, "replied", user_id="U666")  # not an updatable column
    with pytest.raises(ValueError):
        store.finish_job(job_id, "replied")


def test_thread_jobs_only_returns_jobs_with_a_call(store, new_job):
    with_call, without_call = new_job(thread_ts="T1"), new_job(thread_ts="T1")
    elsewhere = new_job(thread_ts="T2")
    classified(store, with_call, "crystals")
    classified(store, elsewhere, "clear")
    store.finish_job(without_call, "failed", error="too large")
    assert [job.id for job in store.thread_jobs("C1", "T1")] == [with_call]


def test_recent_jobs_newest_first_and_images_only(store, new_job):
    ids = [new_job() for _ in range(3)]
    new_job(channel="C2")
    store.enqueue("question", "C1", "9.9", "9.9", "question", "question", "U1", {"text": "why?"})
    assert [job.id for job in store.recent_jobs("C1", 2)] == ids[:0:-1]


def test_channel_stats_counts_labels_failures_and_only_the_latest_feedback(store, new_job):
    jobs = [new_job() for _ in range(5)]
    classified(store, jobs[0], "crystals")
    classified(store, jobs[1], "crystals", colour=(1, 1, 1))
    classified(store, jobs[2], "clear")
    store.finish_job(jobs[3], "failed", error="corrupt")
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


def test_a_click_stored_twice_counts_once(store, new_job):
    job_id = new_job()
    classified(store, job_id, "crystals")
    store.add_feedback(job_id, "U2", "corrected", "clear", request_id=99)
    store.add_feedback(job_id, "U2", "corrected", "clear", request_id=99)  # the click's job ran again
    assert store.channel_stats("C1").corrected == 1
    assert len([row for page in store.dump("feedback") for row in page]) == 1


def test_batches_round_trip(store):
    store.save_batch("batch_1", "gpt-4.1", "fp", {"req-1": "a.png"})
    assert store.batch("batch_1") == ("gpt-4.1", "fp", {"req-1": "a.png"})
    assert store.batch("batch_2") is None


def test_prune_forgets_old_event_ids_and_old_image_bytes_but_keeps_calls(store):
    store.first_sighting("EvOld")
    old_image, new_image = make_image((1, 1, 1)), make_image((2, 2, 2))
    old_call = store.save_call(old_image, CALL, "fp")
    cutoff = time.time()
    time.sleep(0.01)
    store.first_sighting("EvNew")
    store.save_call(new_image, CALL, "fp")
    assert store.prune(events_before=cutoff, images_before=cutoff) == (1, 1)
    assert store.first_sighting("EvOld") and not store.first_sighting("EvNew")
    assert store.image_of_call(old_call.id) is None and store.call(old_call.id) is not None
    assert store.find_call(old_image.sha256, "fp", "gpt-4.1").label == "crystals"  # the cache still answers
    assert store.image(new_image.sha256) == new_image


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


def test_copy_database_moves_a_sqlite_history_into_postgresql(tmp_path, postgres_url):
    source = open_store(f"sqlite:///{tmp_path / 'lab.db'}")
    job_id = image_job(source)
    call_id = classified(source, job_id, "crystals")
    source.add_feedback(job_id, "U2", "confirmed", "crystals")
    source.first_sighting("Ev1")
    target = open_store(postgres_url)
    copied = copy_database(source, target)
    assert (copied["images"], copied["calls"], copied["jobs"], copied["feedback"]) == (1, 1, 2, 1)  # + outcome job
    assert target.call(call_id) == source.call(call_id)
    assert target.image_of_call(call_id) == source.image_of_call(call_id)
    assert target.channel_stats("C1") == source.channel_stats("C1")
    assert not target.first_sighting("Ev1")
    assert image_job(target, ts="2.2") > job_id  # new ids continue after the copied ones
    with pytest.raises(ValueError, match="empty"):
        copy_database(source, target)
    source.close()
    target.close()


def test_connections_the_server_dropped_are_replaced_without_a_failed_query(postgres_url):
    """A PostgreSQL restart or failover drops every pooled connection; the next queries still answer."""
    import psycopg

    store = open_store(postgres_url)
    job_id = image_job(store)
    name = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        dropped = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                " WHERE datname = %s AND pid <> pg_backend_pid()", (name,)).fetchone()[0]
    assert dropped >= 1
    assert store.job(job_id).id == job_id  # no OperationalError: the dead connection was not handed out
    store.close()
