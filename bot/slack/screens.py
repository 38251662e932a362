"""Screens in Slack. What is decided lives in bot/screens/; this is the Slack side of it.

screen job: a screen file uploaded with `screen NAME` in its text (or after `/crystals screens add NAME`)
            -> downloaded (MAX_SCREEN_KB) -> read -> kept under its name -> a reply saying how many
            conditions were read, for which wells, and what was not understood; a file that is no
            screen gets a reply saying why, and nothing is kept.
grid job:   a click on a hit's "Optimisation grid" button -> the grid around the well's condition, as
            a CSV and a picture in the thread.
A plate job calls attach_screen once it knows the plate: the screen its upload's text names, or a
screen file inside its zip, becomes the plate's (for its later inspections too); what became of it is
noted for the summary. `/crystals screens` (list, add, Remove) and `/crystals plate PLATE screen NAME`
are answered at once.

A screen belongs to the channel it was added in: it is listed only to that channel's members (others
see how many there are), only they (not guests) remove it, and a plate elsewhere uses it only when that
channel is public (bot/slack/plate_screens.py).
"""
from __future__ import annotations

import hashlib
import logging
import re
import zipfile
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Any, Sequence

from bot.models import Inspection, Job
from bot.plates.archive import Contents, Entry, ArchiveError, Skip, ZipLimits, read_image
from bot.queue import Handler, RetryLater
from bot.render import Message, escape, parse_id
from bot.screens.grid import GridError, GridSize, grid_csv, grid_png, optimisation_grid
from bot.screens.messages import (ADD_WAIT_MINUTES, Directive, add_command, add_waiting, grid_comment, grid_refused,
                                  NOT_IN_SCREENS_CHANNEL, link_command, name_taken, parse_grid_value, plate_linked,
                                  screen_added, screen_editing_refused, screen_refused, screen_removed,
                                  screens_message, screens_usage)
from bot.screens.reading import ScreenError, read_screen
from bot.slack.files import DownloadError
from bot.slack.workflow import FAILED_REACTION, Workflow
from bot.visibility import NOT_A_MEMBER

log = logging.getLogger(__name__)

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".xls", ".ods", ".numbers")  # workbooks: to say "save as CSV"
TABLE_FILETYPES = {"csv", "tsv", "text", "xlsx", "xls", "ods", "numbers"}
ADDED_REACTION = "test_tube"
MAX_ZIP_TABLES = 3  # screen files looked at in one zip
KB = 1024


def is_table(file: dict[str, Any]) -> bool:
    """A file that may be a screen: a CSV or text file (or a workbook, to be told to save it as CSV)."""
    name = (file.get("name") or "").lower()
    return (file.get("filetype") or "").lower() in TABLE_FILETYPES or name.endswith(TABLE_SUFFIXES) \
        or (file.get("mimetype") or "") in {"text/csv", "text/tab-separated-values", "text/plain"}


def zip_tables(archive: zipfile.ZipFile, contents: Contents, limits: ZipLimits, max_bytes: int) -> list[tuple[str, bytes]]:
    """The bytes of the zip's files that may be a screen (CSV, TSV, text), at most MAX_ZIP_TABLES, each
    within `max_bytes`; the survey skipped them as not images, after its checks of paths, links and
    encryption."""
    tables = []
    for name, reason in contents.skipped:
        if reason is not Skip.NOT_IMAGE or not name.lower().endswith((".csv", ".tsv", ".txt")):
            continue
        info = archive.getinfo(name)
        try:
            tables.append((name, read_image(archive, Entry(name, info.file_size, info.compress_size),
                                            replace(limits, max_member_bytes=max_bytes))))
        except ArchiveError as error:
            log.info("zip member %s not read as a screen: %s", name, error)
        if len(tables) == MAX_ZIP_TABLES:
            break
    return tables


