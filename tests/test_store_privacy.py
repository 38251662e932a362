"""The store's privacy queries on SQLite and PostgreSQL: the channels the bot was removed from, each private
channel's hits sharing (who and when, kept), reads limited to some channels, and forgetting a deleted upload
(its image bytes, the examples made from it) while its call and verdicts stay."""
from __future__ import annotations

import time

from bot.store import copy_database, open_store
from bot.store.privacy import DELETED_BY
from tests.test_store import CALL, classified, make_image, new_job, store  # noqa: F401 (fixtures)


def test_a_removed_channel_is_remembered_until_the_bot_is_back(store, database_url):
    assert store.remove_channel("C7", "was archived") and not store.remove_channel("C7", "removed the bot")
    assert store.channel_removed("C7") and store.removed_channels() == {"C7"} and not store.channel_removed("C1")
    store.close()
    reopened = open_store(database_url)  # kept in the database: a restart does not forget it
    assert reopened.channel_removed("C7")
    assert reopened.restore_channel("C7") and not reopened.restore_channel("C7")
    assert reopened.removed_channels() == frozenset()
    reopened.close()


def test_hits_sharing_keeps_every_change_with_who_and_when_and_the_latest_counts(store):
    assert store.hit_sharing("G2") is None
    on = store.set_hit_sharing("G2", True, "U1")
    store.set_hit_sharing("C9", True, "U5")
    assert store.hit_sharing("G2") == on and on.shared and on.user_id == "U1" and on.changed_at > 0
    off = store.set_hit_sharing("G2", False, "U2")
    assert store.hit_sharing("G2") == off and not off.shared
    rows = store._rows("SELECT channel, shared, user_id FROM hit_sharing ORDER BY id")
    assert [(r["channel"], r["shared"], r["user_id"]) for r in rows] == [("G2", 1, "U1"), ("C9", 1, "U5"),
                                                                         ("G2", 0, "U2")]


def test_membership_changes_are_read_by_the_other_processes_until_pruned(store):
    store.note_membership_change("U2", "G2", "process A")
    store.note_membership_change("U3", "C1", "process B")
    store.note_membership_change("U4", "G2", "process A")
    assert [(c.user, c.channel) for c in store.membership_changes(0, "process B")] == [("U2", "G2"), ("U4", "G2")]
    assert [(c.user, c.channel) for c in store.membership_changes(0, "process A")] == [("U3", "C1")]
    assert store.membership_changes(time.time() + 60, "process C") == []  # only those heard since then
    assert store.prune_membership_changes(time.time() + 60) == 3 and store.membership_changes(0, "process C") == []


def test_reads_limited_to_some_channels(store, new_job):
    jobs = {channel: new_job(channel=channel) for channel in ("C1", "G2", "C3")}
    for n, job_id in enumerate(jobs.values()):
        classified(store, job_id, "crystals", colour=(n, n, n))
    assert [job.channel for job in store.recent_jobs_in({"C1", "G2"}, 10)] == ["G2", "C1"]
    assert store.recent_jobs_in(set(), 10) == [] and store.recent_inspections_in(set(), 10) == []
    assert sorted(channel for _, _, channel in store.calls_by_channel_since(0)) == ["C1", "C3", "G2"]
    assert store.data_channels() == {"C1", "G2", "C3"}


def upload(store, channel: str, ts: str, file_id: str, colour: tuple[int, int, int]) -> int:
    """An answered image job; its call's image is stored."""
    job_id = store.enqueue("image", channel, ts, ts, file_id, f"{file_id}.png", "U1", {"id": file_id})
    call = store.save_call(make_image(colour), CALL, "fp")
    store.update_job(job_id, "replied", call_id=call.id, reply_ts=f"{ts}1")
    store.finish_job(job_id, "done")
    return job_id


def test_a_deleted_upload_loses_its_image_bytes_and_its_example_but_keeps_its_call(store):
    deleted = upload(store, "G2", "1.1", "F1", (1, 2, 3))
    same_image_elsewhere = upload(store, "C1", "2.2", "F2", (4, 5, 6))
    upload(store, "C1", "3.3", "F3", (4, 5, 6))
    hit = store.enqueue("hit", "G2", "1.1", "1.1", "hit:F1", "F1.png", "U1", {"job_id": deleted})
    job = store.job(deleted)
    image = store.image_of_call(job.call_id)
    example_id = store.add_example(image, "crystals", "Rods.", job, "https://x", "U1")
    store.add_feedback(deleted, "U2", "confirmed", "crystals")

    jobs = store.jobs_of_file("F1")
    assert [j.id for j in jobs] == [deleted, hit]
    forgotten = store.forget_upload(jobs, "file deleted")
    assert (forgotten.jobs, forgotten.images, forgotten.examples) == (2, 1, 1)
    assert store.image_of_call(job.call_id) is None and store.team_examples() == []
    (row,) = store._rows("SELECT removed_by, length(jpeg) AS n FROM examples WHERE id = ?", example_id)
    assert dict(row) == {"removed_by": DELETED_BY, "n": 0}  # its own copy of the image is gone too
    assert store.call(job.call_id).label == "crystals" and store.latest_feedback(deleted).verdict == "confirmed"
    assert store.deleted_jobs([deleted, hit, same_image_elsewhere]) == {deleted, hit}
    assert store.forget_upload(jobs, "file deleted").jobs == 0  # a second event changes nothing

    store.forget_upload(store.jobs_of_file("F2"), "file deleted")  # F3 shows the same image: it stays
    assert store.image_of_call(store.job(same_image_elsewhere).call_id) is not None
    store.forget_upload(store.jobs_of_file("F3"), "file deleted")
    assert store.image_of_call(store.job(same_image_elsewhere).call_id) is None


