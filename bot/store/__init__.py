"""The database: `open_store(DATABASE_URL)` gives the same `Store` on SQLite or PostgreSQL."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from bot.redact import redact_url
from bot.store.base import Store
from bot.store.schema import MIGRATIONS, TABLES
from bot.store.sqlite import SQLiteStore

__all__ = ["MIGRATIONS", "SQLiteStore", "Store", "StoreError", "copy_database", "is_postgres_url", "open_store",
           "sqlite_path"]


class StoreError(Exception):
    """The database cannot be opened; the message names it without credentials."""


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def sqlite_path(url: str) -> Path:
    """`sqlite:///relative.db`, `sqlite:////absolute.db` or a plain path -> a file path."""
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///"):])
    if "://" in url:
        raise ValueError("must be sqlite:///path/to/file.db or postgresql://user:password@host:5432/db")
    return Path(url)


def open_store(url: str, *, pool_size: int = 10, wait_seconds: float = 30.0) -> Store:
    """The store behind DATABASE_URL, migrated to the current schema; StoreError if it cannot be.
    PostgreSQL is given `wait_seconds` to take a first connection (a server still starting up)."""
    if is_postgres_url(url):
        import psycopg  # loads only when PostgreSQL is used

        from bot.store.postgres import PostgresStore

        try:
            return PostgresStore(url, pool_size=pool_size, wait_seconds=wait_seconds)
        except psycopg.Error as error:
            raise StoreError(f"could not open the PostgreSQL database {redact_url(url)}"
                             f" ({type(error).__name__}); check DATABASE_URL and that the server is up") from None
    try:
        return SQLiteStore(sqlite_path(url))
    except (OSError, sqlite3.Error) as error:
        raise StoreError(f"could not open the SQLite database {url} ({error})") from None


def copy_database(source: Store, target: Store) -> dict[str, int]:
    """Copy every row of `source` into the empty `target`, table by table; rows copied per table."""
    if not target.is_empty():
        raise ValueError("the target database already holds calls or jobs; copy only into an empty database")
    copied: dict[str, int] = {}
    for table in TABLES:
        copied[table] = 0
        for page in source.dump(table):
            target.load(table, page)
            copied[table] += len(page)
    target.after_load()
    return copied