def attach_screen(flow: Workflow, job: Job, inspection: Inspection, tables: Sequence[tuple[str, bytes]]) -> None:
    """The plate's screen from its upload: the one the text names (`screen JCSG+`), else a screen file in
    its zip. The plate keeps it for its later inspections; the note says what became of it."""
    store, name = flow.store, job.payload.get("screen")
    if name:
        if store.screen_job_open(job.channel, job.message_ts):
            raise RetryLater("waiting for the screen file uploaded with the plate")
        named = flow.plate_screens.named(name, job.channel)
        if named.screen:
            store.link_plate(job.channel, inspection.plate_name, named.screen.id, job.user_id)
        note = "" if named.screen else (f":warning: {named.why_not} The hits show no conditions until "
                                        f"`/crystals plate {inspection.plate_name} screen NAME` names one.")
    elif tables:
        note = _screen_from_zip(flow, job, inspection, tables)
    else:
        return
    store.set_screen_note(inspection.id, note)


def _screen_from_zip(flow: Workflow, job: Job, inspection: Inspection, tables: Sequence[tuple[str, bytes]]) -> str:
    """The first screen file of the zip that reads as a screen becomes the plate's, a screen of the plate's
    channel (the one already kept when the channel had the same file read before); the note for the
    summary."""
    store, max_bytes = flow.store, flow.services.settings.max_screen_kb * KB
    problems = []
    for member, data in tables:
        try:
            screen = read_screen(data, PurePosixPath(member).name, max_bytes)
        except ScreenError as error:
            problems.append(str(error))
            continue
        sha256 = hashlib.sha256(data).hexdigest()
        saved = store.screen_with_content(sha256, job.channel)
        if saved is None:
            stem = PurePosixPath(member).stem[:60] or "screen"
            name = stem if store.screen_named(stem, job.channel) is None else f"{stem} ({sha256[:6]})"
            saved = store.add_screen(name, PurePosixPath(member).name, sha256, screen, job.channel, job.user_id,
                                     job.id) or store.screen_named(name, job.channel)
        if saved:
            store.link_plate(job.channel, inspection.plate_name, saved.id, job.user_id)
            return f":test_tube: Screen *{saved.name}* ({saved.wells:,} conditions) read from the zip's `{member}`."
    return f":warning: I did not use the screen file in the zip: {problems[0]}"


