"""The store on PostgreSQL, for several bot processes on one or many machines sharing one database.

Connections come from a psycopg pool. Jobs are claimed with `FOR UPDATE SKIP LOCKED`, so two
processes never take the same job; migrations run under an advisory lock, so whichever process
starts first applies them and the others wait.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from bot.store.base import Store, Tx
from bot.store.schema import POSTGRES_TYPES, TABLES
MIGRATION_LOCK = 7_411_203  # any constant: the advisory lock's id


class _PostgresTx(Tx):
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        return self.conn.execute(_placeholders(sql), params).fetchall()

    def run(self, sql: str, *params: Any) -> int:
        return self.conn.execute(_placeholders(sql), params).rowcount


def _placeholders(sql: str) -> str:
    """The store's SQL uses `?`; psycopg wants `%s`."""
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresStore(Store):
    skip_locked = " FOR UPDATE SKIP LOCKED"
    lock_rows = " FOR UPDATE"
    payload_field = "(jobs.payload::jsonb ->> '{key}')"

    def __init__(self, url: str, *, pool_size: int = 10, wait_seconds: float = 30.0) -> None:
        # check: a connection the server dropped (a restart, a failover) is replaced when taken from the
        # pool, instead of failing the next query of whoever takes it (one round trip per checkout)
        self._pool = ConnectionPool(url, min_size=1, max_size=pool_size, kwargs={"row_factory": dict_row},
                                    open=False, name="crystals", check=ConnectionPool.check_connection)
        self._pool.open(wait=True, timeout=wait_seconds)
        self._migrate()

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def _transaction(self) -> Iterator[Tx]:
        with self._pool.connection() as conn, conn.transaction():
            yield _PostgresTx(conn)

    _reader = _transaction

    @property
    def schema_version(self) -> int:
        with self._reader() as db:
            return db.rows("SELECT version FROM schema_version")[0]["version"]

    def _migrate(self) -> None:
        with self._transaction() as db:
            db.run("SELECT pg_advisory_xact_lock(?)", MIGRATION_LOCK)
            db.run("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            rows = db.rows("SELECT version FROM schema_version")
            if not rows:
                db.run("INSERT INTO schema_version (version) VALUES (0)")
            for number, pending in self._pending_migrations(rows[0]["version"] if rows else 0, POSTGRES_TYPES):
                for statement in pending:
                    db.run(statement)
                db.run("UPDATE schema_version SET version = ?", number)

    def after_load(self) -> None:
        with self._transaction() as db:
            for table in TABLES:
                if table not in ("images", "seen_events", "batches"):
                    db.run(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                           f" COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)")
