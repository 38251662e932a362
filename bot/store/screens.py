"""The store's queries for screens: the screens each channel added (each well's condition), which screen a
plate uses, a `/crystals screens add NAME` waiting for its upload, an inspection's screen note, and
forgetting the screens of a deleted upload.

Which screen a plate may use (its channel's own, or a public channel's) is Slack's to say: the store
keeps the links, bot/slack/plate_screens.py decides whether a link may be used."""
from __future__ import annotations

import json
import time
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Collection, Iterable

from bot.models import SavedScreen
from bot.screens.chemistry import Condition, PlateConditions
from bot.screens.reading import Screen
from bot.store.privacy import DELETED_BY

if TYPE_CHECKING:
    from bot.store.base import Row, Tx

_SCREEN_COLUMNS = ", ".join(f"screens.{column}" for column in (
    "id", "name", "file_name", "kind", "layout", "wells", "channel", "added_by", "added_at"))
_IN_USE = "screens.removed_at IS NULL"


def name_key(name: str) -> str:
    """Screen names compare without case or extra spaces: `JCSG+`, `jcsg+ ` are one screen."""
    return " ".join(name.casefold().split())


def _in(values: Collection[Any]) -> str:
    return f"({','.join('?' * len(values))})"


class ScreenQueries:
    """Mixed into Store: uses its `_rows` and `_transaction`."""

    if TYPE_CHECKING:
        def _rows(self, sql: str, *params: Any) -> list[Row]: ...

        def _transaction(self) -> AbstractContextManager[Tx]: ...

    # --- screens --------------------------------------------------------------------------------

    def add_screen(self, name: str, file_name: str, sha256: str, screen: Screen, channel: str,
                   user_id: str, job_id: int | None = None) -> SavedScreen | None:
        """Keep a screen of a channel and its conditions; None if that channel has a screen of that name in
        use (nothing is kept). `job_id` is the job that read it (its file's, or the plate's whose zip held
        it): deleting that upload in Slack removes the screen."""
        now = time.time()
        with self._transaction() as db:
            rows = db.rows(
                "INSERT INTO screens (name, name_key, file_name, kind, encoding, layout, wells, sha256, channel,"
                " added_by, added_at, job_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING RETURNING id",
                name, name_key(name), file_name, screen.kind, screen.encoding, screen.layout, len(screen.conditions),
                sha256, channel, user_id, now, job_id)
            if not rows:
                return None
            screen_id = rows[0]["id"]
            for place, (well, condition) in enumerate(screen.conditions.items()):
                db.run("INSERT INTO screen_wells (screen_id, well, place, condition) VALUES (?,?,?,?)",
                       screen_id, well, place, json.dumps(condition.to_json()))
        return SavedScreen(screen_id, name, file_name, screen.kind, screen.layout, len(screen.conditions), channel,
                           user_id, now)

    def screen_named(self, name: str, channel: str) -> SavedScreen | None:
        """The channel's screen of that name in use, if any."""
        return self._one_screen(f"SELECT {_SCREEN_COLUMNS} FROM screens WHERE channel = ? AND name_key = ?"
                                f" AND {_IN_USE}", channel, name_key(name))

    def screens_named(self, name: str) -> list[SavedScreen]:
        """Every channel's screen of that name in use, newest first."""
        return [_screen_from_row(row) for row in self._rows(
            f"SELECT {_SCREEN_COLUMNS} FROM screens WHERE name_key = ? AND {_IN_USE} ORDER BY id DESC", name_key(name))]

    def screen_with_content(self, sha256: str, channel: str) -> SavedScreen | None:
        """The channel's screen in use that was read from a file with these bytes, if any."""
        return self._one_screen(f"SELECT {_SCREEN_COLUMNS} FROM screens WHERE channel = ? AND sha256 = ?"
                                f" AND {_IN_USE} ORDER BY id LIMIT 1", channel, sha256)

    def screen(self, screen_id: int) -> SavedScreen | None:
        """A screen in use, by its id."""
        return self._one_screen(f"SELECT {_SCREEN_COLUMNS} FROM screens WHERE id = ? AND {_IN_USE}", screen_id)

    def screens(self) -> list[SavedScreen]:
        """Every screen in use, newest first."""
        return [_screen_from_row(row) for row in
                self._rows(f"SELECT {_SCREEN_COLUMNS} FROM screens WHERE {_IN_USE} ORDER BY id DESC")]

    def remove_screen(self, screen_id: int, user_id: str) -> SavedScreen | None:
        """Stop using a screen (kept, marked removed; plates linked to it show no conditions any more);
        None if there is no such screen in use."""
        with self._transaction() as db:
            rows = db.rows(f"UPDATE screens SET removed_by = ?, removed_at = ? WHERE id = ? AND {_IN_USE}"
                           f" RETURNING {_SCREEN_COLUMNS}", user_id, time.time(), screen_id)
        return _screen_from_row(rows[0]) if rows else None

    def forget_screens(self, job_ids: Collection[int]) -> list[SavedScreen]:
        """The screens read by these jobs, whose upload was deleted in Slack: no longer used, their
        conditions gone and the plates that used them unlinked (the record of who added which file, and
        when, stays). The screens that were still in use."""
        if not job_ids:
            return []
        with self._transaction() as db:
            ids = [row["id"] for row in db.rows(f"SELECT id FROM screens WHERE job_id IN {_in(job_ids)}", *job_ids)]
            if not ids:
                return []
            rows = db.rows(f"UPDATE screens SET removed_by = ?, removed_at = ? WHERE id IN {_in(ids)} AND {_IN_USE}"
                           f" RETURNING {_SCREEN_COLUMNS}", DELETED_BY, time.time(), *ids)
            db.run(f"DELETE FROM screen_wells WHERE screen_id IN {_in(ids)}", *ids)
            db.run(f"DELETE FROM plate_screens WHERE screen_id IN {_in(ids)}", *ids)
        return [_screen_from_row(row) for row in rows]

    def screen_conditions(self, screen_id: int, wells: Iterable[str] | None = None) -> dict[str, Condition]:
        """A screen's conditions by well, in plate order; only those of `wells` when given."""
        wanted = list(wells) if wells is not None else None
        if wanted == []:
            return {}
        only = f" AND well IN ({','.join('?' * len(wanted))})" if wanted else ""
        rows = self._rows(f"SELECT well, condition FROM screen_wells WHERE screen_id = ?{only} ORDER BY place",
                          screen_id, *(wanted or ()))
        return {row["well"]: Condition.from_json(json.loads(row["condition"])) for row in rows}

    # --- plates ---------------------------------------------------------------------------------

    def link_plate(self, channel: str, plate_name: str, screen_id: int, user_id: str) -> None:
        """The plate (of this channel, all its inspections) uses this screen from now on."""
        with self._transaction() as db:
            db.run("INSERT INTO plate_screens (channel, plate, plate_name, screen_id, linked_by, linked_at)"
                   " VALUES (?,?,?,?,?,?) ON CONFLICT (channel, plate) DO UPDATE SET plate_name = excluded.plate_name,"
                   " screen_id = excluded.screen_id, linked_by = excluded.linked_by, linked_at = excluded.linked_at",
                   channel, plate_name.casefold(), plate_name, screen_id, user_id, time.time())

    def plate_screen(self, channel: str, plate_name: str) -> SavedScreen | None:
        """The screen in use that a plate of this channel is linked to, if any (whether the plate may use it
        is bot/slack/plate_screens.py's to say)."""
        return self._one_screen(f"SELECT {_SCREEN_COLUMNS} FROM plate_screens JOIN screens"
                                f" ON screens.id = plate_screens.screen_id WHERE plate_screens.channel = ?"
                                f" AND plate_screens.plate = ? AND {_IN_USE}", channel, plate_name.casefold())

    def plates_of_screens(self) -> dict[int, list[tuple[str, str]]]:
        """(channel, plate name) of the plates that use each screen, by screen id."""
        plates: dict[int, list[tuple[str, str]]] = {}
        for row in self._rows("SELECT screen_id, channel, plate_name FROM plate_screens ORDER BY id"):
            plates.setdefault(row["screen_id"], []).append((row["channel"], row["plate_name"]))
        return plates

    def plate_conditions(self, screen: SavedScreen, wells: Iterable[str] | None = None) -> PlateConditions:
        """A screen's conditions as a plate shows them (only those of `wells` when given)."""
        return PlateConditions(screen.name, self.screen_conditions(screen.id, wells))

    # --- waiting uploads and notes ----------------------------------------------------------------

    def expect_screen(self, channel: str, user_id: str, name: str) -> None:
        """`/crystals screens add NAME`: this person's next upload in this channel is that screen."""
        with self._transaction() as db:
            db.run("INSERT INTO screen_requests (channel, user_id, name, requested_at) VALUES (?,?,?,?)"
                   " ON CONFLICT (channel, user_id) DO UPDATE SET name = excluded.name,"
                   " requested_at = excluded.requested_at", channel, user_id, name, time.time())

    def take_screen_request(self, channel: str, user_id: str, within_seconds: float) -> str | None:
        """The screen name this person asked to add in this channel in the last `within_seconds`, taken
        (an upload answers it once); None if there is none."""
        with self._transaction() as db:
            rows = db.rows("DELETE FROM screen_requests WHERE channel = ? AND user_id = ? AND requested_at >= ?"
                           " RETURNING name", channel, user_id, time.time() - within_seconds)
        return rows[0]["name"] if rows else None

    def screen_job_open(self, channel: str, message_ts: str) -> bool:
        """Whether a screen file uploaded in this message is still being read."""
        return bool(self._rows("SELECT 1 AS x FROM jobs WHERE channel = ? AND message_ts = ? AND kind = 'screen'"
                               " AND state NOT IN ('done', 'failed')", channel, message_ts))

    def set_screen_note(self, inspection_id: int, note: str) -> None:
        """What became of the screen an inspection's upload named or held, for its summary."""
        with self._transaction() as db:
            db.run("UPDATE inspections SET screen_note = ? WHERE id = ?", note, inspection_id)

    def screen_note(self, inspection_id: int) -> str:
        rows = self._rows("SELECT screen_note FROM inspections WHERE id = ?", inspection_id)
        return (rows[0]["screen_note"] or "") if rows else ""

    def _one_screen(self, sql: str, *params: Any) -> SavedScreen | None:
        rows = self._rows(sql, *params)
        return _screen_from_row(rows[0]) if rows else None


def _screen_from_row(row: Row) -> SavedScreen:
    return SavedScreen(row["id"], row["name"], row["file_name"], row["kind"], row["layout"], row["wells"],
                       row["channel"], row["added_by"], float(row["added_at"]))