def test_a_deleted_question_keeps_none_of_its_words(store):
    asked = store.enqueue("question", "G2", "5.5", "1.1", "question", "question", "U1",
                          {"text": "is the Secret-42 drop in D7 crystals?", "user": "U1"})
    other = store.enqueue("question", "G2", "6.6", "1.1", "question", "question", "U1", {"text": "and D8?"})
    (job,) = store.every_job_of_message("G2", "5.5")
    assert store.forget_upload([job], "message deleted").jobs == 1
    assert store.job(asked).payload == {"text": "", "user": "U1"} and store.deleted_jobs([asked]) == {asked}
    assert store.job(other).payload["text"] == "and D8?"  # another question of the thread keeps its words


def test_the_jobs_of_a_zip_or_of_one_image_of_a_plate_by_well(store):
    zip_job = store.job(store.enqueue("plate", "C1", "1.1", "1.1", "FZIP", "p.zip", "U1", {"id": "FZIP"}))
    inspection = store.start_inspection(zip_job, "p", "p.zip", 2, {})
    wells = [store.enqueue("plate_image", "C1", "1.1", "1.1", f"plate:{inspection.id}:{path}", path, "U1",
                           {"path": path, "sha256": "ab" * 32}, inspection.id) for path in ("A1.jpg", "A2.jpg")]
    assert {j.id for j in store.jobs_of_file("FZIP")} == {zip_job.id, *wells}

    files = [{"id": "FA1", "name": "A1.jpg"}, {"id": "FA2", "name": "A2.jpg"}]
    by_well = store.job(store.enqueue("plate", "C1", "2.2", "2.2", "plate", "images by well", "U1", {"files": files}))
    by_well_inspection = store.start_inspection(by_well, "q", "", 2, {})
    a1, a2 = [store.enqueue("plate_image", "C1", "2.2", "2.2", f"plate:{by_well_inspection.id}:{f['name']}",
                            f["name"], "U1", {"path": f["name"]}, by_well_inspection.id) for f in files]
    assert {j.id for j in store.jobs_of_file("FA2")} == {a2}
    assert {j.id for j in store.every_job_of_message("C1", "2.2")} == {by_well.id, a1, a2}
    store.forget_upload(store.jobs_of_file("FA2"), "file deleted")
    assert [j.id for j in store.without_deleted(store.inspection_jobs(by_well_inspection.id))] == [a1]


def test_the_new_tables_are_copied(store, tmp_path):
    store.remove_channel("C7", "was deleted")
    store.set_hit_sharing("G2", True, "U1")
    job_id = upload(store, "G2", "1.1", "F1", (1, 2, 3))
    store.forget_upload([store.job(job_id)], "message deleted")
    target = open_store(f"sqlite:///{tmp_path / 'copy.db'}")
    copied = copy_database(store, target)
    assert (copied["removed_channels"], copied["hit_sharing"], copied["deleted_jobs"]) == (1, 1, 1)
    assert target.channel_removed("C7") and target.hit_sharing("G2").shared and target.deleted_jobs([job_id])
    target.close()


def test_a_plate_image_not_classified_yet_still_counts_as_showing_its_image(store):
    image = make_image((7, 7, 7))
    store.save_image(image)
    zip_job = store.job(store.enqueue("plate", "C1", "1.1", "1.1", "FZIP", "p.zip", "U1", {"id": "FZIP"}))
    inspection = store.start_inspection(zip_job, "p", "p.zip", 1, {})
    store.enqueue("plate_image", "C1", "1.1", "1.1", f"plate:{inspection.id}:A1.jpg", "A1.jpg", "U1",
                  {"path": "A1.jpg", "sha256": image.sha256}, inspection.id)
    deleted = upload(store, "G2", "2.2", "F1", (7, 7, 7))  # the same image, uploaded again and deleted
    store.forget_upload(store.jobs_of_file("F1"), "file deleted")
    assert store.image(image.sha256) is not None and store.deleted_jobs([deleted])
