"""The store in one SQLite file: the embedded default, for one bot process (or a few on one disk)."""
from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from bot.store.base import Store, Tx
from bot.store.schema import SQLITE_TYPES


class _SQLiteTx(Tx):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def rows(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()

    def run(self, sql: str, *params: Any) -> int:
        return self.conn.execute(sql, params).rowcount


class SQLiteStore(Store):
    """One connection shared by the bot's threads behind a lock; the schema version is `user_version`."""

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
    def _transaction(self) -> Iterator[Tx]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")  # takes the write lock now, so other processes wait their turn
            try:
                yield _SQLiteTx(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def _reader(self) -> Iterator[Tx]:
        with self._lock:
            yield _SQLiteTx(self._conn)

    @property
    def schema_version(self) -> int:
        with self._lock:
            return self._conn.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self) -> None:
        with self._transaction() as db:
            for number, pending in self._pending_migrations(db.rows("PRAGMA user_version")[0][0], SQLITE_TYPES):
                for statement in pending:
                    db.run(statement)
                db.run(f"PRAGMA user_version = {number}")
