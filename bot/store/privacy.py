"""Store queries for keeping Slack's walls (a mixin of `Store`): the channels the bot was removed from,
each private channel's hits sharing, reads limited to a person's channels, forgetting a deleted upload,
and the membership changes each process heard (so the others' caches forget what changed).

`bot/store/base.py` imports this module to build `Store`, so its row readers are imported when a query
runs, not when this module loads.
"""
from __future__ import annotations

import json
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Collection, Iterable, NamedTuple, Sequence

from bot.models import HitSharing, Inspection, Job

if TYPE_CHECKING:
    from bot.store.base import Row, Tx

DELETED_BY = "deleted in Slack"  # who removed an example whose upload was deleted
WORDED_KINDS = ("question", "history")  # jobs whose payload keeps the words of the message that made them


@dataclass(frozen=True)
class Forgotten:
    """What forgetting a deleted upload took away."""

    jobs: int  # jobs marked deleted (now)
    images: int  # images whose bytes were removed
    examples: int  # team examples no longer used


def _in(values: Collection[Any]) -> str:
    return f"({','.join('?' * len(values))})"


def _jobs(rows: Iterable[Row]) -> list[Job]:
    from bot.store.base import _job_from_row

    return [_job_from_row(row) for row in rows]


def _inspections(rows: Iterable[Row]) -> list[Inspection]:
    from bot.store.base import _inspection_from_row

    return [_inspection_from_row(row) for row in rows]


class MembershipChange(NamedTuple):
    id: int
    user: str
    channel: str


