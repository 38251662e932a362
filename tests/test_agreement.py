"""bot.agreement: the team's latest verdicts per call -> reviewed, confirmed and corrected per category."""
from __future__ import annotations

from dataclasses import replace

from bot.agreement import Agreement, CategoryAgreement, HitAgreement, agreement, hit_agreement
from bot.models import Feedback, ReviewedCall
from tests.test_store import CALL

CATEGORIES = ("clear", "crystals", "precipitate", "other")


def reviewed(said: str, team: str, verdict: str = "") -> ReviewedCall:
    verdict = verdict or ("confirmed" if said == team else "corrected")
    return ReviewedCall(1, "A1.png", "C1", replace(CALL, label=said), Feedback("U1", verdict, team))


def test_counts_per_category_and_the_corrections_most_frequent_first():
    result = agreement([reviewed("crystals", "crystals"), reviewed("crystals", "precipitate"),
                        reviewed("crystals", "precipitate"), reviewed("clear", "other"),
                        reviewed("clear", "clear")], CATEGORIES)
    assert result.by_category == (CategoryAgreement("clear", 2, 1), CategoryAgreement("crystals", 3, 1),
                                  CategoryAgreement("precipitate", 0, 0), CategoryAgreement("other", 0, 0))
    assert result.corrections == (("crystals", "precipitate", 2), ("clear", "other", 1))
    assert (result.reviewed, result.confirmed) == (5, 2)
    assert result.by_category[1].corrected == 2 and round(result.by_category[1].share_confirmed, 2) == 0.33


def test_a_correction_to_the_label_the_bot_said_is_a_confirmation():
    result = agreement([reviewed("other", "other", verdict="corrected")], CATEGORIES)
    assert result.by_category[3] == CategoryAgreement("other", 1, 1) and result.corrections == ()


def test_a_label_that_is_no_category_any_more_comes_last_and_nothing_reviewed_is_empty():
    result = agreement([reviewed("skin", "precipitate")], CATEGORIES)
    assert result.by_category[-1] == CategoryAgreement("skin", 1, 0)
    assert agreement([], CATEGORIES) == Agreement(tuple(CategoryAgreement(c, 0, 0) for c in CATEGORIES), ())


def test_a_hit_corrected_to_another_hit_category_is_kept_as_a_hit_and_missed_hits_are_counted():
    labels = ("clear", "skin", "microcrystals", "crystals")
    result = agreement([reviewed("microcrystals", "crystals"), reviewed("crystals", "crystals"),
                        reviewed("crystals", "skin"), reviewed("clear", "microcrystals"), reviewed("skin", "clear")],
                       labels)
    assert hit_agreement(result, {"microcrystals", "crystals"}) == HitAgreement(reviewed=3, kept=2, missed=1)
    assert hit_agreement(result, {"crystals"}) == HitAgreement(reviewed=2, kept=1, missed=1)
