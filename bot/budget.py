"""The monthly model budget: this month's spend and MONTHLY_BUDGET_USD -> what the bot may do. Pure.

Months are calendar months in UTC. Below WARN_SHARE of the budget the bot works as usual; from there
it warns the channel once; once the spend reaches the budget it calls the model no more this month
(answers it has already stored still work).
"""
from __future__ import annotations

from datetime import datetime, timezone
from enum import Enum

WARN_SHARE = 0.8


class BudgetState(Enum):
    OK = "ok"
    WARNING = "warning"  # WARN_SHARE of the budget or more is spent
    SPENT = "spent"  # the budget is reached: no more model calls this month


def budget_state(spent_usd: float, budget_usd: float | None) -> BudgetState:
    """No budget (None) never stops the bot."""
    if budget_usd is None:
        return BudgetState.OK
    if spent_usd >= budget_usd:
        return BudgetState.SPENT
    return BudgetState.WARNING if spent_usd >= WARN_SHARE * budget_usd else BudgetState.OK


def month_start(now: float) -> float:
    """The Unix time at which the UTC calendar month of `now` began."""
    moment = datetime.fromtimestamp(now, timezone.utc)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()


def month_name(now: float) -> str:
    """`2026-11`: the month of `now`, in UTC."""
    return datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m")
