"""bot.budget: spend and budget -> what the bot may do; calendar months in UTC."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot.budget import BudgetState, budget_state, month_name, month_start


@pytest.mark.parametrize(("spent", "budget", "state"), [
    (0.0, None, BudgetState.OK),
    (1e9, None, BudgetState.OK),  # no budget, no limit
    (0.0, 10.0, BudgetState.OK),
    (7.99, 10.0, BudgetState.OK),
    (8.0, 10.0, BudgetState.WARNING),
    (9.99, 10.0, BudgetState.WARNING),
    (10.0, 10.0, BudgetState.SPENT),
    (12.5, 10.0, BudgetState.SPENT),
    (0.0, 0.0, BudgetState.SPENT),  # a budget of 0: no model calls at all
])
def test_budget_state(spent, budget, state):
    assert budget_state(spent, budget) is state


def test_a_month_starts_at_midnight_utc_on_the_first():
    late_on_the_last = datetime(2026, 11, 30, 23, 59, 59, tzinfo=timezone.utc).timestamp()
    assert month_start(late_on_the_last) == datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp()
    assert month_name(late_on_the_last) == "2026-11"
    assert month_name(late_on_the_last + 1) == "2026-12"
    assert month_start(late_on_the_last + 1) == late_on_the_last + 1
