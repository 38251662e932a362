"""Which screen a plate may use, as Slack says, and the conditions it then shows.

A screen belongs to the channel it was added in. A plate uses a screen of its own channel, or of a
public channel (its conditions then show to the plate's channel: anyone may read a public channel). A
private channel's screen is never applied to a plate elsewhere, for its conditions would show to people
outside it; nor is a screen whose channel Slack could not say is public (unknown: not allowed), nor one of
a channel the bot was removed from (its data shows nowhere). It is checked when a plate is linked to a
screen by name, and again whenever a plate's conditions are read (hit replies, summaries, the hits
channel, CSVs, exports, grids, follow-ups), so a link made before, or a channel made private since,
shows nothing it must not.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from bot.models import Inspection, Job, SavedScreen
from bot.screens.chemistry import Condition, PlateConditions
from bot.screens.messages import no_such_screen, screen_unchecked
from bot.slack.privacy import Privacy
from bot.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Named:
    """The screen a name gives a plate, or why none (said to the person)."""

    screen: SavedScreen | None
    why_not: str = ""


@dataclass
class PlateScreens:
    store: Store
    privacy: Privacy

    def usable(self, screen: SavedScreen, channel: str) -> bool | None:
        """Whether a plate of `channel` may use the screen; None when Slack could not say whether the
        screen's channel is public."""
        if screen.channel == channel:
            return True
        if self.store.channel_removed(screen.channel):
            return False
        private = self.privacy.membership.is_private(screen.channel)
        return None if private is None else not private

    def named(self, name: str, channel: str) -> Named:
        """The screen called `name` that a plate of `channel` may use: the channel's own, else a public
        channel's (the newest). A private channel's screen of that name is not named, and the answer is
        the same as when there is none."""
        own = self.store.screen_named(name, channel)
        if own:
            return Named(own)
        unchecked = False
        for screen in self.store.screens_named(name):
            verdict = self.usable(screen, channel)
            if verdict:
                return Named(screen)
            unchecked = unchecked or verdict is None
        return Named(None, screen_unchecked(name) if unchecked else no_such_screen(name))

    def of_plate(self, channel: str, plate_name: str) -> SavedScreen | None:
        """The screen a plate of `channel` uses, if it may use it."""
        screen = self.store.plate_screen(channel, plate_name)
        if screen is None or self.usable(screen, channel):
            return screen
        log.info("plate %s of channel %s is linked to screen %s of channel %s, which is private, gone or not known "
                 "to be public: its conditions are left out", plate_name, channel, screen.id, screen.channel)
        return None

    def conditions(self, inspection: Inspection, wells: Iterable[str] | None = None) -> PlateConditions | None:
        """The conditions of an inspection's plate (only those of `wells` when given), or None when it has no
        screen it may use."""
        screen = self.of_plate(inspection.channel, inspection.plate_name)
        return self.store.plate_conditions(screen, wells) if screen else None

    def image_condition(self, image_job: Job) -> tuple[str, Condition] | None:
        """(the screen's name, the condition) of a plate image's well, when its plate's screen has one."""
        well = image_job.payload.get("well") if image_job.inspection_id else None
        inspection = self.store.inspection(image_job.inspection_id) if well and image_job.inspection_id else None
        plate = self.conditions(inspection, [well]) if inspection and well else None
        condition = plate.of(well) if plate and well else None
        return (plate.screen, condition) if plate and condition else None

    def with_conditions(self, pages: Iterable[list[dict[str, Any]]]) -> Iterator[list[dict[str, Any]]]:
        """Export pages with each plate image's `screen` and `condition` (short form) added ("" for none);
        each inspection's screen is read once."""
        known: dict[int, PlateConditions | None] = {}
        for page in pages:
            for record in page:
                inspection_id, well = record.get("inspection_id"), record.get("well")
                if inspection_id is not None and inspection_id not in known:
                    inspection = self.store.inspection(inspection_id)
                    known[inspection_id] = self.conditions(inspection) if inspection else None
                plate = known.get(inspection_id) if inspection_id is not None else None
                record["screen"] = plate.screen if plate else ""
                record["condition"] = (plate.short(well) or "") if plate else ""
            yield page
