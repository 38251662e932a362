"""bot.screens.grid: optimisation grids around a hit, every value worked out by hand."""
from __future__ import annotations

import csv
import io

import pytest
from PIL import Image

from bot.screens.chemistry import parse_condition
from bot.screens.grid import GridError, GridSize, grid_csv, grid_png, main_precipitant, optimisation_grid

TRAY, PLATE = GridSize(4, 6), GridSize(8, 12)


def grid(text: str, size: GridSize = TRAY, step: float = 0.1, ph_step: float = 0.2):
    return optimisation_grid("D7", parse_condition(text), size, step, ph_step)


def test_a_24_well_tray_around_a_peg_and_buffer_hit() -> None:
    around = grid("0.1 M Sodium acetate pH 5.0, 20% w/v PEG 8000")
    # PEG 8000 steps by 10% of 20% = 2%, the hit in the 3rd of 6 columns; pH by 0.2, the hit in the 2nd of 4 rows
    assert around.columns.values == (16, 18, 20, 22, 24, 26) and around.columns.label == "PEG 8000"
    assert around.rows.values == (4.8, 5.0, 5.2, 5.4) and around.rows.is_ph
    assert around.hit == (1, 2) and around.well_of(*around.hit) == "B3"
    assert around.columns.span() == "PEG 8000 16–26% (step 2%)" and around.rows.span() == "pH 4.8–5.4 (step 0.2)"
    assert around.cell(3, 0).text == "0.1 M Sodium acetate pH 5.4, 16% w/v PEG 8000"
    assert around.cell(*around.hit).components == around.condition.components


def test_a_96_well_plate_around_the_same_hit() -> None:
    around = grid("0.1 M Sodium acetate pH 5.0, 20% w/v PEG 8000", PLATE)
    assert around.columns.values == tuple(range(10, 33, 2))  # 10% ... 32%: the hit 6th of 12
    assert around.rows.values == (4.4, 4.6, 4.8, 5.0, 5.2, 5.4, 5.6, 5.8)  # the hit 4th of 8
    assert around.well_of(*around.hit) == "D6"


def test_a_high_salt_hit_varies_the_salt_and_the_buffer_ph() -> None:
    around = grid("2.0 M Ammonium sulfate, 0.1 M Tris pH 8.5")
    assert main_precipitant(around.condition) == 0
    assert around.columns.values == (1.6, 1.8, 2.0, 2.2, 2.4, 2.6) and around.columns.unit == " M"
    assert around.rows.values == (8.3, 8.5, 8.7, 8.9)
    assert around.columns.heading == "(NH4)2SO4 (M)"


def test_an_unbuffered_hit_varies_its_second_component() -> None:
    around = grid("0.2 M Sodium fluoride, 20% w/v PEG 3350, pH 7.3")
    assert not around.rows.is_ph and around.rows.label == "NaF"
    assert around.rows.values == (0.18, 0.2, 0.22, 0.24)  # 10% of 0.2 M = 0.02 M
    assert around.columns.values == (16, 18, 20, 22, 24, 26) and around.hit == (1, 2)


def test_steps_are_rounded_to_two_significant_figures() -> None:
    around = grid("1.26 M Lithium chloride, 0.1 M Tris pH 8.0")
    assert around.columns.values == (1.0, 1.13, 1.26, 1.39, 1.52, 1.65)  # 0.126 M -> 0.13 M


def test_a_grid_is_moved_by_whole_steps_to_stay_above_zero_below_100_percent_and_within_ph_0_to_14() -> None:
    low = grid("4% PEG 400, 0.1 M HEPES pH 7.5", PLATE, step=0.3)  # 30% of 4% = 1.2%
    assert low.columns.values[:4] == (1.6, 2.8, 4.0, 5.2) and low.hit[1] == 2  # not 2 steps below nothing
    high = grid("70% v/v MPD, 0.1 M Tris pH 13.8", PLATE)  # 7% steps; pH 0.2 steps
    assert high.columns.values[-1] == 98 and high.columns.values[7] == 70 and high.hit == (6, 7)
    assert high.rows.values[0] == 12.6 and high.rows.values[-1] == 14.0


@pytest.mark.parametrize(("text", "main"), [
    ("0.2 M NaCl, 0.1 M Tris pH 8, 1.0 M Sodium citrate, 5% PEG 400", "Na citrate"),  # a salt at 1 M or more
    ("0.2 M MgCl2, 0.1 M HEPES pH 7.5, 30% v/v PEG 400", "PEG 400"),  # else the largest percentage
    ("0.2 M NaCl, 0.1 M HEPES pH 7.5", "NaCl"),  # else the most concentrated that is not the buffer
])
def test_the_main_precipitant(text: str, main: str) -> None:
    assert grid(text).columns.label == main


@pytest.mark.parametrize(("text", "says"), [
    ("0.2 M NaCl", "a grid needs two"),
    ("Water", "could not read a precipitant"),
])
def test_conditions_without_two_things_to_vary_get_no_grid(text: str, says: str) -> None:
    with pytest.raises(GridError) as refused:
        grid(text)
    assert says in str(refused.value)


def test_the_csv_has_a_row_per_well_with_both_values_the_recipe_and_the_hit() -> None:
    around = grid("0.1 M Sodium acetate pH 5.0, 20% w/v PEG 8000, 0.2 M NaCl")
    rows = list(csv.DictReader(io.StringIO(grid_csv(around).decode("utf-8"))))
    assert len(rows) == 24 and list(rows[0]) == ["well", "PEG 8000 (%)", "pH", "condition", "hit"]
    assert rows[0] == {"well": "A1", "PEG 8000 (%)": "16", "pH": "4.8", "hit": "",
                       "condition": "0.1 M Sodium acetate pH 4.8, 16% w/v PEG 8000, 0.2 M NaCl"}
    assert [row["well"] for row in rows if row["hit"] == "yes"] == ["B3"]
    assert rows[-1]["well"] == "D6" and rows[-1]["PEG 8000 (%)"] == "26" and rows[-1]["pH"] == "5.4"


def test_the_picture_is_a_png_wide_enough_for_its_columns() -> None:
    for size, width in ((TRAY, 600), (PLATE, 1000)):
        with Image.open(io.BytesIO(grid_png(grid("0.1 M NaOAc pH 5.0, 20% PEG 8000", size)))) as picture:
            assert picture.format == "PNG" and picture.width >= width
