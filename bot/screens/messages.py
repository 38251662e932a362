"""Screens in Slack: the reply to a screen file, `/crystals screens` with its Remove buttons, a plate's
link to its screen, a hit's condition and its grid buttons, the summary's line on the hits'
chemistry, the optimisation grid's comment and what a follow-up question shows the model. Pure.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from html import unescape
from typing import Any, Mapping, Sequence

from bot.models import SavedScreen
from bot.plates.wells import LAYOUTS, parse_well, row_name
from bot.render import SECTION_LIMIT, Blocks, Message, clip, code, escape
from bot.screens.chemistry import Condition, PlateConditions
from bot.screens.common import hits_chemistry
from bot.screens.grid import Grid, GridSize, constant_components
from bot.screens.reading import Screen
from bot.visibility import Viewer, scope

SCREEN_REMOVE_ACTION = "screen_remove"
GRID_ACTION = "screen_grid"
MAX_NAME_CHARS = 80
LISTED_SCREENS = 40  # `/crystals screens` lists at most this many (a message holds 50 blocks)
LISTED_PLATES = 8  # plates named per screen in the list
LISTED_UNREAD = 12  # parts not understood named in the reply to a screen file
MAX_WELL_RUNS = 12  # runs of wells named (`A1–A12, B1–B6`) before only the first and last are
ADD_WAIT_MINUTES = 10  # `/crystals screens add NAME` waits this long for the upload
HOW_TO_ADD = ("Add one: upload its CSV with the text `screen NAME`, or `/crystals screens add NAME` and then the "
              "upload; it belongs to that channel. A plate uses one of its channel's or of a public channel's with "
              "`/crystals plate PLATE screen NAME`, or with `screen NAME` in the text of the plate's upload, or when "
              "its zip holds the screen's CSV.")
_DIRECTIVE = re.compile(r"(?:^|(?<=\s))screen\s*[:=]?[ \t]+(?P<name>[^\s][^\n]*)", re.IGNORECASE)
_LINK_COMMAND = re.compile(r"plate\s+(?P<plate>\S+)\s+screen\s+(?P<screen>\S.*?)\s*", re.IGNORECASE | re.DOTALL)
_ADD_COMMAND = re.compile(r"screens?\s+add\s+(?P<name>\S.*?)\s*", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Directive:
    """An upload's text, split: the screen it names (`plate42 screen JCSG+` -> JCSG+) and the rest."""

    rest: str
    screen: str | None


def screen_directive(text: str) -> Directive:
    """`plate42 screen JCSG+` -> (`plate42`, `JCSG+`); text without `screen NAME` -> (text, None).
    Slack's escapes (`&amp;`) are undone and the name is cut to MAX_NAME_CHARS."""
    plain = unescape(text)
    found = _DIRECTIVE.search(plain)
    if not found:
        return Directive(text, None)
    rest = " ".join((plain[:found.start()] + " " + plain[found.end():]).split())
    return Directive(rest, clip(" ".join(found["name"].split()), MAX_NAME_CHARS))


def link_command(text: str) -> tuple[str, str] | None:
    """`plate plate42 screen JCSG+` -> (plate, screen), or None."""
    found = _LINK_COMMAND.fullmatch(unescape(text.strip()))
    return (found["plate"], clip(" ".join(found["screen"].split()), MAX_NAME_CHARS)) if found else None


def add_command(text: str) -> str | None:
    """`screens add JCSG+` -> the name, or None."""
    found = _ADD_COMMAND.fullmatch(unescape(text.strip()))
    return clip(" ".join(found["name"].split()), MAX_NAME_CHARS) if found else None


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_LIMIT)}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, 2000)}]}


def _day(when: float) -> str:
    return datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%d")


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def plate_kind(layout: int) -> str:
    return "24-well tray" if layout == 24 else f"{layout:,}-well plate"


