"""The store's one interface: images, calls (the cache), batches, the job queue, feedback.

All SQL lives here, written once for both databases; `SQLiteStore` and `PostgresStore` supply the
connection, the transactions, the migrations and the few words that differ (row locks).
"""
from __future__ import annotations

import json
import logging
import time
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any, Iterator, Mapping, Protocol, Sequence

from bot.models import (Call, ChannelStats, Feedback, HomeChart, Image, Inspection, Job, ReviewedCall, TeamExample,
                        Usage)
from bot.store.history import HistoryQueries
from bot.store.notices import NoticeQueries
from bot.store.ops import OpsQueries
from bot.store.plate_batches import PlateBatchQueries
from bot.store.plate_retry import PlateRetryQueries
from bot.store.privacy import PrivacyQueries
from bot.store.provider import ProviderQueries
from bot.store.schema import MIGRATIONS, statements
from bot.store.screens import ScreenQueries

log = logging.getLogger(__name__)

TERMINAL_STATES = ("done", "failed")
STEP_STATES = ("received", "downloaded", "classified", "replied")
# The job queued when the last job of a group ends: a message's images, or a plate inspection's jobs.
FOLLOW_UPS = {"image": "outcome", "plate": "plate_summary", "plate_image": "plate_summary"}
PLATE_KINDS = ("plate", "plate_image")
UPLOAD_KINDS = ("image", "outcome", "plate", "plate_image", "plate_summary", "screen")  # an upload's work, until :eyes: goes
_CLAIMABLE = "state NOT IN ('done', 'failed') AND run_after <= ? AND (lease_until IS NULL OR lease_until < ?)"

Row = Mapping[str, Any]


class Tx(Protocol):
    """One database connection inside a transaction (or a read)."""

    def rows(self, sql: str, *params: Any) -> list[Row]: ...

    def run(self, sql: str, *params: Any) -> int:
        """Execute a statement; the number of rows it changed."""