@dataclass
class LabScreens:
    """`/crystals screens`, `/crystals plate PLATE screen NAME`, screen uploads and grid clicks."""

    flow: Workflow

    def accept_upload(self, event: dict[str, Any], tables: Sequence[dict[str, Any]], directive: Directive) -> list[int | None]:
        """A screen job for the first table file of a message that names a screen (`screen JCSG+`), or whose
        sender asked for one with `/crystals screens add NAME` within ADD_WAIT_MINUTES."""
        if not tables:
            return []
        channel, user = event["channel"], event.get("user", "")
        name = directive.screen or self.flow.store.take_screen_request(channel, user, ADD_WAIT_MINUTES * 60)
        if not name:
            return []
        plate = directive.rest if directive.screen and len(directive.rest.split()) == 1 else ""
        file = tables[0]
        return [self.flow.store.enqueue("screen", channel, event["ts"], event.get("thread_ts") or event["ts"],
                                        file["id"], file.get("name") or file["id"], user,
                                        {"file": file, "name": name, "plate": plate})]

    def command(self, command: dict[str, Any], text: str) -> Message:
        """`screens`, `screens add NAME`, `plate PLATE screen NAME` (a plate of this channel: its members only)."""
        store, channel, user = self.flow.store, command["channel_id"], command["user_id"]
        if (linked := link_command(text)) is not None:
            if not self.flow.privacy.may_see(user, channel):
                return Message(NOT_A_MEMBER)
            plate, name = linked
            named = self.flow.plate_screens.named(name, channel)
            if named.screen is None:
                return Message(named.why_not)
            store.link_plate(channel, plate, named.screen.id, user)
            log.info("%s linked plate %s of channel %s to screen %s (%s) of channel %s", user, plate, channel,
                     named.screen.id, named.screen.name, named.screen.channel)
            return plate_linked(plate, named.screen, channel)
        if (name := add_command(text)) is not None:
            refusal = self.refusal(user)
            if refusal:
                return Message(refusal)
            existing = store.screen_named(name, channel)
            if existing:
                return Message(f"I cannot add *{name}*: {name_taken(existing)}")
            store.expect_screen(channel, user, name)
            return add_waiting(name)
        if re.fullmatch(r"screens?", text.strip(), re.IGNORECASE):
            return self.overview(user)
        return screens_usage()

    def refusal(self, user_id: str) -> str | None:
        """Why this person may not add or remove screens (a guest, or Slack could not say), or None."""
        return screen_editing_refused(self.flow.privacy.membership.is_guest(user_id))

    def overview(self, user_id: str, notice: str = "") -> Message:
        """`/crystals screens` for one person: the screens of their channels, and the plates using each named
        only in their channels."""
        store = self.flow.store
        screens, plates = store.screens(), store.plates_of_screens()
        channels = {screen.channel for screen in screens} | {channel for used in plates.values() for channel, _ in used}
        return screens_message(screens, plates, self.flow.privacy.viewer(user_id, channels), notice)

    def remove(self, user_id: str, value: str) -> Message:
        """A Remove click by a member of the screen's channel who is not a guest: the screen no longer used;
        the list as it is now."""
        screen_id = parse_id(value)
        screen = self.flow.store.screen(screen_id) if screen_id is not None else None
        if screen is None:
            return self.overview(user_id, "That screen was removed already.")
        if not self.flow.privacy.may_see(user_id, screen.channel):
            log.warning("%s may not remove screen %s of channel %s (not a member, as Slack says): ignored", user_id,
                        screen.id, screen.channel)
            return self.overview(user_id, NOT_IN_SCREENS_CHANNEL)
        refusal = self.refusal(user_id)
        if refusal:
            return self.overview(user_id, refusal)
        removed = self.flow.store.remove_screen(screen.id, user_id)
        if removed:
            log.info("%s removed screen %s (%s) of channel %s", user_id, removed.id, removed.name, removed.channel)
        return self.overview(user_id, screen_removed(removed) if removed else "That screen was removed already.")

    def accept_grid_click(self, body: dict[str, Any], value: str) -> None:
        """An Optimisation grid click on a hit's reply: a grid job (one per hit and size)."""
        sizes = self.flow.services.settings.grid_sizes
        parsed = parse_grid_value(value, sizes)
        target = self.flow.store.job(parsed[0]) if parsed else None
        channel = (body.get("channel") or {}).get("id")
        if not parsed or not target or target.kind != "plate_image" or channel != target.channel:
            log.warning("ignored a grid click with value %.40r in channel %s", value, channel)
            return
        size = parsed[1]
        if self.flow.store.enqueue("grid", target.channel, target.message_ts, target.thread_ts,
                                   f"grid:{target.id}:{size}", f"grid {target.payload.get('well')}", body["user"]["id"],
                                   {"job_id": target.id, "rows": size.rows, "columns": size.columns}) is not None:
            self.flow.wake()


