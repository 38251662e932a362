"""bot.dashboard: counts per week and per period, the chart PNG, and the home view's blocks. Pure."""
from __future__ import annotations

import io
from datetime import date, datetime, timezone

from PIL import Image as PILImage

from bot.agreement import agreement
from bot.dashboard import (DAY, HOME_BLOCK_LIMIT, Dashboard, WeeklyCounts, chart_moment, chart_png, chart_since,
                           counts_since, home_view, weekly_counts)
from bot.models import MonthSpend
from tests.test_agreement import reviewed
from tests.test_render import categories  # noqa: F401 (fixture)

LABELS = ("clear", "crystals", "precipitate", "other")
NOW = datetime(2026, 11, 26, 12, tzinfo=timezone.utc).timestamp()  # a Thursday


def test_weekly_counts_run_from_monday_and_end_with_the_current_week_so_far():
    labelled = [(NOW, "crystals"), (NOW - 4 * DAY, "crystals"), (NOW - 5 * DAY, "clear"),
                (NOW - 11 * DAY, "clear"), (NOW - 200 * DAY, "other")]
    weekly = weekly_counts(labelled, LABELS, NOW, weeks=3)
    assert weekly.weeks == (date(2026, 11, 9), date(2026, 11, 16), date(2026, 11, 23))
    assert weekly.by_label["crystals"] == (0, 1, 1)  # Sunday 22 Nov; today
    assert weekly.by_label["clear"] == (1, 1, 0) and weekly.total == 4
    assert chart_since(NOW, weeks=3) == datetime(2026, 11, 9, tzinfo=timezone.utc).timestamp()


def test_the_chart_counts_up_to_the_moment_it_was_drawn_first_today():
    drawn = datetime(2026, 11, 26, 0, 0, 1, tzinfo=timezone.utc).timestamp()
    assert chart_moment(None, NOW) == NOW  # never drawn for this person
    assert chart_moment(drawn, NOW) == drawn
    assert chart_moment(drawn, datetime(2026, 11, 26, 23, 59, 59, tzinfo=timezone.utc).timestamp()) == drawn
    tomorrow = datetime(2026, 11, 27, tzinfo=timezone.utc).timestamp()
    assert chart_moment(drawn, tomorrow) == tomorrow
    assert chart_moment(drawn - 2, drawn) == drawn  # drawn 25 Nov, 23:59:59


def test_weekly_counts_leave_out_calls_after_the_moment():
    weekly = weekly_counts([(NOW - DAY, "clear"), (NOW + 1, "clear")], LABELS, NOW, weeks=1)
    assert weekly.by_label["clear"] == (1,)


def test_counts_since_a_moment():
    assert counts_since([(NOW, "crystals"), (NOW - 8 * DAY, "clear"), (NOW - DAY, "crystals")], NOW - 7 * DAY) == \
        {"crystals": 2}


def test_the_chart_is_a_png_with_bars_in_each_categorys_colour(categories):
    weekly = WeeklyCounts((date(2026, 11, 9), date(2026, 11, 16)),
                          {"clear": (3, 0), "crystals": (1, 4), "precipitate": (0, 2), "other": (0, 0)})
    with PILImage.open(io.BytesIO(chart_png(weekly, categories))) as picture:
        assert picture.format == "PNG" and picture.size[0] > picture.size[1] >= 300
        colours = {colour for _, colour in picture.convert("RGB").getcolors(1 << 16)}
    assert {(0xd6, 0x27, 0x28), (0x9e, 0xca, 0xe1), (0x8c, 0x6d, 0x31)} <= colours  # crystals, clear, precipitate


def test_the_home_view_stays_within_slacks_limits_and_says_what_to_do_when_empty(categories):
    board = Dashboard([], {}, {}, [], agreement([], LABELS), MonthSpend("2026-11", 0.0, {}, None))
    view = home_view(board, categories, None)
    text = "\n".join(b["text"]["text"] for b in view["blocks"] if b["type"] == "section")
    assert view["type"] == "home" and len(view["blocks"]) <= HOME_BLOCK_LIMIT
    assert "No images classified yet" in text and "No plates yet" in text and "use the buttons under a call" in text
    assert not [b for b in view["blocks"] if b["type"] == "image"]

    verdicts = agreement([reviewed("crystals", "clear")] * 3, LABELS)
    view = home_view(Dashboard([], {"crystals": 2}, {"crystals": 5}, [], verdicts, board.spend), categories, "F9")
    (image,) = [b for b in view["blocks"] if b["type"] == "image"]
    assert image["slack_file"] == {"id": "F9"} and image["alt_text"] and "image_url" not in image
    assert "crystals: 2 · 5" in str(view) and "• crystals → clear: 3" in str(view)
