"""What changed between two inspections of a plate: new hits first, the news a lab is waiting for. Pure."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Mapping

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
    hits_not_classified_before: tuple[Change, ...] = ()  # crystals now; imaged last time, but without a call

    def __bool__(self) -> bool:
        return bool(self.new_hits or self.lost_hits or self.other_changes or self.hits_not_classified_before)


def compare(previous: Labels, current: Labels, not_classified_before: Collection[Position] = ()) -> Comparison:
    """Changes per (well, drop), in plate order. A drop without a call now (unreadable, missing from
    the zip) is no change: only what was seen this time can say a crystal is gone. A drop imaged last
    time without a call (`not_classified_before`: its model call failed, or its image was unreadable)
    says nothing of then: crystals there now are listed apart, never as a new hit."""
    changes = sorted((Change(p, previous.get(p), label) for p, label in current.items() if previous.get(p) != label),
                     key=lambda change: change.position)
    unknown = frozenset(not_classified_before) - frozenset(previous)
    return Comparison(
        new_hits=tuple(c for c in changes if c.after == HIT and c.position not in unknown),
        lost_hits=tuple(c for c in changes if c.before == HIT),
        other_changes=tuple(c for c in changes if c.before is not None and HIT not in (c.before, c.after)),
        hits_not_classified_before=tuple(c for c in changes if c.after == HIT and c.position in unknown),
    )