def wells_text(wells: Sequence[str], layout: int) -> str:
    """Which wells have a condition: `all 96 wells (A1–H12)`, `A1–A12, B1–B6`, or the first and last."""
    rows, columns = LAYOUTS[layout]
    if len(wells) == layout:
        return f"all {layout:,} wells (A1–{row_name(rows - 1)}{columns})"
    runs: list[list[str]] = []
    previous = None
    for name in wells:
        well = parse_well(name)
        if well and previous and well.row == previous.row and well.column == previous.column + 1:
            runs[-1].append(name)
        else:
            runs.append([name])
        previous = well
    shown = [run[0] if len(run) == 1 else f"{run[0]}–{run[-1]}" for run in runs]
    if len(shown) > MAX_WELL_RUNS:
        return f"{_count(len(wells), 'well')} from {wells[0]} to {wells[-1]}"
    return ", ".join(shown)


def screen_added(saved: SavedScreen, screen: Screen, plate: str | None) -> Message:
    """The reply to a screen file: how many conditions for which wells, and what was not understood."""
    wells = list(screen.conditions)
    lines = [f":test_tube: Added screen *{escape(saved.name)}*: {_count(len(wells), 'condition')} read, for "
             f"{wells_text(wells, screen.layout)} of a {plate_kind(screen.layout)}, from {code(saved.file_name)} "
             f"({screen.kind}, {screen.encoding})."]
    unread = screen.unread()
    if unread:
        shown = "; ".join(f"{well} {code(part)}" for well, part in unread[:LISTED_UNREAD])
        more = f" and {len(unread) - LISTED_UNREAD} more" if len(unread) > LISTED_UNREAD else ""
        lines.append(f"*Not understood ({len(unread)})*, kept as written: {shown}{more}.")
    if screen.skipped:
        shown = "; ".join(screen.skipped[:LISTED_UNREAD])
        more = f" and {len(screen.skipped) - LISTED_UNREAD} more" if len(screen.skipped) > LISTED_UNREAD else ""
        lines.append(f"*Rows not read ({len(screen.skipped)}):* {escape(shown)}{more}.")
    if plate:
        lines.append(f"Plate *{escape(plate)}* in this channel uses it from now on.")
    else:
        lines.append(f"A plate uses it with `/crystals plate PLATE screen {escape(saved.name)}`, or with "
                     f"`screen {escape(saved.name)}` in the text of the plate's upload.")
    text = "\n".join(lines)
    return Message(clip(text, 3900), [_section(text)])


def screen_refused(file_name: str, reason: str) -> Message:
    """A screen file that could not be read or kept: why (Slack text, made inert by the caller where it
    quotes people), and that nothing changed."""
    text = f":warning: I did not add {code(file_name)} as a screen: {reason} Nothing was changed."
    return Message(clip(text, 3900), [_section(text)])


def name_taken(existing: SavedScreen) -> str:
    return (f"there is already a screen named *{escape(existing.name)}* ({_count(existing.wells, 'well')}, added by "
            f"<@{existing.added_by}> on {_day(existing.added_at)}). Remove it with `/crystals screens` first, or "
            "give this one another name.")


def screens_message(screens: Sequence[SavedScreen], plates: Mapping[int, Sequence[tuple[str, str]]], viewer: Viewer,
                    notice: str = "") -> Message:
    """`/crystals screens` for one person: the screens of the channels they are in, each with its wells, its
    file, who added it where and when, the plates that use it (named only in channels the person is in;
    the others counted), and Remove; the screens of other channels only counted."""
    seen = scope(screens, lambda screen: screen.channel, viewer)
    shown = seen.shown
    blocks: Blocks = [_section(notice)] if notice else []
    blocks.append(_section(f"*Screens ({len(shown)})*" if shown else "*No screens in your channels yet.*"))
    blocks += [_screen_block(screen, plates.get(screen.id, []), viewer) for screen in shown[:LISTED_SCREENS]]
    if len(shown) > LISTED_SCREENS:
        blocks.append(_context(f"… and {len(shown) - LISTED_SCREENS} older ones, not listed."))
    hidden = f"_{_count(seen.hidden, 'more screen')} from channels you are not in._" if seen.hidden else ""
    if hidden:
        blocks.append(_context(hidden))
    blocks.append(_context(HOW_TO_ADD))
    listed = f"{_count(len(shown), 'screen')}." if shown else "No screens in your channels yet."
    text = f"{listed} {hidden}" if hidden else listed
    return Message(f"{notice}\n{text}" if notice else text, blocks)