@dataclass
class ScreenFiles:
    """A screen file uploaded in a channel: read, kept, and answered in its thread."""

    flow: Workflow

    def run(self, job: Job) -> None:
        flow, store = self.flow, self.flow.store
        max_bytes = flow.services.settings.max_screen_kb * KB
        guest = flow.privacy.membership.is_guest(job.user_id)
        if guest is None:
            raise RetryLater(f"could not check whether {job.user_id} is a guest")
        if guest:
            self._answer(job, screen_refused(job.file_name, screen_editing_refused(guest) or ""), FAILED_REACTION)
            return
        try:
            data = self._download(job, max_bytes)
            screen = read_screen(data, job.file_name, max_bytes)
        except (ScreenError, DownloadError) as error:
            if getattr(error, "retryable", False):
                raise RetryLater(str(error)) from error
            self._answer(job, screen_refused(job.file_name, escape(str(error))), FAILED_REACTION)
            return
        name = job.payload["name"]
        sha256 = hashlib.sha256(data).hexdigest()
        saved = store.add_screen(name, job.file_name, sha256, screen, job.channel, job.user_id, job.id)
        if saved is None:
            existing = store.screen_named(name, job.channel)
            self._answer(job, screen_refused(job.file_name, name_taken(existing) if existing else "try again."),
                         FAILED_REACTION)
            return
        plate = job.payload.get("plate") or None
        if plate:
            store.link_plate(job.channel, plate, saved.id, job.user_id)
        log.info("%s added screen %s (%s, %s wells) in channel %s", job.user_id, saved.id, saved.name, saved.wells,
                 job.channel)
        self._answer(job, screen_added(saved, screen, plate), ADDED_REACTION)

    def give_up(self, job: Job, reason: str) -> None:
        """Tried JOB_MAX_ATTEMPTS times (Slack unreachable, say): the thread is told; the log has the reason."""
        self.flow.fail(job, screen_refused(job.file_name, "I could not fetch or read it just now. Upload it again in "
                                                          "a few minutes."), reason)
        self.flow.poster.react_if_possible(job.channel, job.message_ts, FAILED_REACTION, add=True)
        self.flow.stop_working(job)

    def _download(self, job: Job, max_bytes: int) -> bytes:
        """The file's bytes; a file over the limit (from its size, before downloading) raises ScreenError."""
        files = self.flow.files
        file = files.complete({"id": job.file_id, **job.payload["file"]})
        if int(file.get("size") or 0) > max_bytes:
            raise ScreenError(f"{job.file_name} is {int(file['size']) // KB:,} KB; the most I read as a screen is "
                              f"{max_bytes // KB:,} KB (MAX_SCREEN_KB).")
        return files.download(file)

    def _answer(self, job: Job, message: Message, reaction: str) -> None:
        flow = self.flow
        flow.store.update_job(job.id, "replied", reply_ts=flow.poster.reply(job, message))
        flow.poster.react_if_possible(job.channel, job.message_ts, reaction, add=True)
        flow.store.finish_job(job.id, "done")
        flow.stop_working(job)


@dataclass
class Grids:
    """An optimisation grid around a hit: a CSV and a picture in the hit's thread."""

    flow: Workflow

    def run(self, job: Job) -> None:
        flow = self.flow
        target = flow.store.job(job.payload["job_id"])
        found = flow.plate_screens.image_condition(target) if target else None
        well = str(target.payload.get("well")) if target else "?"
        size = GridSize(job.payload["rows"], job.payload["columns"])
        settings = flow.services.settings
        try:
            if target is None or found is None:
                raise GridError("its plate has no screen any more.")
            grid = optimisation_grid(well, found[1], size, settings.grid_concentration_step, settings.grid_ph_step)
        except GridError as error:
            flow.store.update_job(job.id, "replied", reply_ts=flow.poster.reply(job, grid_refused(well, str(error))))
            flow.store.finish_job(job.id, "done")
            return
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", f"grid_{well}_{size}")
        flow.poster.upload(job.channel, thread_ts=job.thread_ts, comment=grid_comment(grid, size, job.user_id), files=[
            {"content": grid_csv(grid), "filename": f"{stem}.csv", "title": f"Optimisation grid around {well} ({size})"},
            {"content": grid_png(grid), "filename": f"{stem}.png", "title": f"Optimisation grid around {well}"}])
        flow.store.finish_job(job.id, "done")

    def give_up(self, job: Job, reason: str) -> None:
        self.flow.abandon(job, reason)


def screen_handlers(flow: Workflow) -> dict[str, Handler]:
    return {"screen": ScreenFiles(flow), "grid": Grids(flow)}
