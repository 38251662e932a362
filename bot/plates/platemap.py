"""The plate map: a plate's calls drawn as its grid of wells, as PNG bytes. Pure (matplotlib's Agg
canvas, no pyplot state).

Read at a glance on a laptop and a phone: hits are the only saturated colours (MARCO's crystals with a
star); new hits carry a ring as well; every category has its own letter besides its colour (Okabe-Ito
colours, safe for colour-blind readers; categories.toml may set both, bot/categories.py chooses the
defaults); wells without an image are plain grey.
"""
from __future__ import annotations

import io
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping, Sequence

from bot.categories import STAR, Category, hit_labels, ink
from bot.plates.wells import PLATE_SHAPES, ROWS, Position, Well, plate_size

if TYPE_CHECKING:  # matplotlib (about 40 MB) is imported only when a map is drawn
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch


@dataclass(frozen=True)
class Style:
    fill: str
    mark: str  # drawn in the drop, so the map does not rely on colour alone
    ink: str = "#1a1a1a"


REMOVED_FILL = "#d9d9d9"  # a label no category has any more (removed from categories.toml since)
HIGHLIGHT = "#d55e00"  # the hit count in the title
UNREADABLE = Style("#ffffff", "!", "#b00000")
NOT_CLASSIFIED = Style("#ffffff", "–", "#555555")  # the model call failed: Retry failed wells tries it again
NO_IMAGE = "#e4e4e4"
NEW_RING = "#0072b2"  # blue
DPI = 100
INCH_PER_WELL = {12: 0.78, 24: 0.56, 48: 0.36}  # by columns: 96 wells 1,060 px wide; 384: 1,460 px; 1536: 1,850 px
LABEL_SIZE = {12: 13, 24: 10, 48: 7.5}  # row and column names, in points
MATPLOTLIB_LOCK = threading.Lock()  # matplotlib is not thread-safe; job workers may finish plates at once


@dataclass(frozen=True)
class PlateView:
    """What the map shows: one inspection of a plate."""

    name: str
    taken: str  # when it was imaged (or uploaded), as shown
    labels: Mapping[Position, str]  # category by (well, drop)
    unreadable: frozenset[Position] = frozenset()
    not_classified: frozenset[Position] = frozenset()
    new_hits: frozenset[Position] = frozenset()
    size: int | None = None  # 96, 384 or 1536; None: from the wells
    categories: Sequence[Category] = field(kw_only=True)  # legend order, looks and which are hits

    @property
    def imaged(self) -> list[Position]:
        """Every drop with an image: classified, unreadable or not classified."""
        return [*self.labels, *self.unreadable, *self.not_classified]

    @property
    def well_count(self) -> int:
        return self.size or plate_size(self.imaged)

    @property
    def drops(self) -> int:
        return max((p.drop for p in self.imaged), default=1)


@dataclass(frozen=True)
class _Geometry:
    rows: int
    columns: int
    drops: int

    @property
    def inch_per_well(self) -> float:
        return INCH_PER_WELL[self.columns]

    @property
    def label_size(self) -> float:
        return LABEL_SIZE[self.columns]


def plate_map_png(view: PlateView) -> bytes:
    """The map as PNG bytes (under 0.5 s for 96 wells, under 1 s for 384, about 1.5 s for 1536, on one core)."""
    with MATPLOTLIB_LOCK:
        return _draw(view)


def _draw(view: PlateView) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows, columns = PLATE_SHAPES[view.well_count]
    geometry = _Geometry(rows, columns, view.drops)
    styles = _styles(view)
    width = columns * geometry.inch_per_well + 1.2
    height = rows * geometry.inch_per_well + 2.4
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0.6 / width, 1.15 / height, 1 - 1.0 / width, 1 - 2.0 / height))
    _draw_grid(axes, view, geometry, styles)
    _draw_titles(figure, view)
    _draw_legend(figure, view, styles, height)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def style_of(category: Category) -> Style:
    return Style(category.colour, category.letter, ink(category.colour))


