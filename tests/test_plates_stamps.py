"""bot.plates.stamps: what a date and time stamp in a name says."""
from __future__ import annotations

from datetime import datetime

import pytest

from bot.plates.stamps import stamp_times


@pytest.mark.parametrize(("text", "when"), [
    ("plate42_2026-12-01_0930.zip", datetime(2026, 12, 1, 9, 30)),
    ("12345_A01_1_Vis_20261126_093000.jpg", datetime(2026, 11, 26, 9, 30)),
    ("RI1000-0042_E07_2_2026-11-26_09-30-15.jpg", datetime(2026, 11, 26, 9, 30, 15)),
    ("plate42_2026-11-26T09:30:00Z.zip", datetime(2026, 11, 26, 9, 30)),
    ("B4_01-12-2026.jpg", datetime(2026, 12, 1)),  # day first
    ("Lysozyme screen_26Nov2026.zip", datetime(2026, 11, 26)),
    ("plate7 nov-26-2026", datetime(2026, 11, 26)),
    ("plate7_26-nov-26", datetime(2026, 11, 26)),
])
def test_a_stamp_says_when(text: str, when: datetime) -> None:
    assert stamp_times(text) == [when]


@pytest.mark.parametrize("text", ["plate42.zip", "10:30", "2026-02-30", "12345_A01.jpg", "X0000158620361202008111512"])
def test_no_date_no_time(text: str) -> None:
    assert stamp_times(text) == []


def test_every_stamp_in_order() -> None:
    assert stamp_times("2026-11-26/plate42_2026-12-01.zip") == [datetime(2026, 11, 26), datetime(2026, 12, 1)]
