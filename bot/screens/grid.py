"""An optimisation grid around a hit: its main precipitant's concentration across the columns, its pH
(or a second component's concentration) down the rows, the hit's own condition in the middle. Pure,
computed from the parsed components (never by the model).

The main precipitant: a salt at 1 M or more (a high-salt condition), else the component with the
largest percentage (PEG, MPD, an alcohol), else the most concentrated component that is not the
buffer. The rows: the buffer's pH when a component carries one, else the next most concentrated
component. Concentrations step by a share of the hit's own (default 10 %: 20% PEG steps by 2%,
1.5 M salt by 0.15 M, rounded to two significant figures), pH by a fixed step (default 0.2). The
hit sits in the middle cell (just before the middle for an even count); a grid that would go below
a step's worth of precipitant, past 100 % or outside pH 0 to 14 is moved by whole steps, so the hit
stays on it.
"""
from __future__ import annotations

import csv
import io
import math
import textwrap
import threading
from dataclasses import dataclass, replace

from bot.plates.wells import LAYOUTS, Well
from bot.screens.chemistry import Component, Concentration, Condition, number_text, ph_text

HIGH_SALT_MOLAR = 1.0
DPI = 100
_MATPLOTLIB = threading.Lock()


class GridError(ValueError):
    """No grid can be made around this condition; str() says why."""


@dataclass(frozen=True)
class GridSize:
    rows: int
    columns: int

    def __str__(self) -> str:
        return f"{self.rows}x{self.columns}"

    @property
    def tray(self) -> str:
        """`24-well tray`, `96-well plate`, or `4 × 5 grid`."""
        wells = self.rows * self.columns
        if LAYOUTS.get(wells) == (self.rows, self.columns):
            return f"{wells}-well tray" if wells == 24 else f"{wells:,}-well plate"
        return f"{self.rows} × {self.columns} grid"


@dataclass(frozen=True)
class Axis:
    """What varies along the columns or the rows: a component's concentration, or the pH."""

    label: str  # `PEG 8000`, `pH`
    values: tuple[float, ...]
    unit: str  # `%`, ` M`, "" for the pH
    component: int  # the index of the component it changes
    is_ph: bool = False

    def text(self, value: float) -> str:
        return f"pH {ph_text(value)}" if self.is_ph else f"{number_text(value)}{self.unit}"

    def span(self) -> str:
        """`PEG 8000 14–24% (step 2%)`, `pH 4.6–5.2 (step 0.2)`."""
        step = number_text(self.values[1] - self.values[0]) if len(self.values) > 1 else "0"
        low, high = self.values[0], self.values[-1]
        if self.is_ph:
            return f"pH {ph_text(low)}–{ph_text(high)} (step {step})"
        return f"{self.label} {number_text(low)}–{number_text(high)}{self.unit} (step {step}{self.unit})"

    @property
    def heading(self) -> str:
        """The CSV column's name: `PEG 8000 (%)`, `pH`."""
        return "pH" if self.is_ph else f"{self.label} ({self.unit.strip()})"


@dataclass(frozen=True)
class Grid:
    well: str  # the hit's well on its plate
    condition: Condition  # the hit's
    columns: Axis
    rows: Axis
    hit: tuple[int, int]  # (row, column) of the hit's own condition

    def cell(self, row: int, column: int) -> Condition:
        """The condition of one cell: the hit's, with the two values of its row and column."""
        components = list(self.condition.components)
        for axis, value in ((self.columns, self.columns.values[column]), (self.rows, self.rows.values[row])):
            old = components[axis.component]
            if axis.is_ph:
                components[axis.component] = replace(old, ph=value)
            else:
                assert old.concentration is not None
                components[axis.component] = replace(old, concentration=replace(old.concentration, value=value))
        ph = self.rows.values[row] if self.rows.is_ph else self.condition.ph
        return Condition(", ".join(c.text() for c in components), tuple(components), ph)

    def well_of(self, row: int, column: int) -> str:
        return str(Well(row, column + 1))


def optimisation_grid(well: str, condition: Condition, size: GridSize, concentration_step: float,
                      ph_step: float) -> Grid:
    """The grid around a hit's condition; GridError when its components do not allow one.
    `concentration_step` is a share of the hit's own concentrations (0.1 for 10 %)."""
    main = main_precipitant(condition)
    if main is None:
        raise GridError("I could not read a precipitant with its concentration in this condition.")
    columns, hit_column = _concentration_axis(condition.components[main], main, size.columns, concentration_step)
    buffer = next((i for i, c in enumerate(condition.components) if c.ph is not None and i != main), None)
    if buffer is not None:
        values, hit_row = _steps(condition.components[buffer].ph or 0.0, ph_step, size.rows, 0.0, 14.0)
        rows = Axis("pH", values, "", buffer, is_ph=True)
    else:
        second = _most_concentrated([i for i in range(len(condition.components)) if i != main], condition)
        if second is None:
            raise GridError("it has one component I can vary and no buffer pH; a grid needs two.")
        rows, hit_row = _concentration_axis(condition.components[second], second, size.rows, concentration_step)
    return Grid(well, condition, columns, rows, (hit_row, hit_column))


def main_precipitant(condition: Condition) -> int | None:
    """The index of the component a grid varies first (see the module's docstring), or None."""
    components = condition.components
    salts = [i for i, c in enumerate(components)
             if c.concentration and (c.concentration.molar or 0) >= HIGH_SALT_MOLAR and c.ph is None]
    if salts:
        return max(salts, key=lambda i: components[i].concentration.molar or 0)  # type: ignore[union-attr]
    percents = [i for i, c in enumerate(components) if c.concentration and c.concentration.is_percent]
    if percents:
        return max(percents, key=lambda i: components[i].concentration.value)  # type: ignore[union-attr]
    return _most_concentrated([i for i, c in enumerate(components) if c.ph is None], condition)


