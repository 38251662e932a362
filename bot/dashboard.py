"""The App Home dashboard: the numbers, the weekly chart (a PNG) and the home view's blocks. Pure.

The chart shows weeks from Monday to Sunday (UTC), the current one so far, so a lab sees it from its
first day. Slack shows it only once it is uploaded, so it counts the calls up to one moment a day per
person (`chart_moment`): the first time that person opens the Home tab on a day (UTC). It is drawn at
each opening and shared again only when the picture changed: once a day for new calls, and at once
when what the person may see changed (the calls up to that moment are then others).
"""
from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable, Mapping, Sequence

from bot.agreement import Agreement
from bot.models import MonthSpend
from bot.prompt import Category
from bot.render import (SECTION_LIMIT, Blocks, RecentCall, RecentPlate, agreement_text, clip, escape, percent,
                        recent_plate_line, spend_text)

DAY = 86_400.0
CHART_WEEKS = 12  # bars: the 11 whole weeks before this one, and this week so far
HOME_BLOCK_LIMIT = 100
REMOVED_COLOUR = "#bdbdbd"  # a category without a colour of its own (a stand-in for a removed one)

Labelled = tuple[float, str]  # (when the call was asked for, its label)


@dataclass(frozen=True)
class WeeklyCounts:
    weeks: tuple[date, ...]  # each week's Monday, oldest first; the last is the current week, so far
    by_label: Mapping[str, tuple[int, ...]]  # calls per week, in the order of `weeks`

    @property
    def total(self) -> int:
        return sum(sum(counts) for counts in self.by_label.values())


@dataclass(frozen=True)
class Dashboard:
    recent: Sequence[RecentCall]
    last_7_days: Mapping[str, int]
    last_30_days: Mapping[str, int]
    plates: Sequence[RecentPlate]
    agreement: Agreement
    spend: MonthSpend
    notes: Sequence[str] = ()  # what the person is not shown (bot/visibility.py), under the counts
    service: str = ""  # the model service and the queue (bot/status.py), last


def monday(moment: float) -> date:
    day = datetime.fromtimestamp(moment, timezone.utc).date()
    return day - timedelta(days=day.weekday())


def chart_since(now: float, weeks: int = CHART_WEEKS) -> float:
    """The start of the oldest week the chart shows."""
    first = monday(now) - timedelta(weeks=weeks - 1)
    return datetime(first.year, first.month, first.day, tzinfo=timezone.utc).timestamp()


def weekly_counts(labelled: Iterable[Labelled], labels: Sequence[str], now: float,
                  weeks: int = CHART_WEEKS) -> WeeklyCounts:
    """Calls per label in each of the last `weeks` weeks, the current one up to `now`."""
    this_week = monday(now)
    mondays = tuple(this_week - timedelta(weeks=back) for back in range(weeks - 1, -1, -1))
    counts = Counter((monday(moment), label) for moment, label in labelled if moment <= now)
    return WeeklyCounts(mondays, {label: tuple(counts[(week, label)] for week in mondays) for label in labels})


def chart_moment(drawn_at: float | None, now: float) -> float:
    """Up to when a person's chart counts calls: the moment it was drawn first today (UTC), else now.
    New calls change the picture (and so its upload) at most once a day."""
    if drawn_at is not None and _utc_day(drawn_at) == _utc_day(now):
        return drawn_at
    return now


def _utc_day(moment: float) -> date:
    return datetime.fromtimestamp(moment, timezone.utc).date()


def counts_since(labelled: Iterable[Labelled], since: float) -> dict[str, int]:
    return dict(Counter(label for moment, label in labelled if moment >= since))


