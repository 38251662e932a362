"""A plate's crystal hits per inspection as a small bar chart (PNG), for `/crystals plate NAME`. Pure
(matplotlib's Agg canvas, imported when a chart is drawn).

Each inspection is a bar at its day: the hits it shares with the inspection before in vermillion, its
new hits on top in the new-hit blue, the total above; the date under the day.
"""
from __future__ import annotations

import io
from typing import Sequence

from bot.plates.history import InspectionRow, date_text
from bot.plates.platemap import HIGHLIGHT, MATPLOTLIB_LOCK, NEW_RING


def hits_chart_png(plate: str, rows: Sequence[InspectionRow]) -> bytes:
    with MATPLOTLIB_LOCK:
        return _draw(plate, rows)


def _draw(plate: str, rows: Sequence[InspectionRow]) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(max(5.0, 1.0 + 0.7 * len(rows)), 3.4), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    places = range(len(rows))
    kept = [len(row.hits) - len(row.new_hits) for row in rows]
    new = [len(row.new_hits) for row in rows]
    axes.bar(places, kept, color=HIGHLIGHT, width=0.6, label="hits seen before")
    axes.bar(places, new, bottom=kept, color=NEW_RING, width=0.6, label="new hits")
    for place, row in zip(places, rows):
        axes.annotate(str(len(row.hits)), (place, len(row.hits)), ha="center", va="bottom", fontsize=9,
                      xytext=(0, 2), textcoords="offset points", weight="bold")
    axes.set_xticks(list(places), [f"day {row.day}\n{date_text(row.inspection.taken_at)[5:]}" for row in rows],
                    fontsize=8)
    axes.set_ylabel("crystal hits", fontsize=9)
    axes.set_ylim(0, max([len(row.hits) for row in rows] + [1]) * 1.25)
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.spines[["top", "right"]].set_visible(False)
    axes.set_title(f"Plate {plate}: crystal hits per inspection", fontsize=11)
    axes.legend(loc="upper left", frameon=False, fontsize=8)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png", metadata={"Software": None})
    return out.getvalue()
