"""What changed between two inspections of a plate: new hits first, the news a lab is waiting for. Pure."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from bot.plates.wells import Position

HIT = "crystals"  # the category that makes a drop a hit

Labels = Mapping[Position, str]  # category by (well, drop)


@dataclass(frozen=True)
class Change:
    position: Position
    before: str | None  # None: this drop had no call last time
    after: str


@dataclass(frozen=True)
class Comparison:
    new_hits: tuple[Change, ...]  # crystals now, not before
    lost_hits: tuple[Change, ...]  # crystals before, another category now
    other_changes: tuple[Change, ...]  # one category to another, neither crystals

    def __bool__(self) -> bool:
        return bool(self.new_hits or self.lost_hits or self.other_changes)


def compare(previous: Labels, current: Labels) -> Comparison:
    """Changes per (well, drop), in plate order. A drop without a call now (unreadable, missing from
    the zip) is no change: only what was seen this time can say a crystal is gone."""
    changes = sorted((Change(p, previous.get(p), label) for p, label in current.items() if previous.get(p) != label),
                     key=lambda change: change.position)
    return Comparison(
        new_hits=tuple(c for c in changes if c.after == HIT),
        lost_hits=tuple(c for c in changes if c.before == HIT),
        other_changes=tuple(c for c in changes if c.before is not None and HIT not in (c.before, c.after)),
    )