def chart_png(counts: WeeklyCounts, categories: Sequence[Category]) -> bytes:
    """Stacked bars: calls per category per week in the plate map's colours, the hit categories at the
    bottom (the hits are what people compare week by week), each week's total on top and its Monday's
    date below; the last bar, the current week so far, hatched and labelled so."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 3.6), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = range(len(counts.weeks))
    bottom = [0] * len(counts.weeks)
    hits_first = sorted(categories, key=lambda category: not category.hit)  # hits on the axis, in their order
    for category in hits_first:
        values = counts.by_label.get(category.name, (0,) * len(counts.weeks))
        bars = axes.bar(positions, values, bottom=bottom, color=category.colour or REMOVED_COLOUR,
                        label=category.name, width=0.75, edgecolor="#555555", linewidth=0.5)
        bars[-1].set_hatch("///")
        bottom = [b + v for b, v in zip(bottom, values)]
    for position, total in zip(positions, bottom):
        if total:
            axes.annotate(str(total), (position, total), ha="center", va="bottom", fontsize=8,
                          xytext=(0, 2), textcoords="offset points")
    ticks = [week.strftime("%d %b") for week in counts.weeks]
    ticks[-1] += "\nso far"
    axes.set_xticks(list(positions), ticks, fontsize=8)
    axes.set_xlabel("week starting (UTC)", fontsize=9)
    axes.set_ylabel("calls", fontsize=9)
    axes.set_ylim(0, max(max(bottom, default=0), 1) * 1.15)
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.spines[["top", "right"]].set_visible(False)
    axes.set_title(f"Calls per category, last {len(counts.weeks)} weeks (this week so far)", fontsize=11)
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=9, reverse=True)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def home_view(board: Dashboard, categories: Sequence[Category], chart_file_id: str | None) -> dict[str, Any]:
    """The Home tab: recent calls, counts, the chart, plates, the team's agreement, the spend and the model
    service's state with the queue."""
    blocks: Blocks = [{"type": "header", "text": {"type": "plain_text", "text": "Find the Crystals"}},
                      _section(_counts_text(board, categories))]
    if board.notes:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": note} for note in board.notes]})
    if chart_file_id:
        blocks.append({"type": "image", "slack_file": {"id": chart_file_id},
                       "alt_text": "Bar chart of the bot's calls per category in each of the last weeks, "
                                   "this week so far",
                       "title": {"type": "plain_text", "text": "Calls per category per week"}})
    blocks += [{"type": "divider"}, _section(_recent_text(board.recent, categories)),
               _section(_plates_text(board.plates, categories))]
    if board.agreement.reviewed:
        blocks.append(_section(agreement_text(board.agreement, categories)))
    else:
        blocks.append(_section("*Agreement with the team*\nNo call has been confirmed or corrected yet: use the "
                               "buttons under a call."))
    blocks.append(_section(spend_text(board.spend)))
    if board.service:
        blocks.append(_section(board.service))
    return {"type": "home", "blocks": blocks[:HOME_BLOCK_LIMIT]}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_LIMIT)}}


def _counts_text(board: Dashboard, categories: Sequence[Category]) -> str:
    lines = [f"• {c.emoji} {c.name}: {board.last_7_days.get(c.name, 0)} · {board.last_30_days.get(c.name, 0)}"
             for c in categories]
    return (f"*Calls in the last 7 days · 30 days* ({sum(board.last_7_days.values())} · "
            f"{sum(board.last_30_days.values())})\n" + "\n".join(lines))


def _recent_text(recent: Sequence[RecentCall], categories: Sequence[Category]) -> str:
    if not recent:
        return "*Recent calls*\nNo images classified yet: drop some into a channel I am in."
    emoji = {c.name: c.emoji for c in categories}
    lines = [f"• {emoji.get(item.call.label, '')} *{item.call.label}* ({percent(item.call.confidence)}) "
             f"<{item.permalink}|{escape(item.job.file_name).replace('|', '/')}> in <#{item.job.channel}>"
             for item in recent if item.call]
    return "*Recent calls*\n" + "\n".join(lines)


def _plates_text(plates: Sequence[RecentPlate], categories: Sequence[Category]) -> str:
    if not plates:
        return "*Recent plates*\nNo plates yet: drop a zip of a plate's images into a channel I am in."
    return "*Recent plates*\n" + "\n".join(f"{recent_plate_line(item, categories)} in <#{item.inspection.channel}>"
                                           for item in plates)