def _most_concentrated(indexes: list[int], condition: Condition) -> int | None:
    """Of these components, the one with the largest concentration (percentages before molarities)."""
    def strength(i: int) -> tuple[bool, float]:
        amount = condition.components[i].concentration
        assert amount is not None
        return amount.is_percent, amount.value if amount.is_percent else amount.molar or 0.0
    with_amount = [i for i in indexes if condition.components[i].concentration]
    return max(with_amount, key=strength) if with_amount else None


def _concentration_axis(component: Component, index: int, count: int, share: float) -> tuple[Axis, int]:
    """The axis of a component's concentration, and where the hit's own value is on it."""
    amount = component.concentration
    assert amount is not None
    step = _two_figures(amount.value * share)
    ceiling = 100.0 if amount.is_percent else math.inf
    values, at = _steps(amount.value, step, count, step, ceiling)
    return Axis(component.short_name, values, amount.short_unit, index), at


def _steps(centre: float, step: float, count: int, low: float, high: float) -> tuple[tuple[float, ...], int]:
    """`count` values `step` apart with `centre` among them, in the middle if [low, high] allows (else
    moved by whole steps); (values, index of the centre)."""
    at = (count - 1) // 2
    while at > 0 and centre - at * step < low - 1e-9:
        at -= 1
    while at < count - 1 and centre + (count - 1 - at) * step > high + 1e-9:
        at += 1
    return tuple(round(centre + (i - at) * step, 6) for i in range(count)), at


def _two_figures(value: float) -> float:
    """0.126 -> 0.13, 2.0 -> 2.0, 0.015 -> 0.015."""
    if value <= 0:
        return value
    return round(value, 1 - math.floor(math.log10(value)))


def grid_csv(grid: Grid) -> bytes:
    """One row per well of the grid: its well, the two values, the whole condition, and which is the hit."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["well", grid.columns.heading, grid.rows.heading, "condition", "hit"])
    for row in range(len(grid.rows.values)):
        for column in range(len(grid.columns.values)):
            writer.writerow([grid.well_of(row, column), number_text(grid.columns.values[column]),
                             number_text(grid.rows.values[row]) if not grid.rows.is_ph else ph_text(grid.rows.values[row]),
                             grid.cell(row, column).text, "yes" if (row, column) == grid.hit else ""])
    return buffer.getvalue().encode("utf-8")


def constant_components(grid: Grid) -> list[Component]:
    """The components every well of the grid has as the hit has them."""
    varied = {grid.columns.component, grid.rows.component}
    return [c for i, c in enumerate(grid.condition.components) if i not in varied]


def grid_png(grid: Grid) -> bytes:
    """The grid as a picture: a well per cell with its two values, the hit's cell marked."""
    with _MATPLOTLIB:
        return _draw(grid)


def _draw(grid: Grid) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    rows, columns = len(grid.rows.values), len(grid.columns.values)
    cell = 1.0 if columns <= 6 else 0.85
    width = 0.4 + columns * cell
    lines = _legend(grid, int(width * DPI / 5.8))  # characters of 8 pt text in the picture's width
    header = 0.55 + 0.19 * len(lines)  # inches: the title and the legend
    height = header + rows * cell * 0.62 + 0.1
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    figure.text(0.02, 1 - 0.12 / height, f"Optimisation grid around {grid.well}", fontsize=10.5, fontweight="bold",
                va="top")
    figure.text(0.02, 1 - 0.42 / height, "\n".join(lines), fontsize=8, va="top", color="#333333", linespacing=1.4)
    axes = figure.add_axes((0.02, 0.1 / height, 0.96, 1 - (header + 0.1) / height))
    axes.set_xlim(-0.5, columns - 0.5)
    axes.set_ylim(rows - 0.5, -0.5)
    axes.axis("off")
    for row in range(rows):
        for column in range(columns):
            is_hit = (row, column) == grid.hit
            axes.add_patch(Rectangle((column - 0.47, row - 0.45), 0.94, 0.9, facecolor="#d55e00" if is_hit else "#eef3f8",
                                     edgecolor="#1a1a1a" if is_hit else "#b8c4d0", linewidth=1.4 if is_hit else 0.6))
            ink = "#ffffff" if is_hit else "#1a1a1a"
            axes.text(column, row - 0.14, ("★ " if is_hit else "") + grid.well_of(row, column), ha="center",
                      va="center", fontsize=8.5, fontweight="bold", color=ink)
            axes.text(column, row + 0.2, f"{grid.columns.text(grid.columns.values[column])} · "
                      f"{grid.rows.text(grid.rows.values[row])}", ha="center", va="center", fontsize=6.5, color=ink)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _legend(grid: Grid, fits: int) -> list[str]:
    """The lines under the title: the hit's condition, what the columns and rows vary, what stays."""
    constant = ", ".join(c.short() for c in constant_components(grid))
    lines = [*textwrap.wrap(f"Hit: {grid.condition.short(2 * fits)}", fits)[:2], f"Columns: {grid.columns.span()}",
             f"Rows: {grid.rows.span()}", f"★ {grid.well_of(*grid.hit)}: the hit's own condition"]
    return lines + ([textwrap.shorten(f"In every well: {constant}", fits, placeholder=" …")] if constant else [])
