"""bot.dashboard: counts per week and per period, the chart PNG, and the home view's blocks. Pure."""
from __future__ import annotations

import io
from pathlib import Path
from datetime import date, datetime, timezone

from PIL import Image as PILImage

from bot.agreement import agreement
from bot.dashboard import (DAY, HOME_BLOCK_LIMIT, Dashboard, WeeklyCounts, chart_moment, chart_png, chart_since,
                           counts_since, home_view, weekly_counts)
from bot.models import MonthSpend
from bot.prompt import load_categories
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


def rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def bottom_up(png: bytes, categories) -> list[str]:
    """The categories of the fullest bar from the axis up, by their colours."""
    by_colour = {rgb(c.colour): c.name for c in categories}
    with PILImage.open(io.BytesIO(png)) as picture:
        pixels = picture.convert("RGB")
        columns = [[by_colour.get(pixels.getpixel((x, y))) for y in range(pixels.height - 1, -1, -1)]
                   for x in range(pixels.width)]
    fullest = max(columns, key=lambda column: sum(name is not None for name in column))
    return list(dict.fromkeys(name for name in fullest if name))


def test_the_chart_is_a_png_with_bars_in_each_categorys_colour_hits_at_the_bottom(categories):
    weekly = WeeklyCounts((date(2026, 11, 9), date(2026, 11, 16)),
                          {"clear": (3, 2), "crystals": (1, 4), "precipitate": (0, 2), "other": (0, 0)})
    png = chart_png(weekly, categories)
    with PILImage.open(io.BytesIO(png)) as picture:
        assert picture.format == "PNG" and picture.size[0] > picture.size[1] >= 300
    assert bottom_up(png, categories) == ["crystals", "clear", "precipitate"]  # the plate map's colours


def test_a_lab_s_chart_has_its_hit_categories_at_the_bottom_of_each_bar():
    lab = load_categories(Path(__file__).resolve().parent.parent / "prompts-labscores")
    names = [c.name for c in lab]
    weekly = WeeklyCounts((date(2026, 11, 9),), {name: (2 + number,) for number, name in enumerate(names)})
    assert bottom_up(chart_png(weekly, lab), lab) == [
        "microcrystals", "crystals", "clear", "precipitate", "phase separation", "skin"]


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
