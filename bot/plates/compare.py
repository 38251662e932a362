"""What changed between two inspections of a plate: new hits first, the news a lab is waiting for. Pure.

A hit is a drop whose category is one of `hits` (bot/categories.py: `hit = true` in categories.toml).
With several hit categories, a drop going from one to another (microcrystals -> crystals) stays a hit:
it is an other change, neither new nor lost."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Mapping

from bot.plates.wells import Position

Labels = Mapping[Position, str]  # category by (well, drop)


@dataclass(frozen=True)
class Change:
    position: Position
    before: str | None  # None: this drop had no call last time
    after: str


@dataclass(frozen=True)
class Comparison:
    new_hits: tuple[Change, ...]  # a hit now, not before
    lost_hits: tuple[Change, ...]  # a hit before, no hit now
    other_changes: tuple[Change, ...]  # one category to another, not from or to a hit alone
    hits_not_classified_before: tuple[Change, ...] = ()  # a hit now; imaged last time, but without a call

    def __bool__(self) -> bool:
        return bool(self.new_hits or self.lost_hits or self.other_changes or self.hits_not_classified_before)


def compare(previous: Labels, current: Labels, not_classified_before: Collection[Position] = (), *,
            hits: Collection[str]) -> Comparison:
    """Changes per (well, drop), in plate order. A drop without a call now (unreadable, missing from
    the zip) is no change: only what was seen this time can say a crystal is gone. A drop imaged last
    time without a call (`not_classified_before`: its model call failed, or its image was unreadable)
    says nothing of then: a hit there now is listed apart, never as a new hit."""
    changes = sorted((Change(p, previous.get(p), label) for p, label in current.items() if previous.get(p) != label),
                     key=lambda change: change.position)
    unknown = frozenset(not_classified_before) - frozenset(previous)
    gained = [c for c in changes if c.after in hits and c.before not in hits]
    return Comparison(
        new_hits=tuple(c for c in gained if c.position not in unknown),
        lost_hits=tuple(c for c in changes if c.before in hits and c.after not in hits),
        other_changes=tuple(c for c in changes if c.before is not None and (c.before in hits) == (c.after in hits)),
        hits_not_classified_before=tuple(c for c in gained if c.position in unknown),
    )
