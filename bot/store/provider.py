"""The model service's shared state, and the jobs that wait for it: a mixin of Store.

The service (bot/provider.py decides with bot/service_state.py):
- `model_service(service, label)`: a transaction with the service's row locked (PostgreSQL: FOR
  UPDATE; SQLite has one writer at a time), yielding a `ServiceRecord`: its state as JSON (change
  `state_json`, it is written back at the end), the times reserved ahead for requests that went
  back to the queue ("tickets", by request key, each with its priority: `bulk_queued` and
  `shift_tickets(bulk_after=)` let an interactive request go ahead of the bulk ones), and the counters to add to.
- `model_services()`: every service's row with its counters, for snapshots (bot.provider.snapshots).

The queue's side (bot/queue.py's Wait):
- `wait_job`: the job back in the queue, due after `delay`, `waiting` = why ("rate_limit",
  "outage"), `waiting_since` kept while it waits for the same thing; the claim's attempt given back.
- `wake_waiting(reason)`: every job waiting for that is due now (the service is back).
- `keep_image(job_id, image)`: a waiting image job keeps its normalised image (payload `kept_sha256`).
- `provider_waits(channel=, message_ts=)` or `(inspection_id=)`: how many of an upload's or a plate's
  images wait, for what, since when and until when at the latest (a `Waiting` per reason). A job
  stays marked until it ends; the count leaves out those whose call is made. A job waiting a few
  seconds in its worker for its turn (MODEL_WAIT_IN_WORKER_SECONDS) is running, not marked.
"""
from __future__ import annotations

import json
import time
from contextlib import contextmanager
from typing import Any, Iterator, NamedTuple

from bot.models import Image, Waiting
from bot.ratelimit import Priority, Queued
from bot.service_state import Count


# a bulk ticket after `?` and after every interactive ticket: what an interactive request may go ahead of
_BULK_QUEUED = (f"service = ? AND priority = '{Priority.BULK.value}' AND go_at > ? AND go_at > (SELECT"
                f" COALESCE(MAX(go_at), 0) FROM model_tickets AS ahead WHERE ahead.service = model_tickets.service"
                f" AND ahead.priority = '{Priority.INTERACTIVE.value}')")


class ServiceRecord:
    """One model service's row inside a transaction that holds its lock."""

    def __init__(self, db: Any, service: str, state_json: str) -> None:
        self._db = db
        self.service = service
        self.state_json = state_json

    def ticket(self, request_key: str) -> tuple[float, float] | None:
        """(when it may go, its cost) reserved for this request, if any."""
        rows = self._db.rows("SELECT go_at, cost FROM model_tickets WHERE service = ? AND request_key = ?",
                             self.service, request_key)
        return (float(rows[0]["go_at"]), float(rows[0]["cost"])) if rows else None

    def add_ticket(self, request_key: str, go_at: float, cost: float, expires_at: float, priority: Priority) -> None:
        self._db.run("INSERT INTO model_tickets (service, request_key, go_at, cost, expires_at, priority)"
                     " VALUES (?,?,?,?,?,?) ON CONFLICT (service, request_key) DO UPDATE SET go_at = excluded.go_at,"
                     " cost = excluded.cost, expires_at = excluded.expires_at, priority = excluded.priority",
                     self.service, request_key, go_at, cost, expires_at, priority.value)

    def drop_ticket(self, request_key: str) -> None:
        self._db.run("DELETE FROM model_tickets WHERE service = ? AND request_key = ?", self.service, request_key)

    def shift_tickets(self, seconds: float, *, bulk_after: float | None = None) -> None:
        """Reserved times later by `seconds`: every one (the provider showed the plan was too optimistic),
        or with `bulk_after` those `bulk_queued(bulk_after)` counts (an interactive request went ahead of them)."""
        where, params = ("service = ?", [self.service]) if bulk_after is None else \
            (_BULK_QUEUED, [self.service, bulk_after])
        self._db.run(f"UPDATE model_tickets SET go_at = go_at + ?, expires_at = expires_at + ? WHERE {where}",
                     seconds, seconds, *params)

    def bulk_queued(self, after: float) -> Queued:
        """The bulk requests' reserved times later than `after` and than every interactive one's: the last
        ones in time, which an interactive request goes ahead of."""
        (row,) = self._db.rows("SELECT COUNT(*) AS requests, COALESCE(SUM(cost), 0) AS tokens FROM model_tickets"
                               f" WHERE {_BULK_QUEUED}", self.service, after)
        return Queued(float(row["tokens"]), float(row["requests"]))

    def drop_expired_tickets(self, now: float) -> tuple[float, int]:
        """Forget reservations whose request never came: (their cost in all, how many)."""
        rows = self._db.rows("DELETE FROM model_tickets WHERE service = ? AND expires_at < ? RETURNING cost",
                             self.service, now)
        return sum(float(row["cost"]) for row in rows), len(rows)

    def count(self, outcome: str, input_tokens: int = 0, output_tokens: int = 0) -> None:
        self._db.run("INSERT INTO model_counts (service, outcome, requests, input_tokens, output_tokens)"
                     " VALUES (?, ?, 1, ?, ?) ON CONFLICT (service, outcome) DO UPDATE SET"
                     " requests = model_counts.requests + 1,"
                     " input_tokens = model_counts.input_tokens + excluded.input_tokens,"
                     " output_tokens = model_counts.output_tokens + excluded.output_tokens",
                     self.service, outcome, input_tokens, output_tokens)


