"""The database: images, calls (the cache), batches, Slack jobs, and feedback, in one SQLite file.

The schema is created on first use and versioned with `PRAGMA user_version`: to change it, append
a migration to MIGRATIONS (never edit one that has shipped). One connection is shared by the
bot's threads behind a lock; SQLite's own locking keeps several processes consistent.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import replace
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Iterator

from bot.models import Call, ChannelStats, Feedback, Image, Job, Usage

MIGRATIONS: list[str] = [
    # 1: the classifier's cache and records
    """
    CREATE TABLE images (
        sha256 TEXT PRIMARY KEY, name TEXT NOT NULL, jpeg BLOB NOT NULL,
        width INTEGER NOT NULL, height INTEGER NOT NULL, source_format TEXT NOT NULL
    );
    CREATE TABLE calls (
        id INTEGER PRIMARY KEY, image_sha256 TEXT NOT NULL REFERENCES images(sha256),
        fingerprint TEXT NOT NULL, model TEXT NOT NULL, label TEXT NOT NULL,
        confidence REAL, confidence_source TEXT NOT NULL, observations TEXT NOT NULL,
        explanation TEXT NOT NULL, input_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL, cost_usd REAL, created_at REAL NOT NULL
    );
    CREATE INDEX calls_by_key ON calls (image_sha256, fingerprint, model);
    CREATE TABLE batches (
        id TEXT PRIMARY KEY, model TEXT NOT NULL, fingerprint TEXT NOT NULL,
        entries TEXT NOT NULL, created_at REAL NOT NULL
    );
    """,
    # 2: Slack jobs (one per accepted image), de-duplicated events, feedback on calls
    """
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY, channel TEXT NOT NULL, message_ts TEXT NOT NULL, thread_ts TEXT NOT NULL,
        file_id TEXT NOT NULL, file_name TEXT NOT NULL, user_id TEXT NOT NULL,
        state TEXT NOT NULL, error TEXT, call_id INTEGER REFERENCES calls(id), reply_ts TEXT,
        created_at REAL NOT NULL, updated_at REAL NOT NULL,
        UNIQUE (channel, message_ts, file_id)
    );
    CREATE INDEX jobs_by_thread ON jobs (channel, thread_ts);
    CREATE TABLE seen_events (event_id TEXT PRIMARY KEY, seen_at REAL NOT NULL);
    CREATE TABLE feedback (
        id INTEGER PRIMARY KEY, job_id INTEGER NOT NULL REFERENCES jobs(id), user_id TEXT NOT NULL,
        verdict TEXT NOT NULL, label TEXT NOT NULL, created_at REAL NOT NULL
    );
    """,
]

JOB_STATES = ("received", "downloaded", "classified", "replied", "failed")


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")  # WAL's recommended pairing: no fsync on every commit
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _migrate(self) -> None:
        with self._transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in filter(str.strip, script.split(";")):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")

    @property
    def schema_version(self) -> int:
        with self._lock:
            return self._conn.execute("PRAGMA user_version").fetchone()[0]

    def _query(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    # --- images and calls -------------------------------------------------------------------

    def find_call(self, image_sha256: str, fingerprint: str, model: str) -> Call | None:
        """The latest stored call for this image, prompt and model: the cache."""
        rows = self._query(
            "SELECT * FROM calls WHERE image_sha256 = ? AND fingerprint = ? AND model = ? ORDER BY id DESC LIMIT 1",
            image_sha256, fingerprint, model,
        )
        return _call_from_row(rows[0], from_cache=True) if rows else None

    def save_image(self, image: Image) -> None:
        with self._transaction() as db:
            _insert_image(db, image)

    def image(self, sha256: str) -> Image | None:
        rows = self._query("SELECT * FROM images WHERE sha256 = ?", sha256)
        return _image_from_row(rows[0]) if rows else None

    def save_call(self, image: Image, call: Call, fingerprint: str) -> Call:
        with self._transaction() as db:
            _insert_image(db, image)
            cursor = db.execute(
                "INSERT INTO calls (image_sha256, fingerprint, model, label, confidence, confidence_source,"
                " observations, explanation, input_tokens, cached_tokens, output_tokens, cost_usd, created_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (image.sha256, fingerprint, call.model, call.label, call.confidence, call.confidence_source,
                 call.observations, call.explanation, call.usage.input_tokens, call.usage.cached_tokens,
                 call.usage.output_tokens, call.cost_usd, time.time()),
            )
        return replace(call, id=cursor.lastrowid)

    def call(self, call_id: int) -> Call | None:
        rows = self._query("SELECT * FROM calls WHERE id = ?", call_id)
        return _call_from_row(rows[0]) if rows else None

    def image_of_call(self, call_id: int) -> Image | None:
        rows = self._query(
            "SELECT images.* FROM images JOIN calls ON calls.image_sha256 = images.sha256 WHERE calls.id = ?",
            call_id,
        )
        return _image_from_row(rows[0]) if rows else None

    # --- Batch API runs -----------------------------------------------------------------------

    def save_batch(self, batch_id: str, model: str, fingerprint: str, entries: dict[str, Any]) -> None:
        with self._transaction() as db:
            db.execute("INSERT INTO batches (id, model, fingerprint, entries, created_at) VALUES (?,?,?,?,?)",
                       (batch_id, model, fingerprint, json.dumps(entries), time.time()))

    def batch(self, batch_id: str) -> tuple[str, str, dict[str, Any]] | None:
        """(model, fingerprint, entries) of a submitted batch."""
        rows = self._query("SELECT * FROM batches WHERE id = ?", batch_id)
        return (rows[0]["model"], rows[0]["fingerprint"], json.loads(rows[0]["entries"])) if rows else None

    # --- Slack jobs ------------------------------------------------------------------------------

    def first_sighting(self, event_id: str) -> bool:
        """True the first time an event id is seen (Slack redelivers events it thinks were missed)."""
        with self._transaction() as db:
            cursor = db.execute("INSERT OR IGNORE INTO seen_events (event_id, seen_at) VALUES (?, ?)",
                                (event_id, time.time()))
        return cursor.rowcount == 1

    def create_job(self, channel: str, message_ts: str, thread_ts: str, file_id: str, file_name: str,
                   user_id: str) -> int | None:
        """A new job in state "received", or None if this file of this message already has one."""
        now = time.time()
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO jobs (channel, message_ts, thread_ts, file_id, file_name, user_id, state,"
                " created_at, updated_at) VALUES (?,?,?,?,?,?, 'received', ?, ?)",
                (channel, message_ts, thread_ts, file_id, file_name, user_id, now, now),
            )
        return cursor.lastrowid if cursor.rowcount == 1 else None

    def discard_job(self, job_id: int) -> None:
        """Forget a job whose file turned out not to be an image (Slack had not finished scanning it)."""
        with self._transaction() as db:
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def update_job(self, job_id: int, state: str, **fields: Any) -> None:
        """Move a job to `state`, setting any of: file_name, error, call_id, reply_ts."""
        if state not in JOB_STATES or not set(fields) <= {"file_name", "error", "call_id", "reply_ts"}:
            raise ValueError(f"bad job update: {state} {fields}")
        assignments = "".join(f", {name} = ?" for name in fields)
        with self._transaction() as db:
            db.execute(f"UPDATE jobs SET state = ?, updated_at = ?{assignments} WHERE id = ?",
                       (state, time.time(), *fields.values(), job_id))

    def job(self, job_id: int) -> Job | None:
        rows = self._query("SELECT * FROM jobs WHERE id = ?", job_id)
        return _job_from_row(rows[0]) if rows else None

    def jobs_of_message(self, channel: str, message_ts: str) -> list[Job]:
        rows = self._query("SELECT * FROM jobs WHERE channel = ? AND message_ts = ? ORDER BY id", channel, message_ts)
        return [_job_from_row(row) for row in rows]

    def thread_jobs(self, channel: str, thread_ts: str) -> list[Job]:
        """The classified images the bot answered in this thread."""
        rows = self._query("SELECT * FROM jobs WHERE channel = ? AND thread_ts = ? AND call_id IS NOT NULL"
                           " ORDER BY id", channel, thread_ts)
        return [_job_from_row(row) for row in rows]

    def recent_jobs(self, channel: str, limit: int) -> list[Job]:
        rows = self._query("SELECT * FROM jobs WHERE channel = ? ORDER BY id DESC LIMIT ?", channel, limit)
        return [_job_from_row(row) for row in rows]

    # --- feedback ------------------------------------------------------------------------------

    def add_feedback(self, job_id: int, user_id: str, verdict: str, label: str) -> None:
        with self._transaction() as db:
            db.execute("INSERT INTO feedback (job_id, user_id, verdict, label, created_at) VALUES (?,?,?,?,?)",
                       (job_id, user_id, verdict, label, time.time()))

    def latest_feedback(self, job_id: int) -> Feedback | None:
        rows = self._query("SELECT * FROM feedback WHERE job_id = ? ORDER BY id DESC LIMIT 1", job_id)
        return Feedback(rows[0]["user_id"], rows[0]["verdict"], rows[0]["label"]) if rows else None

    def channel_stats(self, channel: str) -> ChannelStats:
        """Calls per label and the team's latest verdict per call, for one channel."""
        by_label = self._query(
            "SELECT calls.label, COUNT(*) AS n FROM jobs JOIN calls ON calls.id = jobs.call_id"
            " WHERE jobs.channel = ? GROUP BY calls.label", channel)
        failed = self._query("SELECT COUNT(*) FROM jobs WHERE channel = ? AND state = 'failed'", channel)
        verdicts = self._query(
            "SELECT feedback.verdict, COUNT(*) AS n FROM feedback JOIN jobs ON jobs.id = feedback.job_id"
            " WHERE jobs.channel = ? AND feedback.id IN (SELECT MAX(id) FROM feedback GROUP BY job_id)"
            " GROUP BY feedback.verdict", channel)
        counts = {row["verdict"]: row["n"] for row in verdicts}
        return ChannelStats(
            calls_by_label={row["label"]: row["n"] for row in by_label},
            failed=failed[0][0],
            confirmed=counts.get("confirmed", 0),
            corrected=counts.get("corrected", 0),
        )


def _insert_image(db: sqlite3.Connection, image: Image) -> None:
    db.execute(
        "INSERT OR IGNORE INTO images (sha256, name, jpeg, width, height, source_format) VALUES (?,?,?,?,?,?)",
        (image.sha256, image.name, image.jpeg, image.width, image.height, image.source_format),
    )


def _image_from_row(row: sqlite3.Row) -> Image:
    return Image(row["name"], row["sha256"], row["jpeg"], row["width"], row["height"], row["source_format"])


def _call_from_row(row: sqlite3.Row, *, from_cache: bool = False) -> Call:
    return Call(
        label=row["label"], confidence=row["confidence"], confidence_source=row["confidence_source"],
        observations=row["observations"], explanation=row["explanation"], model=row["model"],
        usage=Usage(row["input_tokens"], row["cached_tokens"], row["output_tokens"]),
        cost_usd=row["cost_usd"], id=row["id"], from_cache=from_cache,
    )


def _job_from_row(row: sqlite3.Row) -> Job:
    return Job(**{name: row[name] for name in Job.__dataclass_fields__})
