"""The store's queries for /healthz and /metrics (bot/ops.py): a mixin of Store.

Each is one cheap statement read at scrape time, so every process on the database reports the same
figures: `ping` (is the database answering), `queue_depth` (open jobs by kind, state and what they
wait for) and `job_durations` (finished jobs by kind and end state, counted into histogram buckets).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, Sequence

if TYPE_CHECKING:
    from bot.store.base import Row


class QueueCount(NamedTuple):
    kind: str
    state: str
    waiting: str  # what it waits for: "rate_limit", "outage", or "" (nothing in particular)
    jobs: int


class Durations(NamedTuple):
    kind: str
    state: str  # done or failed
    within: tuple[int, ...]  # jobs that took at most each bound (cumulative)
    jobs: int
    seconds: float  # in all


class OpsQueries:
    """Mixed into Store: uses its `_rows`."""

    if TYPE_CHECKING:
        def _rows(self, sql: str, *params: Any) -> list[Row]: ...

    def ping(self) -> None:
        """Raises if the database does not answer a trivial query."""
        self._rows("SELECT 1 AS one")

    def queue_depth(self) -> list[QueueCount]:
        """Jobs not finished yet (queued, running, waiting for a retry or for the model service)."""
        rows = self._rows("SELECT kind, state, COALESCE(waiting, '') AS waiting, COUNT(*) AS jobs FROM jobs"
                          " WHERE state NOT IN ('done', 'failed') GROUP BY kind, state, waiting")
        return [QueueCount(row["kind"], row["state"], row["waiting"], int(row["jobs"])) for row in rows]

    def job_durations(self, bounds: Sequence[float]) -> list[Durations]:
        """Finished jobs by kind and end state: how many took at most each of `bounds` seconds from being
        queued to their end (cumulative, as Prometheus's buckets), how many in all and their seconds in all."""
        took = "(updated_at - created_at)"
        buckets = "".join(f", SUM(CASE WHEN {took} <= ? THEN 1 ELSE 0 END) AS le{i}" for i in range(len(bounds)))
        rows = self._rows(f"SELECT kind, state, COUNT(*) AS jobs, SUM({took}) AS seconds{buckets} FROM jobs"
                          " WHERE state IN ('done', 'failed') GROUP BY kind, state", *bounds)
        return [Durations(row["kind"], row["state"], tuple(int(row[f"le{i}"]) for i in range(len(bounds))),
                          int(row["jobs"]), float(row["seconds"])) for row in rows]
