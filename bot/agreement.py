"""How far the team agrees with the bot: per category, the calls it reviewed, confirmed and corrected,
and what it corrected them to. Pure.

A call counts once, with the team's latest verdict. It is confirmed when the label the team settled on
is the one the bot said (a "correction" to the same label is a confirmation), corrected otherwise.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Collection, Iterable, Sequence

from bot.models import ReviewedCall


@dataclass(frozen=True)
class CategoryAgreement:
    category: str  # what the bot said
    reviewed: int
    confirmed: int

    @property
    def corrected(self) -> int:
        return self.reviewed - self.confirmed

    @property
    def share_confirmed(self) -> float:
        return self.confirmed / self.reviewed if self.reviewed else 0.0


@dataclass(frozen=True)
class Agreement:
    by_category: tuple[CategoryAgreement, ...]  # every category, in the prompt's order
    corrections: tuple[tuple[str, str, int], ...]  # (said, corrected to, calls), most frequent first

    @property
    def reviewed(self) -> int:
        return sum(row.reviewed for row in self.by_category)

    @property
    def confirmed(self) -> int:
        return sum(row.confirmed for row in self.by_category)


def agreement(reviewed: Iterable[ReviewedCall], categories: Sequence[str]) -> Agreement:
    """The agreement over these reviewed calls; labels that are no category (any more) come last."""
    pairs = [(item.call.label, item.feedback.label) for item in reviewed]
    said = Counter(bot_label for bot_label, _ in pairs)
    confirmed = Counter(bot_label for bot_label, team_label in pairs if bot_label == team_label)
    others = sorted(set(said) - set(categories))
    by_category = tuple(CategoryAgreement(name, said[name], confirmed[name]) for name in [*categories, *others])
    changed = Counter((bot_label, team_label) for bot_label, team_label in pairs if bot_label != team_label)
    corrections = tuple((bot_label, team_label, n) for (bot_label, team_label), n
                        in sorted(changed.items(), key=lambda item: (-item[1], item[0])))
    return Agreement(by_category, corrections)


@dataclass(frozen=True)
class HitAgreement:
    """Hits as the team sees them, whatever the hit category: with several hit categories, a correction
    from one to another (microcrystals -> crystals) still keeps a hit."""

    reviewed: int  # calls the bot called hits that the team reviewed
    kept: int  # of those, the team's label is a hit too
    missed: int  # calls the bot did not call hits, corrected by the team to a hit


def hit_agreement(agreement: Agreement, hits: Collection[str]) -> HitAgreement:
    kept_across = sum(n for said, right, n in agreement.corrections if said in hits and right in hits)
    said_hits = [row for row in agreement.by_category if row.category in hits]
    return HitAgreement(reviewed=sum(row.reviewed for row in said_hits),
                        kept=sum(row.confirmed for row in said_hits) + kept_across,
                        missed=sum(n for said, right, n in agreement.corrections if said not in hits and right in hits))