class Store(PlateRetryQueries, PlateBatchQueries, PrivacyQueries, ScreenQueries, HistoryQueries, ProviderQueries,
            OpsQueries, NoticeQueries, ABC):
    # Added to SELECTs that pick rows to change: PostgreSQL locks them so concurrent processes
    # never take the same job; SQLite has one writer at a time and needs nothing.
    skip_locked = ""
    lock_rows = ""

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Tx]:
        """A write transaction: all of it or nothing."""

    @abstractmethod
    def _reader(self) -> AbstractContextManager[Tx]:
        """A connection for reading."""

    @property
    @abstractmethod
    def schema_version(self) -> int: ...

    @abstractmethod
    def close(self) -> None: ...

    @staticmethod
    def _pending_migrations(version: int, types: Mapping[str, str]) -> list[tuple[int, list[str]]]:
        """(number, statements) of the migrations after `version`; a newer database gets a warning."""
        if version > len(MIGRATIONS):
            log.warning("the database is at schema version %s, newer than this bot knows (%s): it was written "
                        "by a newer version of the bot; upgrade this one", version, len(MIGRATIONS))
        return [(number, statements(migration, types))
                for number, migration in enumerate(MIGRATIONS[version:], start=version + 1)]

    def _rows(self, sql: str, *params: Any) -> list[Row]:
        with self._reader() as db:
            return db.rows(sql, *params)

    # --- images and calls -------------------------------------------------------------------

    def find_call(self, image_sha256: str, fingerprint: str, model: str) -> Call | None:
        """The latest stored call for this image, prompt and model: the cache."""
        rows = self._rows(
            "SELECT * FROM calls WHERE image_sha256 = ? AND fingerprint = ? AND model = ? ORDER BY id DESC LIMIT 1",
            image_sha256, fingerprint, model,
        )
        if not rows:
            return None
        with self._transaction() as db:  # keeps the image's bytes from being pruned while it is in use
            db.run("UPDATE images SET used_at = ? WHERE sha256 = ?", time.time(), image_sha256)
        return _call_from_row(rows[0], from_cache=True)

    def save_image(self, image: Image) -> None:
        with self._transaction() as db:
            _upsert_image(db, image)

    def image(self, sha256: str) -> Image | None:
        rows = self._rows("SELECT * FROM images WHERE sha256 = ?", sha256)
        return _image_from_row(rows[0]) if rows and rows[0]["jpeg"] else None

    def save_call(self, image: Image, call: Call, fingerprint: str) -> Call:
        with self._transaction() as db:
            _upsert_image(db, image)
            (row,) = db.rows(
                "INSERT INTO calls (image_sha256, fingerprint, model, label, confidence, confidence_source,"
                " observations, explanation, input_tokens, cached_tokens, output_tokens, cost_usd, created_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
                image.sha256, fingerprint, call.model, call.label, call.confidence, call.confidence_source,
                call.observations, call.explanation, call.usage.input_tokens, call.usage.cached_tokens,
                call.usage.output_tokens, call.cost_usd, time.time(),
            )
        return replace(call, id=row["id"])

    def call(self, call_id: int) -> Call | None:
        rows = self._rows("SELECT * FROM calls WHERE id = ?", call_id)
        return _call_from_row(rows[0]) if rows else None

    def image_of_call(self, call_id: int) -> Image | None:
        """The call's image, or None once its bytes were pruned."""
        rows = self._rows(
            "SELECT images.* FROM images JOIN calls ON calls.image_sha256 = images.sha256 WHERE calls.id = ?",
            call_id,
        )
        return _image_from_row(rows[0]) if rows and rows[0]["jpeg"] else None

    def record_follow_up(self, job_id: int, model: str, usage: Usage, cost_usd: float | None) -> None:
        """The tokens and estimated cost of a follow-up answer."""
        with self._transaction() as db:
            db.run("INSERT INTO follow_ups (job_id, model, input_tokens, cached_tokens, output_tokens, cost_usd,"
                   " created_at) VALUES (?,?,?,?,?,?,?)", job_id, model, usage.input_tokens, usage.cached_tokens,
                   usage.output_tokens, cost_usd, time.time())

    def spend_since(self, since: float) -> float:
        """The estimated cost of every model call since `since`: classifications and follow-up answers,
        from Slack and from the terminal (calls of models without a price count as 0)."""
        rows = self._rows("SELECT (SELECT COALESCE(SUM(cost_usd), 0) FROM calls WHERE created_at >= ?)"
                          " + (SELECT COALESCE(SUM(cost_usd), 0) FROM follow_ups WHERE created_at >= ?) AS spent",
                          since, since)
        return float(rows[0]["spent"])

    def spend_by_channel_since(self, since: float) -> dict[str, float]:
        """The same per Slack channel: a call counts where it was first asked for (answers from the
        cache elsewhere cost nothing), a follow-up answer where it was asked."""
        rows = self._rows(
            "SELECT jobs.channel, calls.cost_usd AS cost FROM calls"
            " JOIN jobs ON jobs.id = (SELECT MIN(id) FROM jobs WHERE jobs.call_id = calls.id)"
            " WHERE calls.created_at >= ? AND calls.cost_usd IS NOT NULL"
            " UNION ALL SELECT jobs.channel, follow_ups.cost_usd AS cost FROM follow_ups"
            " JOIN jobs ON jobs.id = follow_ups.job_id WHERE follow_ups.created_at >= ? AND follow_ups.cost_usd IS NOT NULL",
            since, since)
        spend: dict[str, float] = {}
        for row in rows:
            spend[row["channel"]] = spend.get(row["channel"], 0.0) + float(row["cost"])
        return spend

    # --- Batch API runs -----------------------------------------------------------------------

    def save_batch(self, batch_id: str, model: str, fingerprint: str, entries: dict[str, Any]) -> None:
        with self._transaction() as db:
            db.run("INSERT INTO batches (id, model, fingerprint, entries, created_at) VALUES (?,?,?,?,?)",
                   batch_id, model, fingerprint, json.dumps(entries), time.time())

    def batch(self, batch_id: str) -> tuple[str, str, dict[str, Any]] | None:
        """(model, fingerprint, entries) of a submitted batch."""
        rows = self._rows("SELECT * FROM batches WHERE id = ?", batch_id)
        return (rows[0]["model"], rows[0]["fingerprint"], json.loads(rows[0]["entries"])) if rows else None

    # --- events and the job queue -----------------------------------------------------------

    def first_sighting(self, event_id: str) -> bool:
        """True the first time an event id is seen (Slack redelivers events it thinks were missed)."""
        with self._transaction() as db:
            return db.run("INSERT INTO seen_events (event_id, seen_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                          event_id, time.time()) == 1

    def enqueue(self, kind: str, channel: str, message_ts: str, thread_ts: str, key: str, name: str, user_id: str,
                payload: Mapping[str, Any], inspection_id: int | None = None, run_after: float = 0.0) -> int | None:
        """A new job (due at `run_after`, default at once), or None if this message already has one under
        `key` (a file id, "question", ...)."""
        now = time.time()
        with self._transaction() as db:
            rows = db.rows(
                "INSERT INTO jobs (kind, channel, message_ts, thread_ts, file_id, file_name, user_id, state, payload,"
                " inspection_id, run_after, created_at, updated_at) VALUES (?,?,?,?,?,?,?, 'received', ?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING RETURNING id",
                kind, channel, message_ts, thread_ts, key, name, user_id, json.dumps(payload), inspection_id, run_after,
                now, now,
            )
        return rows[0]["id"] if rows else None

    def claim(self, owner: str, lease_seconds: float, limit: int) -> list[Job]:
        """Take up to `limit` jobs that are due and not leased (or whose lease ran out), oldest first."""
        now = time.time()
        with self._transaction() as db:
            rows = db.rows(
                "UPDATE jobs SET claimed_by = ?, lease_until = ?, attempts = attempts + 1, updated_at = ?"
                f" WHERE id IN (SELECT id FROM jobs WHERE {_CLAIMABLE} ORDER BY run_after, id LIMIT ?"
                f"{self.skip_locked}) RETURNING *",
                owner, now + lease_seconds, now, now, now, limit,
            )
        return sorted((_job_from_row(row) for row in rows), key=lambda job: job.id)

    def extend_leases(self, owner: str, job_ids: Sequence[int], lease_seconds: float) -> None:
        if not job_ids:
            return
        marks = ",".join("?" * len(job_ids))
        with self._transaction() as db:
            db.run(f"UPDATE jobs SET lease_until = ? WHERE claimed_by = ? AND id IN ({marks})",
                   time.time() + lease_seconds, owner, *job_ids)

    def release(self, owner: str) -> int:
        """Give back every unfinished job this process holds, for another process to take at once."""
        with self._transaction() as db:
            return db.run("UPDATE jobs SET claimed_by = NULL, lease_until = NULL"
                          " WHERE claimed_by = ? AND state NOT IN ('done', 'failed')", owner)

    def retry_later(self, job_id: int, delay: float, error: str) -> None:
        """Put a job back in the queue, due after `delay` seconds."""
        with self._transaction() as db:
            db.run("UPDATE jobs SET claimed_by = NULL, lease_until = NULL, run_after = ?, error = ?, updated_at = ?"
                   " WHERE id = ?", time.time() + delay, error, time.time(), job_id)

    def update_job(self, job_id: int, state: str, **fields: Any) -> None:
        """Record a step: move a job to `state`, setting any of file_name, error, call_id, reply_ts."""
        if state not in STEP_STATES or not set(fields) <= {"file_name", "error", "call_id", "reply_ts"}:
            raise ValueError(f"bad job update: {state} {fields}")
        assignments = "".join(f", {name} = ?" for name in fields)
        with self._transaction() as db:
            db.run(f"UPDATE jobs SET state = ?, updated_at = ?{assignments} WHERE id = ?",
                   state, time.time(), *fields.values(), job_id)

    def finish_job(self, job_id: int, state: str | None, error: str | None = None) -> None:
        """End a job: `done`, `failed`, or None to forget it (a file that was no image after all).

        When it is the last open job of its group (a message's images, or a plate inspection's plate
        and image jobs), the group's follow-up (FOLLOW_UPS) is queued in the same transaction, so the
        outcome reaction or the plate's summary can never be forgotten.
        """
        if state is not None and state not in TERMINAL_STATES:
            raise ValueError(f"not a final state: {state}")
        now = time.time()
        with self._transaction() as db:
            (job,) = db.rows("SELECT * FROM jobs WHERE id = ?", job_id)
            follow_up, group = FOLLOW_UPS.get(job["kind"]), job["inspection_id"]
            if follow_up == "outcome":
                siblings = db.rows(f"SELECT id, state FROM jobs WHERE channel = ? AND message_ts = ? AND kind = 'image'"
                                   f" ORDER BY id{self.lock_rows}", job["channel"], job["message_ts"])
            elif follow_up and group is not None:
                siblings = db.rows(f"SELECT id, state FROM jobs WHERE inspection_id = ? AND kind IN {PLATE_KINDS}"
                                   f" ORDER BY id{self.lock_rows}", group)
            else:
                follow_up, siblings = None, []
            if state is None:
                db.run("DELETE FROM jobs WHERE id = ?", job_id)
            else:
                db.run("UPDATE jobs SET state = ?, error = ?, claimed_by = NULL, lease_until = NULL, updated_at = ?,"
                       " waiting = NULL, waiting_since = NULL WHERE id = ?", state, error, now, job_id)
            others_open = any(row["state"] not in TERMINAL_STATES for row in siblings if row["id"] != job_id)
            if follow_up and not others_open:
                key = follow_up if group is None else f"{follow_up}:{group}"
                db.run("INSERT INTO jobs (kind, channel, message_ts, thread_ts, file_id, file_name, user_id, state,"
                       " inspection_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, '', 'received', ?, ?, ?)"
                       " ON CONFLICT (channel, message_ts, file_id) DO UPDATE SET state = 'received', attempts = 0,"
                       " run_after = 0, error = NULL, claimed_by = NULL, lease_until = NULL,"
                       " updated_at = excluded.updated_at, payload = '{\"again\": true}'",
                       follow_up, job["channel"], job["message_ts"], job["thread_ts"], key, follow_up, group, now, now)

    def requeue(self, job_id: int, channel: str) -> bool:
        """Queue a failed job of `channel` again (the Retry button); False if there is no such job."""
        with self._transaction() as db:
            return db.run(
                "UPDATE jobs SET state = CASE WHEN call_id IS NULL THEN 'received' ELSE 'classified' END,"
                " attempts = 0, run_after = 0, error = NULL, claimed_by = NULL, lease_until = NULL, updated_at = ?,"
                " waiting = NULL, waiting_since = NULL WHERE id = ? AND channel = ? AND state = 'failed'", time.time(), job_id, channel) == 1

    def job(self, job_id: int) -> Job | None:
        rows = self._rows("SELECT * FROM jobs WHERE id = ?", job_id)
        return _job_from_row(rows[0]) if rows else None

    def jobs_of_message(self, channel: str, message_ts: str) -> list[Job]:
        rows = self._rows("SELECT * FROM jobs WHERE channel = ? AND message_ts = ? AND kind = 'image' ORDER BY id",
                          channel, message_ts)
        return [_job_from_row(row) for row in rows]

    def upload_work_open(self, channel: str, message_ts: str) -> bool:
        """Whether any of an upload's images, plates or their follow-ups is not finished yet."""
        rows = self._rows("SELECT 1 AS x FROM jobs WHERE channel = ? AND message_ts = ?"
                          f" AND kind IN {UPLOAD_KINDS} AND state NOT IN {TERMINAL_STATES} LIMIT 1",
                          channel, message_ts)
        return bool(rows)

    def thread_jobs(self, channel: str, thread_ts: str) -> list[Job]:
        """The classified images the bot answered in this thread (loose images and a plate's)."""
        rows = self._rows("SELECT * FROM jobs WHERE channel = ? AND thread_ts = ? AND kind IN ('image', 'plate_image')"
                          " AND call_id IS NOT NULL ORDER BY id", channel, thread_ts)
        return [_job_from_row(row) for row in rows]

    @staticmethod
    def hit_key(image_job: Job) -> str:
        """The key of the job that shares an image's call in the hits channel (one per image)."""
        return f"hit:{image_job.file_id}"

    def hit_of(self, image_job: Job) -> Job | None:
        """The job that shared an image's call in the hits channel, if there is one."""
        rows = self._rows("SELECT * FROM jobs WHERE channel = ? AND message_ts = ? AND file_id = ? AND kind = 'hit'",
                          image_job.channel, image_job.message_ts, self.hit_key(image_job))
        return _job_from_row(rows[0]) if rows else None

    def plate_hits_of(self, inspection_id: int) -> Job | None:
        """The job that shared a plate inspection's hits in the hits channel, if there is one."""
        rows = self._rows("SELECT * FROM jobs WHERE inspection_id = ? AND kind = 'plate_hits'", inspection_id)
        return _job_from_row(rows[0]) if rows else None

    def recent_jobs(self, channel: str | None, limit: int) -> list[Job]:
        """The latest image jobs of a channel; of every channel (answered ones only) for None."""
        where = "channel = ?" if channel is not None else "call_id IS NOT NULL AND state = 'done'"
        rows = self._rows(f"SELECT * FROM jobs WHERE {where} AND kind = 'image' ORDER BY id DESC LIMIT ?",
                          *(() if channel is None else (channel,)), limit)
        return [_job_from_row(row) for row in rows]

    def labelled_calls_since(self, since: float) -> list[tuple[float, str]]:
        """(when it was asked for, label) of every image answered in Slack since `since`, loose or a plate's."""
        rows = self._rows("SELECT jobs.created_at, calls.label FROM jobs JOIN calls ON calls.id = jobs.call_id"
                          " WHERE jobs.kind IN ('image', 'plate_image') AND jobs.created_at >= ?", since)
        return [(float(row["created_at"]), row["label"]) for row in rows]

    def open_jobs(self) -> int:
        """How many jobs are not finished yet (queued, running or waiting for a retry)."""
        return self._rows("SELECT COUNT(*) AS n FROM jobs WHERE state NOT IN ('done', 'failed')")[0]["n"]

    # --- plate inspections ----------------------------------------------------------------------

    def start_inspection(self, job: Job, plate: str, source: str, images: int, skipped: Mapping[str, int]) -> Inspection:
        """Record the inspection a plate job reads (once: a plate job that runs again gets the same one)
        and tie the job to it."""
        now = time.time()
        with self._transaction() as db:
            db.run("INSERT INTO inspections (channel, plate, plate_name, message_ts, thread_ts, source_key, source,"
                   " user_id, images, skipped, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                   job.channel, plate.casefold(), plate, job.message_ts, job.thread_ts, job.file_id, source,
                   job.user_id, images, json.dumps(dict(skipped)), now)
            (row,) = db.rows("SELECT * FROM inspections WHERE channel = ? AND message_ts = ? AND source_key = ?",
                             job.channel, job.message_ts, job.file_id)
            db.run("UPDATE jobs SET inspection_id = ? WHERE id = ?", row["id"], job.id)
        return _inspection_from_row(row)

    def inspection(self, inspection_id: int) -> Inspection | None:
        rows = self._rows("SELECT * FROM inspections WHERE id = ?", inspection_id)
        return _inspection_from_row(rows[0]) if rows else None

    def update_inspection(self, inspection_id: int, **fields: Any) -> None:
        """Set any of progress_ts, map_file_id (kept in the `uploaded` column: the map and the CSV are in
        the thread), finished_at."""
        if not fields or not set(fields) <= {"progress_ts", "map_file_id", "finished_at"}:
            raise ValueError(f"bad inspection update: {fields}")
        assignments = ", ".join(f"{'uploaded' if name == 'map_file_id' else name} = ?" for name in fields)
        with self._transaction() as db:
            db.run(f"UPDATE inspections SET {assignments} WHERE id = ?", *fields.values(), inspection_id)

    def progress_due(self, inspection_id: int, every: float) -> bool:
        """True at most once per `every` seconds per inspection, across threads and processes: whoever
        gets True updates the progress message (Slack allows about one message a second per channel)."""
        now = time.time()
        with self._transaction() as db:
            return db.run("UPDATE inspections SET progress_at = ? WHERE id = ? AND progress_at <= ?",
                          now, inspection_id, now - every) == 1

    def inspection_jobs(self, inspection_id: int) -> list[Job]:
        """The inspection's image jobs, in the order they were read."""
        rows = self._rows("SELECT * FROM jobs WHERE inspection_id = ? AND kind = 'plate_image' ORDER BY id",
                          inspection_id)
        return [_job_from_row(row) for row in rows]

    def inspection_outcomes(self, inspection_id: int) -> tuple[int, int, int]:
        """(classified, could not be read, not classified) of the inspection's images ended so far: a failed
        image whose payload names an error could not be read, any other failed one lacks its model call."""
        (row,) = self._rows("SELECT COUNT(*) AS n FROM jobs WHERE inspection_id = ? AND kind = 'plate_image'"
                            " AND state = 'done'", inspection_id)
        failed = self._rows("SELECT payload FROM jobs WHERE inspection_id = ? AND kind = 'plate_image'"
                            " AND state = 'failed'", inspection_id)
        unreadable = sum(1 for failure in failed if "error" in json.loads(failure["payload"]))
        return row["n"], unreadable, len(failed) - unreadable

    def previous_inspection(self, inspection: Inspection) -> Inspection | None:
        """The channel's last finished inspection of the same plate before this one."""
        rows = self._rows("SELECT * FROM inspections WHERE channel = ? AND plate = ? AND id < ?"
                          " AND finished_at IS NOT NULL ORDER BY id DESC LIMIT 1",
                          inspection.channel, inspection.plate, inspection.id)
        return _inspection_from_row(rows[0]) if rows else None

    def thread_inspection(self, channel: str, thread_ts: str) -> Inspection | None:
        """The latest plate inspection answered in this thread."""
        rows = self._rows("SELECT * FROM inspections WHERE channel = ? AND thread_ts = ? ORDER BY id DESC LIMIT 1",
                          channel, thread_ts)
        return _inspection_from_row(rows[0]) if rows else None

    def inspection_labels(self, inspection_id: int) -> dict[str, int]:
        """Calls per category of an inspection's images."""
        rows = self._rows("SELECT calls.label, COUNT(*) AS n FROM jobs JOIN calls ON calls.id = jobs.call_id"
                          " WHERE jobs.inspection_id = ? AND jobs.kind = 'plate_image' GROUP BY calls.label",
                          inspection_id)
        return {row["label"]: row["n"] for row in rows}

    def recent_inspections(self, channel: str | None, limit: int) -> list[Inspection]:
        """The latest plate inspections of a channel, or of every channel for None."""
        where = "WHERE channel = ? " if channel is not None else ""
        rows = self._rows(f"SELECT * FROM inspections {where}ORDER BY id DESC LIMIT ?",
                          *(() if channel is None else (channel,)), limit)
        return [_inspection_from_row(row) for row in rows]

    # --- feedback ------------------------------------------------------------------------------

    def add_feedback(self, job_id: int, user_id: str, verdict: str, label: str, request_id: int | None = None) -> None:
        """Store a verdict; a `request_id` (the click's job) already stored is not stored twice."""
        with self._transaction() as db:
            db.run("INSERT INTO feedback (job_id, user_id, verdict, label, created_at, request_id)"
                   " VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                   job_id, user_id, verdict, label, time.time(), request_id)

    def latest_feedback(self, job_id: int) -> Feedback | None:
        rows = self._rows("SELECT * FROM feedback WHERE job_id = ? ORDER BY id DESC LIMIT 1", job_id)
        return Feedback(rows[0]["user_id"], rows[0]["verdict"], rows[0]["label"]) if rows else None

    def channel_stats(self, channel: str) -> ChannelStats:
        """Calls per label and the team's latest verdict per call, for one channel."""
        by_label = self._rows(
            "SELECT calls.label, COUNT(*) AS n FROM jobs JOIN calls ON calls.id = jobs.call_id"
            " WHERE jobs.channel = ? AND jobs.kind IN ('image', 'plate_image') GROUP BY calls.label", channel)
        failed = self._rows("SELECT COUNT(*) AS n FROM jobs WHERE channel = ? AND kind IN ('image', 'plate_image')"
                            " AND state = 'failed'", channel)
        verdicts = self._rows(
            "SELECT feedback.verdict, COUNT(*) AS n FROM feedback JOIN jobs ON jobs.id = feedback.job_id"
            " WHERE jobs.channel = ? AND feedback.id IN (SELECT MAX(id) FROM feedback GROUP BY job_id)"
            " GROUP BY feedback.verdict", channel)
        counts = {row["verdict"]: row["n"] for row in verdicts}
        return ChannelStats(
            calls_by_label={row["label"]: row["n"] for row in by_label},
            failed=failed[0]["n"],
            confirmed=counts.get("confirmed", 0),
            corrected=counts.get("corrected", 0),
        )

    def reviewed_calls(self, channel: str | None = None) -> list[ReviewedCall]:
        """Every call the team gave a verdict on, with its latest verdict, in one channel or in all;
        oldest first."""
        where = " AND jobs.channel = ?" if channel is not None else ""
        rows = self._rows(
            "SELECT calls.*, jobs.id AS job_id, jobs.file_name, jobs.channel, feedback.user_id AS verdict_user,"
            " feedback.verdict, feedback.label AS verdict_label"
            " FROM feedback JOIN jobs ON jobs.id = feedback.job_id JOIN calls ON calls.id = jobs.call_id"
            f" WHERE feedback.id IN (SELECT MAX(id) FROM feedback GROUP BY job_id){where} ORDER BY jobs.id",
            *(() if channel is None else (channel,)))
        return [ReviewedCall(row["job_id"], row["file_name"], row["channel"], _call_from_row(row),
                             Feedback(row["verdict_user"], row["verdict"], row["verdict_label"])) for row in rows]

    def export_pages(self, channel: str, start: float | None, end: float | None,
                     page: int = 500) -> Iterator[list[dict[str, Any]]]:
        """A channel's calls recorded in [start, end), oldest first, a page at a time (never all in memory):
        the job (id, message_ts, thread_ts, reply_ts, user_id, file_name), the call (label, confidence,
        explanation), the team's latest verdict (verdict, verdict_label, verdict_user; None if none) and,
        for a plate's image, its inspection_id, plate, well and drop (None for a loose image)."""
        after = 0
        while rows := self._export_page(channel, start, end, after, page):
            yield rows
            after = rows[-1]["id"]

    def _export_page(self, channel: str, start: float | None, end: float | None, after_id: int,
                     limit: int) -> list[dict[str, Any]]:
        rows = self._rows(
            "SELECT jobs.id, jobs.message_ts, jobs.thread_ts, jobs.reply_ts, jobs.user_id, jobs.file_name,"
            " jobs.payload, jobs.inspection_id, inspections.plate_name AS plate,"
            " calls.label, calls.confidence, calls.explanation, feedback.verdict,"
            " feedback.label AS verdict_label, feedback.user_id AS verdict_user"
            " FROM jobs JOIN calls ON calls.id = jobs.call_id"
            " LEFT JOIN inspections ON inspections.id = jobs.inspection_id"
            " LEFT JOIN feedback ON feedback.id = (SELECT MAX(id) FROM feedback WHERE feedback.job_id = jobs.id)"
            " WHERE jobs.channel = ? AND jobs.kind IN ('image', 'plate_image') AND jobs.id > ? AND jobs.created_at >= ?"
            " AND jobs.created_at < ? ORDER BY jobs.id LIMIT ?",
            channel, after_id, start if start is not None else float("-inf"),
            end if end is not None else float("inf"), limit)
        return [_export_record(row) for row in rows]

    # --- the team's few-shot examples ------------------------------------------------------------

    def add_example(self, image: Image, label: str, explanation: str, job: Job, link: str, user_id: str) -> int | None:
        """Keep an image as a few-shot example; None if it is an example already (it is not added twice)."""
        with self._transaction() as db:
            rows = db.rows(
                "INSERT INTO examples (image_sha256, name, jpeg, width, height, source_format, label, explanation,"
                " job_id, channel, link, added_by, added_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT DO NOTHING RETURNING id",
                image.sha256, image.name, image.jpeg, image.width, image.height, image.source_format, label,
                explanation, job.id, job.channel, link, user_id, time.time())
        return rows[0]["id"] if rows else None

    def example_of_image(self, sha256: str) -> TeamExample | None:
        """The example in use that shows this image, if there is one."""
        rows = self._rows(f"SELECT {_EXAMPLE_COLUMNS} FROM examples WHERE image_sha256 = ? AND removed_at IS NULL",
                          sha256)
        return _example_from_row(rows[0]) if rows else None

    def team_examples(self) -> list[TeamExample]:
        """Every example the team added and has not removed, newest first (without the image bytes)."""
        rows = self._rows(f"SELECT {_EXAMPLE_COLUMNS} FROM examples WHERE removed_at IS NULL ORDER BY id DESC")
        return [_example_from_row(row) for row in rows]

    def example_images(self, example_ids: Sequence[int]) -> dict[int, Image]:
        """The images of these examples, by example id."""
        if not example_ids:
            return {}
        marks = ",".join("?" * len(example_ids))
        rows = self._rows(f"SELECT id, image_sha256 AS sha256, name, jpeg, width, height, source_format FROM examples"
                          f" WHERE id IN ({marks})", *example_ids)
        return {row["id"]: _image_from_row(row) for row in rows}

    def remove_example(self, example_id: int, user_id: str) -> TeamExample | None:
        """Stop using an example (it is kept, marked removed); None if there is no such example in use."""
        with self._transaction() as db:
            rows = db.rows(f"UPDATE examples SET removed_by = ?, removed_at = ? WHERE id = ? AND removed_at IS NULL"
                           f" RETURNING {_EXAMPLE_COLUMNS}", user_id, time.time(), example_id)
        return _example_from_row(rows[0]) if rows else None

    # --- the Home tab ------------------------------------------------------------------------------

    def home_chart(self, user_id: str) -> HomeChart | None:
        """The chart last shared with this person, if any."""
        rows = self._rows("SELECT png_sha256, file_id, updated_at FROM home_charts WHERE user_id = ?", user_id)
        return HomeChart(rows[0]["png_sha256"], rows[0]["file_id"], rows[0]["updated_at"]) if rows else None

    def save_home_chart(self, user_id: str, chart: HomeChart) -> None:
        with self._transaction() as db:
            db.run("INSERT INTO home_charts (user_id, png_sha256, file_id, updated_at) VALUES (?,?,?,?)"
                   " ON CONFLICT (user_id) DO UPDATE SET png_sha256 = excluded.png_sha256,"
                   " file_id = excluded.file_id, updated_at = excluded.updated_at",
                   user_id, chart.png_sha256, chart.file_id, chart.drawn_at)

    def forget_home_chart(self, user_id: str) -> None:
        with self._transaction() as db:
            db.run("DELETE FROM home_charts WHERE user_id = ?", user_id)

    # --- upkeep and moving data ---------------------------------------------------------------

    def prune(self, events_before: float, images_before: float) -> tuple[int, int]:
        """Forget event ids seen before `events_before` and the bytes of images last used before
        `images_before` (their calls and feedback stay). Returns (events, images) pruned."""
        with self._transaction() as db:
            events = db.run("DELETE FROM seen_events WHERE seen_at < ?", events_before)
            images = db.run("UPDATE images SET jpeg = ? WHERE used_at < ? AND length(jpeg) > 0", b"", images_before)
        return events, images

    def dump(self, table: str, page: int = 200) -> Iterator[list[dict[str, Any]]]:
        """A table's rows in key order, a page at a time (never the whole table in memory)."""
        key = "sha256" if table == "images" else "event_id" if table == "seen_events" else "id"
        last: Any = None
        while True:
            where = "" if last is None else f" WHERE {key} > ?"
            rows = self._rows(f"SELECT * FROM {table}{where} ORDER BY {key} LIMIT ?", *(() if last is None else (last,)), page)
            if not rows:
                return
            yield [dict(row) for row in rows]
            last = rows[-1][key]

    def load(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert rows as they are, ids included (copy-db)."""
        columns = list(rows[0])
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        with self._transaction() as db:
            for row in rows:
                db.run(sql, *(row[column] for column in columns))

    def is_empty(self) -> bool:
        return not any(self._rows(f"SELECT 1 AS x FROM {table} LIMIT 1") for table in ("images", "jobs"))

    def after_load(self) -> None:
        """Make the database's id counters continue after loaded rows (PostgreSQL needs it)."""


_EXAMPLE_COLUMNS = "id, label, explanation, name, channel, link, added_by, added_at"


def _export_record(row: Row) -> dict[str, Any]:
    """An export row with a plate image's well and drop taken out of its job's payload."""
    record = {name: value for name, value in dict(row).items() if name != "payload"}
    payload = json.loads(row["payload"]) if row["inspection_id"] is not None else {}
    return {**record, "well": payload.get("well"), "drop": payload.get("drop")}


def _example_from_row(row: Row) -> TeamExample:
    return TeamExample(row["id"], row["label"], row["explanation"], row["name"], row["channel"], row["link"],
                       row["added_by"], float(row["added_at"]))


def _upsert_image(db: Tx, image: Image) -> None:
    db.run(
        "INSERT INTO images (sha256, name, jpeg, width, height, source_format, used_at) VALUES (?,?,?,?,?,?,?)"
        " ON CONFLICT (sha256) DO UPDATE SET jpeg = excluded.jpeg, used_at = excluded.used_at",
        image.sha256, image.name, image.jpeg, image.width, image.height, image.source_format, time.time(),
    )


def _image_from_row(row: Row) -> Image:
    return Image(row["name"], row["sha256"], bytes(row["jpeg"]), row["width"], row["height"], row["source_format"])


def _call_from_row(row: Row, *, from_cache: bool = False) -> Call:
    return Call(
        label=row["label"], confidence=row["confidence"], confidence_source=row["confidence_source"],
        observations=row["observations"], explanation=row["explanation"], model=row["model"],
        usage=Usage(row["input_tokens"], row["cached_tokens"], row["output_tokens"]),
        cost_usd=row["cost_usd"], id=row["id"], from_cache=from_cache,
    )


def _inspection_from_row(row: Row) -> Inspection:
    """`uploaded` holds the plate map's file id; "1" (from before the ids were kept) or "" for none."""
    special = {"skipped", "uploaded", "map_file_id"}
    fields = {name: row[name] for name in Inspection.__dataclass_fields__ if name not in special}
    return Inspection(**fields, skipped=json.loads(row["skipped"]), uploaded=bool(row["uploaded"]),
                      map_file_id=row["uploaded"] if row["uploaded"] not in {"", "1"} else None)


def _job_from_row(row: Row) -> Job:
    fields = {name: row[name] for name in Job.__dataclass_fields__ if name != "payload"}
    return Job(**fields, payload=json.loads(row["payload"]))