def _styles(view: PlateView) -> dict[str, Style]:
    """Each category's style; a label that is no category any more is grey with its first letter."""
    styles = {category.name: style_of(category) for category in view.categories}
    removed = {label: Style(REMOVED_FILL, label[:1].upper() or "?") for label in view.labels.values()
               if label not in styles}
    return {**styles, **removed}


def _new_hit_style(view: PlateView, styles: dict[str, Style]) -> Style:
    """The legend's swatch for a new hit: the hit category's, or a plain one when there are several."""
    hits = sorted(hit_labels(view.categories))
    return styles[hits[0]] if len(hits) == 1 else Style("#ffffff", "")


def _draw_grid(axes, view: PlateView, geometry: _Geometry, styles: dict[str, Style]) -> None:
    from matplotlib.collections import PatchCollection

    axes.set_xlim(0, geometry.columns)
    axes.set_ylim(geometry.rows, 0)
    axes.set_aspect("equal")
    axes.set_axis_off()
    both_sides = geometry.columns >= 48  # on 1536 wells the names repeat on the right and at the bottom
    for column in range(1, geometry.columns + 1):
        for y, align in [(-0.12, "bottom"), *([(geometry.rows + 0.12, "top")] if both_sides else [])]:
            axes.text(column - 0.5, y, str(column), ha="center", va=align, fontsize=geometry.label_size, weight="bold")
    for row in range(geometry.rows):
        for x, align in [(-0.1, "right"), *([(geometry.columns + 0.1, "left")] if both_sides else [])]:
            axes.text(x, row + 0.5, ROWS[row], ha=align, va="center", fontsize=geometry.label_size, weight="bold")
    cells = [cell for row in range(geometry.rows) for column in range(1, geometry.columns + 1)
             for cell in _well_cells(view, Well(row, column), geometry, styles)]
    axes.add_collection(PatchCollection(
        [_box(c.x, c.y, c.width, c.height) for c in cells], match_original=False,
        facecolors=[c.style.fill if c.style else NO_IMAGE for c in cells],
        edgecolors=["#555555" if c.style else "none" for c in cells], linewidths=0.6))
    rings = [c for c in cells if c.new_hit]
    if rings:
        axes.add_collection(PatchCollection([_box(c.x, c.y, c.width, c.height) for c in rings],
                                            facecolors="none", edgecolors=NEW_RING, linewidths=3.2, zorder=3))
    _draw_marks(axes, [c for c in cells if c.style], geometry)


@dataclass(frozen=True)
class _Cell:
    x: float
    y: float
    width: float
    height: float
    style: Style | None  # None: no image
    new_hit: bool = False


def _well_cells(view: PlateView, well: Well, geometry: _Geometry, styles: dict[str, Style]) -> list[_Cell]:
    """One cell per drop side by side; a well without any image is one grey cell."""
    left, top, inner, gap = well.column - 1 + 0.07, well.row + 0.07, 0.86, 0.04
    drops = [_drop_style(view, Position(well, d), styles) for d in range(1, geometry.drops + 1)]
    if not any(drops):
        return [_Cell(left, top, inner, inner, None)]
    width = (inner - gap * (geometry.drops - 1)) / geometry.drops
    return [_Cell(left + i * (width + gap), top, width, inner, style, Position(well, i + 1) in view.new_hits)
            for i, style in enumerate(drops)]


def _draw_marks(axes, cells: list[_Cell], geometry: _Geometry) -> None:
    """Each category's mark in its drops: one scatter per mark, which draws fast."""
    drop_points = 72 * geometry.inch_per_well * 0.86 / max(geometry.drops, 1.5)
    for style in {c.style for c in cells if c.style}:
        mine = [c for c in cells if c.style == style]
        star = style.mark == STAR
        axes.scatter([c.x + c.width / 2 for c in mine], [c.y + c.height / 2 for c in mine],
                     marker="*" if star else rf"$\mathbf{{{style.mark}}}$", s=(drop_points * (0.75 if star else 0.5)) ** 2,
                     c=style.ink, linewidths=0, zorder=4)


