"""bot.store on SQLite and PostgreSQL: this month's model spend (in all and per channel), the job that
shared a call in the hits channel, a channel's calls for an export, page by page, and the team's examples."""
from __future__ import annotations

import time
from dataclasses import replace

from bot.models import Usage
from tests.test_store import CALL, classified, make_image, new_job, store  # noqa: F401 (fixtures)


def test_spend_since_adds_calls_and_follow_up_answers_after_the_moment_only(store):
    store.save_call(make_image((1, 1, 1)), replace(CALL, cost_usd=0.5), "fp")
    store.record_follow_up(1, "gpt-4.1", Usage(), 0.25)
    since = time.time()
    time.sleep(0.01)
    store.save_call(make_image((2, 2, 2)), replace(CALL, cost_usd=0.125), "fp")
    store.save_call(make_image((3, 3, 3)), replace(CALL, cost_usd=None), "fp")  # a model without a price
    store.record_follow_up(1, "gpt-4.1", Usage(), 0.0625)
    assert store.spend_since(0) == 0.5 + 0.25 + 0.125 + 0.0625
    assert store.spend_since(since) == 0.125 + 0.0625
    assert store.spend_since(time.time() + 1) == 0


def test_spend_by_channel_counts_a_call_where_it_was_first_asked_for(store, new_job):
    first, cached_elsewhere, other = new_job(channel="C1"), new_job(channel="C2"), new_job(channel="C2")
    call_id = classified(store, first, "crystals")
    store.update_job(cached_elsewhere, "replied", call_id=call_id)  # the same image, answered from the cache
    classified(store, other, "clear", colour=(9, 9, 9))
    store.record_follow_up(other, "gpt-4.1", Usage(), 0.5)
    store.save_call(make_image((4, 4, 4)), CALL, "fp")  # from the terminal: in no channel
    assert store.spend_by_channel_since(0) == {"C1": CALL.cost_usd, "C2": CALL.cost_usd + 0.5}
    assert store.spend_by_channel_since(time.time() + 1) == {}


def test_hit_of_finds_the_job_that_shared_an_image(store, new_job):
    image_job = store.job(new_job())
    assert store.hit_of(image_job) is None
    hit_id = store.enqueue("hit", image_job.channel, image_job.message_ts, image_job.thread_ts,
                           store.hit_key(image_job), image_job.file_name, "U1", {"job_id": image_job.id})
    assert store.hit_of(image_job).id == hit_id
    assert store.enqueue("hit", image_job.channel, image_job.message_ts, image_job.thread_ts,
                         store.hit_key(image_job), image_job.file_name, "U1", {}) is None  # shared once


def test_export_pages_a_channels_calls_with_the_latest_verdict_within_the_period(store, new_job):
    jobs = [new_job() for _ in range(3)]
    for number, job_id in enumerate(jobs):
        classified(store, job_id, "crystals", colour=(number, 0, 0))
    store.finish_job(new_job(), "failed", error="corrupt")  # no call: not exported
    classified(store, new_job(channel="C2"), "clear", colour=(7, 7, 7))
    store.add_feedback(jobs[0], "U2", "confirmed", "crystals")
    store.add_feedback(jobs[0], "U3", "corrected", "other")

    def exported(start=None, end=None, page=500):
        return [[row["id"] for row in rows] for rows in store.export_pages("C1", start, end, page)]

    assert exported(page=2) == [jobs[:2], jobs[2:]]
    first, second, _ = next(store.export_pages("C1", None, None))
    assert (first["label"], first["verdict"], first["verdict_label"], first["verdict_user"]) == \
        ("crystals", "corrected", "other", "U3")
    assert first["file_name"] == "F1.png" and first["user_id"] == "U1" and first["reply_ts"] == "1700000001.000000"
    assert second["verdict"] is None
    assert exported(start=time.time() + 1) == [] and exported(end=time.time() - 3600) == []
    assert exported(time.time() - 3600, time.time() + 1) == [jobs]


def test_reviewed_calls_carry_the_latest_verdict_per_call_in_one_channel_or_all(store, new_job):
    first, second, unreviewed, elsewhere = new_job(), new_job(), new_job(), new_job(channel="C2")
    for number, job_id in enumerate((first, second, unreviewed, elsewhere)):
        classified(store, job_id, "crystals", colour=(number, 1, 1))
    store.add_feedback(first, "U2", "confirmed", "crystals")
    store.add_feedback(first, "U3", "corrected", "precipitate")  # the team changed its mind
    store.add_feedback(second, "U2", "confirmed", "crystals")
    store.add_feedback(elsewhere, "U4", "corrected", "clear")

    here = store.reviewed_calls("C1")
    assert [(r.job_id, r.call.label, r.feedback.verdict, r.feedback.label, r.feedback.user_id) for r in here] == \
        [(first, "crystals", "corrected", "precipitate", "U3"), (second, "crystals", "confirmed", "crystals", "U2")]
    assert here[0].file_name == "F1.png" and here[0].call.id is not None and here[0].channel == "C1"
    assert [r.job_id for r in store.reviewed_calls()] == [first, second, elsewhere]


def test_examples_are_added_once_per_image_listed_newest_first_and_removed_for_the_record(store, new_job):
    first, second = store.job(new_job()), store.job(new_job())
    rods, plates = make_image((1, 1, 1), "rods.png"), make_image((2, 2, 2), "plates.png")
    rods_id = store.add_example(rods, "crystals", "Rods.", first, "https://x/1", "U1")
    plates_id = store.add_example(plates, "clear", "Clear.", second, "https://x/2", "U2")
    assert store.add_example(rods, "other", "Again.", second, "https://x/3", "U3") is None
    assert [(e.id, e.label, e.file_name, e.added_by) for e in store.team_examples()] == [
        (plates_id, "clear", "plates.png", "U2"), (rods_id, "crystals", "rods.png", "U1")]
    assert store.example_of_image(rods.sha256).id == rods_id
    assert store.example_images([rods_id]) == {rods_id: rods}

    removed = store.remove_example(rods_id, "U9")
    assert removed.id == rods_id and store.remove_example(rods_id, "U9") is None
    assert [e.id for e in store.team_examples()] == [plates_id] and store.example_of_image(rods.sha256) is None
    assert store.add_example(rods, "crystals", "Rods, again.", first, "https://x/1", "U1") not in {None, rods_id}


def test_pruning_old_images_keeps_the_examples_images(store, new_job):
    image = make_image((3, 3, 3))
    store.save_image(image)
    example_id = store.add_example(image, "crystals", "Rods.", store.job(new_job()), "https://x/1", "U1")
    store.prune(0, time.time() + 1)
    assert store.image(image.sha256) is None
    assert store.example_images([example_id])[example_id].jpeg == image.jpeg
