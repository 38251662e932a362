"""bot.screens.chemistry: conditions as people write them -> components (chemical, concentration, pH),
one key per chemical however it is spelled, and the short form."""
from __future__ import annotations

import pytest

from bot.screens.chemistry import (Concentration, Condition, chemical_key, parse_component, parse_concentration,
                                   parse_condition, short_name)


@pytest.mark.parametrize(("text", "value", "unit"), [
    ("0.1 M", 0.1, "M"), (" 0.1M ", 0.1, "M"), ("100 mM", 100, "mM"), ("50 µM", 50, "µM"), ("50 uM", 50, "µM"),
    ("20% (w/v)", 20, "% w/v"), ("35%(v/v)", 35, "% v/v"), ("20%  (w/v)", 20, "% w/v"), ("15 % w/v", 15, "% w/v"),
    ("10%", 10, "%"), ("0,5 M", 0.5, "M"), (".5 M", 0.5, "M"),
])
def test_concentrations_as_screen_files_write_them(text: str, value: float, unit: str) -> None:
    assert parse_concentration(text) == Concentration(value, unit)


@pytest.mark.parametrize("text", ["sat.", "0 M", "120%", "0.1 MES", "M", ""])
def test_what_is_no_concentration(text: str) -> None:
    assert parse_concentration(text) is None


def test_a_condition_is_cut_into_its_components() -> None:
    condition = parse_condition("0.2 M Ammonium sulfate, 0.1 M BIS-TRIS pH 5.5, 25% w/v PEG 3350")
    assert [(c.chemical, c.concentration, c.ph) for c in condition.components] == [
        ("Ammonium sulfate", Concentration(0.2, "M"), None), ("BIS-TRIS", Concentration(0.1, "M"), 5.5),
        ("PEG 3350", Concentration(25, "% w/v"), None)]
    assert condition.ph == 5.5 and condition.unread == ()
    assert condition.short() == "0.2 M (NH4)2SO4, 0.1 M Bis-Tris pH 5.5, 25% PEG 3350"


@pytest.mark.parametrize(("text", "short"), [
    ("0.1 M Tris-HCl, pH 8.5; 2.0 M (NH4)2SO4", "0.1 M Tris-HCl pH 8.5, 2 M (NH4)2SO4"),  # a pH on its own
    ("20% PEG 3350 (w/v) + 0.2 M NaCl", "20% PEG 3350, 0.2 M NaCl"),
    ("PEG 3350 25%", "25% PEG 3350"),  # the concentration after the chemical
    ("0.1 M Sodium acetate trihydrate pH 4.6, 20 %(v/v) Polyethylene glycol 3,350", "0.1 M NaOAc pH 4.6, 20% PEG 3350"),
    ("10% (+/-)-2-Methyl-2,4-pentanediol, 100 mM MES monohydrate pH 6.5", "10% MPD, 100 mM MES pH 6.5"),
    ("0.1 M Tris (pH 8.5), 1.5 M LiCl", "0.1 M Tris pH 8.5, 1.5 M LiCl"),
    ("1,6 Hexanediol 10%; 0,1 M HEPES - Na pH 7,5", "10% 1,6 Hexanediol, 0.1 M HEPES-Na pH 7.5"),
])
def test_short_forms(text: str, short: str) -> None:
    assert parse_condition(text).short() == short


def test_parts_without_a_concentration_are_kept_and_named_as_not_understood() -> None:
    condition = parse_condition("sat. Li2SO4, Tacsimate pH 7.0, 0.1 M HEPES")
    assert [c.chemical for c in condition.components] == ["sat. Li2SO4", "Tacsimate", "HEPES"]
    assert condition.unread == ("sat. Li2SO4", "Tacsimate pH 7.0")
    assert parse_condition("Water").short() == "Water"  # nothing read: the text itself


def test_one_key_per_chemical_however_it_is_written() -> None:
    assert len({chemical_key(n) for n in ("Sodium Acetate trihydrate", "sodium acetate", "NaOAc", "tri-Sodium acetate")}) == 1
    assert chemical_key("Polyethylene glycol 3,350") == chemical_key("PEG 3350") == "peg 3350"
    assert chemical_key("Polyethylene glycol monomethyl ether 5,000") == "peg mme 5000"
    assert chemical_key("Ammonium phosphate-dibasic") == chemical_key("(NH4)2HPO4")
    assert chemical_key("AmSO4") == chemical_key("Ammonium Sulfate") == "ammonium sulfate"
    assert chemical_key("PEG 3350") != chemical_key("PEG 4000")


def test_short_names_fall_back_on_the_files_formula_then_the_tidied_name() -> None:
    assert short_name("Sodium chloride") == "NaCl"
    assert short_name("Rubidium bromide", formula="RbBr") == "RbBr"
    assert short_name("Cobalt sulfate heptahydrate", formula="CoSO4*7H2O") == "CoSO4"  # known, and a hydrate formula
    assert short_name("Jeffamine® M-600®") == "Jeffamine M-600"
    assert short_name("n-Octyl-β-D-glucoside") == "n-Octyl-β-D-glucoside"


def test_a_component_given_in_columns_of_its_own() -> None:
    component = parse_component("Sodium malonate, pH 5.0", "1.5M")
    assert (component.chemical, component.concentration, component.ph) == ("Sodium malonate", Concentration(1.5, "M"), 5.0)
    assert parse_component("PEG 3350", "sat.").concentration is None


def test_a_condition_survives_its_round_trip_through_json() -> None:
    condition = parse_condition("0.1 M NaOAc pH 5.0, 20% w/v PEG 8000, sat. KCl", reference="22_C0479")
    assert Condition.from_json(condition.to_json()) == condition