def _screen_block(screen: SavedScreen, plates: Sequence[tuple[str, str]], viewer: Viewer) -> dict[str, Any]:
    seen = scope(plates, lambda plate: plate[0], viewer)
    named = [f"{escape(plate)} in <#{channel}>" for channel, plate in seen.shown[:LISTED_PLATES]]
    more = len(seen.shown) - len(named) + seen.hidden
    if more:
        named.append(f"{_count(more, 'more plate')}" + (" in channels you are not in" if seen.hidden else ""))
    text = (f"*{escape(screen.name)}* · {_count(screen.wells, 'well')} of a {plate_kind(screen.layout)} · "
            f"{code(screen.file_name)} · <@{screen.added_by}> in <#{screen.channel}>, {_day(screen.added_at)}\n"
            + (f"Used by {', '.join(named)}" if named else "_No plate uses it yet._"))
    confirm = (f"Plates that use it ({len(plates)}) show no conditions any more." if plates
               else "No plate uses it.")
    return {"type": "section", "block_id": f"screen-{screen.id}", "text": {"type": "mrkdwn", "text": clip(text, SECTION_LIMIT)},
            "accessory": {"type": "button", "action_id": SCREEN_REMOVE_ACTION, "value": str(screen.id), "style": "danger",
                          "text": {"type": "plain_text", "text": "Remove"},
                          "confirm": {"title": {"type": "plain_text", "text": "Remove this screen?"},
                                      "text": {"type": "mrkdwn", "text": clip(confirm, 300)},
                                      "confirm": {"type": "plain_text", "text": "Remove"},
                                      "deny": {"type": "plain_text", "text": "Keep"}}}}


NOT_IN_SCREENS_CHANNEL = ("Only members of the channel a screen was added in (guests excepted) can remove it, and "
                          "Slack did not confirm that you are one.")


def screen_editing_refused(guest: bool | None) -> str | None:
    """Why someone may not add or remove screens (guests may not; nor anyone Slack could not say is no
    guest), or None."""
    if guest is None:
        return ("I could not check with Slack who you are just now, so I cannot change the screens for you. "
                "Try again in a minute.")
    return ("Guests cannot add or remove the lab's screens. Members of the workspace who are not guests can, in the "
            "channels they are in." if guest else None)


def screen_removed(screen: SavedScreen) -> str:
    return f":wastebasket: Removed screen *{escape(screen.name)}* (added by <@{screen.added_by}>)."


def add_waiting(name: str) -> Message:
    return Message(f"Upload the screen's CSV file in this channel within {ADD_WAIT_MINUTES} minutes (the file alone is "
                   f"enough): I will add it as *{escape(name)}*.")


def plate_linked(plate: str, screen: SavedScreen, channel: str) -> Message:
    """A plate of `channel` uses the screen from now on (one of a public channel says which)."""
    where = f" of <#{screen.channel}>" if screen.channel != channel else ""
    return Message(f":test_tube: Plate *{escape(plate)}* in this channel uses screen *{escape(screen.name)}*{where} "
                   f"({_count(screen.wells, 'condition')}) from now on: its hits show their conditions from its next "
                   "summary, and questions in its thread see them at once.")


def no_such_screen(name: str) -> str:
    """No screen of that name a plate of this channel may use (the same words whether a private channel
    elsewhere has one or nobody does)."""
    return (f"There is no screen named *{escape(name)}* in this channel or in a public channel. "
            "`/crystals screens` lists the screens of your channels.")


def screen_unchecked(name: str) -> str:
    """Another channel has a screen of that name, and Slack could not say whether it is public."""
    return (f"I could not check with Slack just now whether the channel screen *{escape(name)}* comes from is "
            "public, so I did not use it (a plate uses a screen of its own channel or of a public one). Try again "
            "in a minute.")


def screens_usage() -> Message:
    return Message("`/crystals screens` lists the screens; `/crystals screens add NAME` adds the CSV you upload next; "
                   "`/crystals plate PLATE screen NAME` says which screen a plate uses.")