class PrivacyQueries:
    if TYPE_CHECKING:
        def _rows(self, sql: str, *params: Any) -> list[Row]: ...

        def _transaction(self) -> AbstractContextManager[Tx]: ...

    # --- membership changes, shared between processes --------------------------------------------------

    def note_membership_change(self, user: str, channel: str, heard_by: str) -> None:
        """`heard_by` (a process) heard from Slack that the person joined or left the channel."""
        with self._transaction() as db:
            db.run("INSERT INTO membership_changes (user_id, channel, heard_by, heard_at) VALUES (?,?,?,?)",
                   user, channel, heard_by, time.time())

    def membership_changes(self, since: float, not_heard_by: str) -> list[MembershipChange]:
        """The changes other processes heard since then, oldest first."""
        rows = self._rows("SELECT id, user_id, channel FROM membership_changes WHERE heard_at >= ? AND heard_by <> ?"
                          " ORDER BY id", since, not_heard_by)
        return [MembershipChange(row["id"], row["user_id"], row["channel"]) for row in rows]

    def prune_membership_changes(self, before: float) -> int:
        with self._transaction() as db:
            return db.run("DELETE FROM membership_changes WHERE heard_at < ?", before)

    # --- the channels the bot was removed from ------------------------------------------------------

    def remove_channel(self, channel: str, how: str) -> bool:
        """The bot left the channel, or it was archived or deleted (`how`); True if that is news."""
        with self._transaction() as db:
            return db.run("INSERT INTO removed_channels (channel, how, removed_at) VALUES (?,?,?)"
                          " ON CONFLICT (channel) DO NOTHING", channel, how, time.time()) == 1

    def restore_channel(self, channel: str) -> bool:
        """The bot is in the channel again (invited back); True if it had been removed."""
        with self._transaction() as db:
            return db.run("DELETE FROM removed_channels WHERE channel = ?", channel) == 1

    def removed_channels(self) -> frozenset[str]:
        return frozenset(row["channel"] for row in self._rows("SELECT channel FROM removed_channels"))

    def channel_removed(self, channel: str) -> bool:
        return bool(self._rows("SELECT 1 AS x FROM removed_channels WHERE channel = ?", channel))

    def data_channels(self) -> frozenset[str]:
        """Every channel the bot keeps calls, plates, questions or examples of."""
        rows = self._rows("SELECT DISTINCT channel FROM jobs WHERE kind IN ('image', 'plate_image', 'question')"
                          " UNION SELECT DISTINCT channel FROM inspections"
                          " UNION SELECT DISTINCT channel FROM examples WHERE removed_at IS NULL")
        return frozenset(row["channel"] for row in rows)

    # --- hits sharing of private channels ------------------------------------------------------------

    def set_hit_sharing(self, channel: str, shared: bool, user_id: str) -> HitSharing:
        """Record a change of a channel's hits sharing (kept with who made it and when)."""
        now = time.time()
        with self._transaction() as db:
            db.run("INSERT INTO hit_sharing (channel, shared, user_id, changed_at) VALUES (?,?,?,?)",
                   channel, int(shared), user_id, now)
        return HitSharing(channel, shared, user_id, now)

    def hit_sharing(self, channel: str) -> HitSharing | None:
        """The channel's latest hits sharing setting, if anyone ever set one."""
        rows = self._rows("SELECT * FROM hit_sharing WHERE channel = ? ORDER BY id DESC LIMIT 1", channel)
        return HitSharing(channel, bool(rows[0]["shared"]), rows[0]["user_id"], float(rows[0]["changed_at"])) \
            if rows else None

    # --- reads limited to some channels ---------------------------------------------------------------

    def recent_jobs_in(self, channels: Collection[str], limit: int) -> list[Job]:
        """The latest answered image jobs of these channels."""
        if not channels:
            return []
        return _jobs(self._rows(f"SELECT * FROM jobs WHERE channel IN {_in(channels)} AND kind = 'image'"
                                " AND call_id IS NOT NULL AND state = 'done' ORDER BY id DESC LIMIT ?",
                                *channels, limit))

    def recent_inspections_in(self, channels: Collection[str], limit: int) -> list[Inspection]:
        """The latest plate inspections of these channels."""
        if not channels:
            return []
        return _inspections(self._rows(f"SELECT * FROM inspections WHERE channel IN {_in(channels)}"
                                       " ORDER BY id DESC LIMIT ?", *channels, limit))

    def calls_by_channel_since(self, since: float) -> list[tuple[float, str, str]]:
        """(when it was asked for, label, channel) of every image answered in Slack since `since`."""
        rows = self._rows("SELECT jobs.created_at, calls.label, jobs.channel FROM jobs"
                          " JOIN calls ON calls.id = jobs.call_id"
                          " WHERE jobs.kind IN ('image', 'plate_image') AND jobs.created_at >= ?", since)
        return [(float(row["created_at"]), row["label"], row["channel"]) for row in rows]

    def inspection_channels_since(self, since: float) -> list[str]:
        """The channel of each plate inspection recorded since `since`."""
        return [row["channel"] for row in self._rows("SELECT channel FROM inspections WHERE created_at >= ?", since)]

    # --- deleted uploads ------------------------------------------------------------------------------

    def every_job_of_message(self, channel: str, message_ts: str) -> list[Job]:
        """Every job a message made (its images, plates and their follow-ups, hits, questions)."""
        return _jobs(self._rows("SELECT * FROM jobs WHERE channel = ? AND message_ts = ? ORDER BY id",
                                channel, message_ts))

    def jobs_of_file(self, file_id: str) -> list[Job]:
        """Every job an uploaded file made, wherever it was posted: its image job (and that image's hit),
        or the plate of a zip with all its jobs, or its own image of a plate posted as images by well (the
        plate itself stays: its other images are not deleted)."""
        direct = _jobs(self._rows("SELECT * FROM jobs WHERE file_id IN (?, ?, ?) ORDER BY id",
                                  file_id, f"{file_id}:zip", f"hit:{file_id}"))
        found = {job.id: job for job in direct}
        for plate in (job for job in direct if job.kind == "plate" and job.inspection_id is not None):
            found.update((job.id, job) for job in _jobs(self._rows("SELECT * FROM jobs WHERE inspection_id = ?",
                                                                   plate.inspection_id)))
        like = f'%"{file_id}"%'  # images by well: the plate job's payload lists the message's files
        for plate in _jobs(self._rows("SELECT * FROM jobs WHERE kind = 'plate' AND file_id = 'plate' AND payload LIKE ?",
                                      like)):
            names = {file.get("name") for file in plate.payload.get("files", []) if file.get("id") == file_id}
            if not names or plate.inspection_id is None:
                continue
            found.update((job.id, job) for job in _jobs(self._rows(
                "SELECT * FROM jobs WHERE inspection_id = ? AND kind = 'plate_image'", plate.inspection_id))
                if job.payload.get("path") in names)
        return sorted(found.values(), key=lambda job: job.id)

    def forget_upload(self, jobs: Sequence[Job], how: str) -> Forgotten:
        """A deleted upload or question: its jobs marked deleted, the bytes of its images removed (unless
        another upload not deleted shows the same image), the team examples made from it no longer used
        (their copy of the image removed too), and a question's words blanked. Calls and verdicts stay."""
        if not jobs:
            return Forgotten(0, 0, 0)
        ids = [job.id for job in jobs]
        now = time.time()
        with self._transaction() as db:
            marked = sum(db.run("INSERT INTO deleted_jobs (job_id, how, deleted_at) VALUES (?,?,?)"
                                " ON CONFLICT (job_id) DO NOTHING", job_id, how, now) for job_id in ids)
            images = sum(db.run("UPDATE images SET jpeg = ? WHERE sha256 = ? AND length(jpeg) > 0", b"", sha256)
                         for sha256 in _image_hashes(db, jobs) if not _shown_elsewhere(db, sha256))
            examples = db.run(f"UPDATE examples SET removed_by = ?, removed_at = ? WHERE job_id IN {_in(ids)}"
                              " AND removed_at IS NULL", DELETED_BY, now, *ids)
            db.run(f"UPDATE examples SET jpeg = ? WHERE job_id IN {_in(ids)}", b"", *ids)
            for job in (job for job in jobs if job.kind in WORDED_KINDS and job.payload.get("text")):
                db.run("UPDATE jobs SET payload = ? WHERE id = ?", json.dumps({**job.payload, "text": ""}), job.id)
        return Forgotten(marked, images, examples)

    def forget_reply(self, job_id: int) -> None:
        """The job's message was deleted: nothing refers to it any more (no update, no clicks from it)."""
        with self._transaction() as db:
            db.run("UPDATE jobs SET reply_ts = NULL WHERE id = ?", job_id)

    def deleted_jobs(self, job_ids: Collection[int]) -> frozenset[int]:
        """Those of these jobs whose upload was deleted."""
        if not job_ids:
            return frozenset()
        rows = self._rows(f"SELECT job_id FROM deleted_jobs WHERE job_id IN {_in(job_ids)}", *job_ids)
        return frozenset(row["job_id"] for row in rows)

    def without_deleted(self, jobs: Sequence[Job]) -> list[Job]:
        """The jobs whose upload was not deleted."""
        gone = self.deleted_jobs([job.id for job in jobs])
        return [job for job in jobs if job.id not in gone]


def _image_hashes(db: Tx, jobs: Sequence[Job]) -> set[str]:
    """The images (sha256) of these jobs: through their calls, or as a plate's image stored to classify."""
    hashes = {job.payload["sha256"] for job in jobs if job.kind == "plate_image" and job.payload.get("sha256")}
    call_ids = [job.call_id for job in jobs if job.call_id is not None]
    if call_ids:
        hashes |= {row["image_sha256"] for row in db.rows(
            f"SELECT image_sha256 FROM calls WHERE id IN {_in(call_ids)}", *call_ids)}
    return hashes


def _shown_elsewhere(db: Tx, sha256: str) -> bool:
    """Whether an upload that was not deleted also has this image."""
    live = " AND jobs.id NOT IN (SELECT job_id FROM deleted_jobs)"
    return bool(db.rows("SELECT 1 AS x FROM jobs JOIN calls ON calls.id = jobs.call_id WHERE calls.image_sha256 = ?"
                        f"{live} LIMIT 1", sha256)
                or db.rows(f"SELECT 1 AS x FROM jobs WHERE kind = 'plate_image' AND payload LIKE ?{live} LIMIT 1",
                           f'%"{sha256}"%'))