class ServiceRow(NamedTuple):
    service: str
    label: str
    state_json: str
    updated_at: float
    counts: dict[str, Count]


class ProviderQueries:
    lock_rows: str
    _transaction: Any
    _rows: Any
    save_image: Any

    @contextmanager
    def model_service(self, service: str, label: str) -> Iterator[ServiceRecord]:
        with self._transaction() as db:
            db.run("INSERT INTO model_services (service, label, state, updated_at) VALUES (?, ?, '', ?)"
                   " ON CONFLICT (service) DO NOTHING", service, label, time.time())
            (row,) = db.rows(f"SELECT state FROM model_services WHERE service = ?{self.lock_rows}", service)
            record = ServiceRecord(db, service, row["state"])
            yield record
            db.run("UPDATE model_services SET state = ?, label = ?, updated_at = ? WHERE service = ?",
                   record.state_json, label, time.time(), service)

    def model_services(self) -> list[ServiceRow]:
        counts: dict[str, dict[str, Count]] = {}
        for row in self._rows("SELECT * FROM model_counts ORDER BY service, outcome"):
            counts.setdefault(row["service"], {})[row["outcome"]] = Count(row["requests"], row["input_tokens"],
                                                                           row["output_tokens"])
        return [ServiceRow(row["service"], row["label"], row["state"], float(row["updated_at"]),
                           counts.get(row["service"], {}))
                for row in self._rows("SELECT * FROM model_services ORDER BY service")]

    # --- jobs waiting for the service -----------------------------------------------------------

    def wait_job(self, job_id: int, delay: float, reason: str, note: str) -> None:
        now = time.time()
        with self._transaction() as db:
            db.run("UPDATE jobs SET claimed_by = NULL, lease_until = NULL, run_after = ?, error = ?, updated_at = ?,"
                   " attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,"
                   " waiting_since = CASE WHEN waiting = ? AND waiting_since IS NOT NULL THEN waiting_since ELSE ? END,"
                   " waiting = ? WHERE id = ?", now + delay, note, now, reason, now, reason, job_id)

    def keep_image(self, job_id: int, image: Image) -> None:
        """Store a waiting job's normalised image and note it in the job, so it is not downloaded again."""
        self.save_image(image)
        with self._transaction() as db:
            (row,) = db.rows(f"SELECT payload FROM jobs WHERE id = ?{self.lock_rows}", job_id)
            payload = {**json.loads(row["payload"]), "kept_sha256": image.sha256}
            db.run("UPDATE jobs SET payload = ? WHERE id = ?", json.dumps(payload), job_id)

    def wake_waiting(self, reason: str) -> int:
        """Make every job waiting for `reason` due now; how many there were."""
        now = time.time()
        with self._transaction() as db:
            return db.run("UPDATE jobs SET run_after = ? WHERE waiting = ? AND state NOT IN ('done', 'failed')"
                          " AND run_after > ?", now, reason, now)

    def provider_waits(self, *, channel: str | None = None, message_ts: str | None = None,
                       inspection_id: int | None = None) -> list[Waiting]:
        """The images (and questions) of an upload (channel and message_ts) or of a plate inspection
        that wait for the model service, per reason; all of them with no filter."""
        where, params = ["waiting IS NOT NULL", "state NOT IN ('done', 'failed')", "call_id IS NULL"], []
        for column, value in (("channel", channel), ("message_ts", message_ts), ("inspection_id", inspection_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        rows = self._rows("SELECT waiting, COUNT(*) AS jobs, MIN(waiting_since) AS since, MAX(run_after) AS until"
                          f" FROM jobs WHERE {' AND '.join(where)} GROUP BY waiting ORDER BY waiting", *params)
        return [Waiting(row["waiting"], row["jobs"], float(row["since"]), float(row["until"])) for row in rows]