def _box(x: float, y: float, width: float, height: float) -> FancyBboxPatch:
    from matplotlib.patches import FancyBboxPatch

    return FancyBboxPatch((x, y), width, height, boxstyle=f"round,pad=0,rounding_size={min(width, height) * 0.15}")


def _drop_style(view: PlateView, position: Position, styles: dict[str, Style]) -> Style | None:
    if position in view.unreadable:
        return UNREADABLE
    if position in view.not_classified:
        return NOT_CLASSIFIED
    label = view.labels.get(position)
    return styles[label] if label is not None else None


def _draw_titles(figure: Figure, view: PlateView) -> None:
    hits = sum(1 for label in view.labels.values() if label in hit_labels(view.categories))
    news = f" ({len(view.new_hits)} new)" if view.new_hits else ""
    figure.text(0.5, 1 - 0.12 / figure.get_figheight(), f"Plate {view.name}  ·  {view.taken}",
                ha="center", va="top", fontsize=18, weight="bold")
    figure.text(0.5, 1 - 0.5 / figure.get_figheight(),
                f"{hits} crystal hit{'s' if hits != 1 else ''}{news}  ·  {len(view.labels)} drops classified"
                f"{f'  ·  {len(view.not_classified)} not classified' if view.not_classified else ''}"
                f"{f'  ·  {len(view.unreadable)} unreadable' if view.unreadable else ''}",
                ha="center", va="top", fontsize=13, color=HIGHLIGHT if hits else "#333333", weight="bold")


def _draw_legend(figure: Figure, view: PlateView, styles: dict[str, Style], height: float) -> None:
    """One row under the grid: each category's swatch with its mark and count, then the other keys."""
    from matplotlib.patches import FancyBboxPatch

    counts = Counter(view.labels.values())
    names = [*(c.name for c in view.categories), *sorted(set(counts) - {c.name for c in view.categories})]
    items: list[tuple[Style | None, str, bool]] = [(styles[name], f"{name} {counts.get(name, 0)}", False)
                                                   for name in names]  # (swatch, text, ringed)
    if view.new_hits:
        items.append((_new_hit_style(view, styles), f"new hit {len(view.new_hits)}", True))
    if view.not_classified:
        items.append((NOT_CLASSIFIED, f"not classified {len(view.not_classified)}", False))
    if view.unreadable:
        items.append((UNREADABLE, f"unreadable {len(view.unreadable)}", False))
    if len({p.well for p in view.imaged}) < view.well_count:
        items.append((None, "no image", False))
    axes = figure.add_axes((0, 0.2 / height, 1, 0.55 / height))
    axes.set_axis_off()
    widths = [1.4 + 0.25 * len(text) for _, text, _ in items]
    inch_per_unit = min(0.4, 0.96 * figure.get_figwidth() / sum(widths))  # the same size on every map that fits
    half = figure.get_figwidth() / inch_per_unit / 2
    font = 12 * inch_per_unit / 0.4
    axes.set_xlim(-half, half)
    axes.set_ylim(0, 1)
    x = -sum(widths) * 0.5
    for (style, text, ring), item_width in zip(items, widths):
        axes.add_patch(FancyBboxPatch((x, 0.1), 0.8, 0.8, boxstyle="round,pad=0,rounding_size=0.1",
                                      facecolor=style.fill if style else NO_IMAGE,
                                      edgecolor=NEW_RING if ring else ("#555555" if style else "none"),
                                      linewidth=3 if ring else 0.6, transform=axes.transData))
        if style:
            axes.text(x + 0.4, 0.5, style.mark, ha="center", va="center", color=style.ink, fontsize=font, weight="bold")
        axes.text(x + 0.95, 0.5, text, ha="left", va="center", fontsize=font)
        x += item_width