def hit_condition(well: str | None, plate: PlateConditions | None) -> str:
    """A hit's condition for a list of hits (` · _0.1 M NaOAc pH 5.0, 20% PEG 8000_`); "" for none."""
    short = plate.short(well) if plate else None
    return f" · _{escape(short)}_" if short else ""


def screen_summary(plate: PlateConditions | None, hit_wells: Sequence[str], note: str = "") -> str:
    """The summary's lines on the screen: a note on how it was set (or not), the screen's name and what the
    hits' conditions share; "" when there is nothing to say."""
    lines = [note] if note else []
    if plate:
        conditions = [plate.conditions[well] for well in dict.fromkeys(hit_wells) if well in plate.conditions]
        shared = hits_chemistry(conditions)
        lines.append(f":test_tube: *Screen {escape(plate.screen)}*" + (
            f" · *the hits share:* {escape(shared)}" if shared else ""))
    return "\n".join(lines)


def with_condition(message: Message, job_id: int, well: str, condition: Condition, screen: str,
                   sizes: Sequence[GridSize]) -> Message:
    """A hit's reply with its well's condition under the call, and a button per optimisation grid."""
    reference = f" ({escape(condition.reference)})" if condition.reference else ""
    line = f":test_tube: *{escape(screen)} {well}*{reference}: {escape(condition.short())}"
    blocks = list(message.blocks or [])
    blocks.insert(1, _context(line))
    buttons = [{"type": "button", "action_id": GRID_ACTION, "value": f"{job_id}:{size}",
                "text": {"type": "plain_text", "text": f"Optimisation grid, {size.tray}"}} for size in sizes]
    footer = len(blocks) - 1 if blocks and blocks[-1]["type"] == "context" else len(blocks)
    blocks.insert(footer, {"type": "actions", "block_id": f"grid-{job_id}", "elements": buttons})
    return Message(message.text, blocks)


def parse_grid_value(value: str, sizes: Sequence[GridSize]) -> tuple[int, GridSize] | None:
    """A grid button's value (`<job id>:4x6`) -> (job id, size), if the size is one offered."""
    job_id, _, size = value.partition(":")
    chosen = next((s for s in sizes if str(s) == size), None)
    return (int(job_id), chosen) if job_id.isascii() and job_id.isdecimal() and chosen else None


def grid_comment(grid: Grid, size: GridSize, user_id: str) -> str:
    """What comes with the grid's CSV and picture in the thread."""
    constant = ", ".join(c.short() for c in constant_components(grid))
    return (f":test_tube: Optimisation grid around *{grid.well}* ({escape(grid.condition.short())}) for a "
            f"{size.tray}, asked for by <@{user_id}>: columns {escape(grid.columns.span())}, rows "
            f"{escape(grid.rows.span())}; {grid.well_of(*grid.hit)} is the hit's own condition"
            + (f"; every well also has {escape(constant)}" if constant else "") + ".")


def grid_refused(well: str, reason: str) -> Message:
    text = f":warning: I cannot make an optimisation grid around {well}'s condition: {escape(reason)}"
    return Message(text, [_section(text)])


def conditions_for_model(plate: PlateConditions | None, asked: Sequence[str], hits: Sequence[str], limit: int) -> str:
    """For a follow-up question in a plate's thread: the conditions (in full) of the wells it names and of
    the hits, as data; "" when the plate has no screen."""
    if not plate:
        return ""
    def entries(wells: Sequence[str]) -> str:
        return "; ".join(f"{well}: {_full(plate.conditions[well])}" for well in dict.fromkeys(wells)
                         if well in plate.conditions)
    parts = [f"The plate's screen is {plate.screen}."]
    if named := entries(asked):
        parts.append(f"Conditions of the wells asked about: {named}.")
    if hit_entries := entries(hits):
        parts.append(f"Conditions of the crystal hits: {hit_entries}.")
    return clip(" ".join(parts), limit)


def _full(condition: Condition) -> str:
    return condition.text + (f" (cocktail {condition.reference})" if condition.reference else "")
