"""A screen condition's chemistry: its text -> components (chemical, concentration, pH) and the short
form a lab writes ("0.1 M NaOAc pH 5.0, 20% PEG 8000"). Pure.

Conditions are written as lists: `0.2 M Ammonium sulfate, 0.1 M BIS-TRIS pH 5.5, 25% w/v PEG 3350`.
Parts are cut at `,`, `;` and `+` (never at a comma between digits: `PEG 3,350`, `0,1 M`); in each
part a concentration (value and unit: M, mM, µM, % w/v, % v/v, % w/w, %) stands at the start or the
end, a pH anywhere; what is left is the chemical. A part that is only a pH belongs to the part
before it (`0.1 M Tris-HCl, pH 8.5`). Parts without a concentration are kept as chemicals and named
as not understood, never guessed.

Chemicals are compared by a key that ignores case, hydration (`trihydrate`), `®`, hyphens and
thousands separators, so `Polyethylene glycol 3,350` and `PEG 3350` are one chemical.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

MOLAR = {"M": 1.0, "mM": 1e-3, "µM": 1e-6}
_NUMBER = r"(?:\d+(?:[.,]\d+)?|[.,]\d+)"
_UNIT = r"(?:mM|[µμu]M|M(?![A-Za-z])|%)"
_BASIS = r"\(?\s*(?P<basis>[wWvV]\s*/\s*[wWvV])\s*\)?"
_CONCENTRATION = re.compile(rf"(?P<value>{_NUMBER})\s*(?P<unit>{_UNIT})\s*(?:{_BASIS})?")
_LEADING = re.compile(rf"^\s*{_CONCENTRATION.pattern}")
_TRAILING = re.compile(rf"(?<![\w.,])(?P<value>{_NUMBER})\s*(?P<unit>{_UNIT})\s*(?:{_BASIS})?\s*$")
_LOOSE_BASIS = re.compile(rf"(?<![\w/]){_BASIS}(?![\w/])")
_PH = re.compile(r"(?<![A-Za-z])pH\s*[:=]?\s*(?P<value>\d{1,2}(?:[.,]\d+)?)(?![\d.])")
_PARTS = re.compile(r"\s*(?:;|(?<!\d),|,(?!\d))\s*|\s+\+\s+")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_HYDRATION = re.compile(r"\b(?:mono|di|tri|tetra|penta|hexa|hepta|octa|nona|deca)?hydrate\b|\bdehydrate\b|"
                        r"\banhydrous\b", re.IGNORECASE)
_PREFIX = re.compile(r"^(?:mono|di|tri)[-\s]+(?=[a-z])", re.IGNORECASE)
_MARKS = re.compile(r"[®™]|^\(\s*(?:\+/-|±)\s*\)-?")  # trade marks; `(+/-)-` of a racemate
_EMPTY_BRACKETS = re.compile(r"\(\s*\)")
_PEG = re.compile(r"\bpolyethylene\s+glycol\b", re.IGNORECASE)
_MME = re.compile(r"\bmonomethyl\s+ether\b", re.IGNORECASE)

# Short names labs write, by chemical key (see chemical_key). Anything else is shown as written,
# tidied (hydration and marks left out, `Polyethylene glycol` as PEG).
ABBREVIATIONS = {
    "sodium acetate": "NaOAc", "sodium chloride": "NaCl", "ammonium sulfate": "(NH4)2SO4",
    "ammonium acetate": "NH4OAc", "ammonium chloride": "NH4Cl", "ammonium nitrate": "NH4NO3",
    "ammonium phosphate dibasic": "(NH4)2HPO4", "ammonium phosphate monobasic": "NH4H2PO4",
    "ammonium dihydrogen phosphate": "NH4H2PO4", "ammonium thiocyanate": "NH4SCN",
    "ammonium bromide": "NH4Br", "ammonium formate": "NH4 formate", "sodium citrate": "Na citrate",
    "sodium citrate tribasic": "Na3 citrate", "sodium cacodylate": "Na cacodylate",
    "sodium formate": "Na formate", "sodium malonate": "Na malonate", "sodium bromide": "NaBr",
    "sodium nitrate": "NaNO3", "sodium iodide": "NaI", "sodium thiocyanate": "NaSCN",
    "sodium fluoride": "NaF", "sodium flouride": "NaF", "sodium phosphate monobasic": "NaH2PO4",
    "sodium dihydrogen phosphate": "NaH2PO4", "sodium thiosulfate": "Na2S2O3",
    "potassium chloride": "KCl", "potassium bromide": "KBr", "potassium nitrate": "KNO3",
    "potassium thiocyanate": "KSCN", "potassium acetate": "KOAc", "potassium iodide": "KI",
    "potassium fluoride": "KF", "potassium flouride": "KF", "potassium carbonate": "K2CO3",
    "potassium phosphate dibasic": "K2HPO4", "potassium phosphate monobasic": "KH2PO4",
    "potassium dihydrogen phosphate": "KH2PO4", "potassium phosphate tribasic": "K3PO4",
    "potassium sodium tartrate": "K/Na tartrate", "lithium chloride": "LiCl", "lithium sulfate": "Li2SO4",
    "lithium bromide": "LiBr", "lithium nitrate": "LiNO3", "lithium acetate": "LiOAc",
    "magnesium chloride": "MgCl2", "magnesium sulfate": "MgSO4", "magnesium acetate": "Mg(OAc)2",
    "magnesium nitrate": "Mg(NO3)2", "magnesium formate": "Mg formate", "calcium chloride": "CaCl2",
    "calcium acetate": "Ca(OAc)2", "zinc acetate": "Zn(OAc)2", "zinc chloride": "ZnCl2",
    "zinc sulfate": "ZnSO4", "cobalt chloride": "CoCl2", "cobalt(ii) chloride": "CoCl2",
    "cobaltous chloride": "CoCl2", "cobalt sulfate": "CoSO4", "nickel(ii) chloride": "NiCl2",
    "cadmium chloride": "CdCl2", "cadmium sulfate": "CdSO4", "manganese chloride": "MnCl2",
    "manganese sulfate": "MnSO4", "cesium chloride": "CsCl", "rubidium chloride": "RbCl",
    "2 methyl 2 4 pentanediol": "MPD", "ethylene glycol": "EG",
    "tris hydrochloride": "Tris-HCl", "tris hcl": "Tris-HCl", "tris": "Tris", "bis tris": "Bis-Tris",
    "bis tris propane": "Bis-Tris propane", "hepes": "HEPES", "hepes sodium": "HEPES-Na",
    "hepes na": "HEPES-Na", "2 propanol": "2-propanol",
}

# Other names labs write for a chemical, by their key: the chemical's key.
ALIASES = {"amso4": "ammonium sulfate", "naac": "sodium acetate", "nacit": "sodium citrate",
           "ipa": "2 propanol", "isopropanol": "2 propanol"}


@dataclass(frozen=True)
class Concentration:
    value: float
    unit: str  # "M", "mM", "µM", "% w/v", "% v/v", "% w/w" or "%" (basis not written)

    @property
    def molar(self) -> float | None:
        """The value in mol/L; None for a percentage."""
        return self.value * MOLAR[self.unit] if self.unit in MOLAR else None

    @property
    def is_percent(self) -> bool:
        return self.unit.startswith("%")

    @property
    def short_unit(self) -> str:
        """`%` (the basis left out), ` M`, ` mM`: what follows the value in a short form."""
        return "%" if self.is_percent else f" {self.unit}"

    def short(self) -> str:
        """`0.1 M`, `100 mM`, `20%`."""
        return f"{number_text(self.value)}{self.short_unit}"

    def __str__(self) -> str:
        """`0.1 M`, `20% w/v`."""
        return f"{number_text(self.value)}{self.unit}" if self.is_percent else self.short()


@dataclass(frozen=True)
class Component:
    chemical: str  # as written, without its concentration and pH
    concentration: Concentration | None = None
    ph: float | None = None
    formula: str = ""  # when the screen file gives one (HWI's first additive)

    @property
    def key(self) -> str:
        return chemical_key(self.chemical)

    @property
    def short_name(self) -> str:
        return short_name(self.chemical, self.formula)

    def short(self) -> str:
        """`0.1 M NaOAc pH 5.0`."""
        return self._written(self.concentration.short() if self.concentration else "", self.short_name)

    def text(self) -> str:
        """`0.1 M Sodium acetate pH 5.0`, `20% w/v PEG 8000`: in full, as a recipe names it."""
        return self._written(str(self.concentration) if self.concentration else "", self.chemical)

    def _written(self, amount: str, name: str) -> str:
        return " ".join(part for part in (amount, name, f"pH {ph_text(self.ph)}" if self.ph is not None else "") if part)


@dataclass(frozen=True)
class Condition:
    """One well's condition: its full text and what could be read of it."""

    text: str  # as written (or, for a file with a column per component, put together from them)
    components: tuple[Component, ...] = ()
    ph: float | None = None  # the condition's pH (its buffer's, or the file's pH column)
    reference: str = ""  # the screen's own name for it, e.g. HWI's cocktail number
    unread: tuple[str, ...] = field(default=())  # parts of the text that were not understood

    def short(self, limit: int = 120) -> str:
        """The short form: `0.1 M NaOAc pH 5.0, 20% PEG 8000`; the text itself when nothing could be read."""
        if not self.components:
            return _clip(" ".join(self.text.split()), limit)
        parts = [component.short() for component in self.components]
        if self.ph is not None and all(component.ph is None for component in self.components):
            parts.append(f"pH {ph_text(self.ph)}")  # an unbuffered condition's own pH
        return _clip(", ".join(parts), limit)

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "ph": self.ph, "reference": self.reference, "unread": list(self.unread),
                "components": [[c.chemical, c.concentration.value if c.concentration else None,
                                c.concentration.unit if c.concentration else None, c.ph, c.formula]
                               for c in self.components]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Condition:
        components = tuple(Component(chemical, Concentration(value, unit) if unit else None, ph, formula)
                           for chemical, value, unit, ph, formula in data["components"])
        return cls(data["text"], components, data["ph"], data["reference"], tuple(data["unread"]))


def number_text(value: float) -> str:
    """20.0 -> `20`, 0.1 -> `0.1`, 0.125 -> `0.125` (no float noise)."""
    return f"{round(value, 4):g}"


def ph_text(ph: float) -> str:
    """5 -> `5.0`, 7.25 -> `7.25`."""
    return f"{ph:.1f}" if round(ph, 1) == ph else number_text(ph)


def parse_concentration(text: str) -> Concentration | None:
    """`0.1 M`, ` 0.1M `, `20% (w/v)`, `35%(v/v)`, `100 mM`, `0,5 M` -> Concentration; None otherwise."""
    found = _CONCENTRATION.fullmatch(text.strip())
    return _concentration(found) if found else None


def parse_ph(text: str) -> float | None:
    """A pH cell (`5`, `7.5`, `6,8`) -> the pH if it is one (0 to 14); None otherwise."""
    try:
        value = float(text.strip().replace(",", "."))
    except ValueError:
        return None
    return value if 0 <= value <= 14 else None


def parse_condition(text: str, reference: str = "") -> Condition:
    """A condition as people write it -> its components; parts not understood are named in `unread`."""
    components: list[Component] = []
    unread: list[str] = []
    for part in (p for p in _PARTS.split(text) if p.strip(" .")):
        component = parse_component(part)
        if component.chemical == "" and component.concentration is None and component.ph is not None and components:
            if components[-1].ph is None:  # `0.1 M Tris, pH 8.5`: the pH of the part before
                components[-1] = Component(components[-1].chemical, components[-1].concentration, component.ph)
                continue
        if not component.chemical or component.concentration is None:
            unread.append(" ".join(part.split()))
        if component.chemical:
            components.append(component)
    ph = next((c.ph for c in components if c.ph is not None), None)
    return Condition(" ".join(text.split()), tuple(components), ph, reference, tuple(unread))


def parse_component(part: str, concentration_text: str = "", ph: float | None = None, formula: str = "") -> Component:
    """One part (`0.1 M Sodium acetate pH 4.6`, `PEG 3350 25%`), or a chemical with its concentration
    in a cell of its own (HWI's columns)."""
    text = part
    found_ph = _PH.search(text)
    if found_ph:
        ph = ph if ph is not None else parse_ph(found_ph["value"])
        text = text[:found_ph.start()] + " " + text[found_ph.end():]
    concentration = parse_concentration(concentration_text) if concentration_text.strip() else None
    if concentration is None and not concentration_text.strip():
        found = _LEADING.search(text) or _TRAILING.search(text)
        if found:
            concentration = _concentration(found)
            text = text[:found.start()] + " " + text[found.end():]
    if concentration is not None and concentration.unit == "%":
        basis = _LOOSE_BASIS.search(text)  # `25% PEG 3350 (w/v)`
        if basis:
            concentration = Concentration(concentration.value, f"% {_basis(basis['basis'])}")
            text = text[:basis.start()] + " " + text[basis.end():]
    return Component(_tidy_edges(text), concentration, ph, formula.strip())


def chemical_key(chemical: str) -> str:
    """What spellings of one chemical share: `Sodium Acetate trihydrate`, `sodium acetate` and `NaOAc` ->
    `sodium acetate`; `Polyethylene glycol 3,350` -> `peg 3350`."""
    key = _normal(chemical)
    return _KEY_OF_SHORT.get(key, key)


def _normal(chemical: str) -> str:
    text = _MARKS.sub("", _THOUSANDS.sub("", chemical.strip()))
    text = _MME.sub("mme", _PEG.sub("peg", _HYDRATION.sub(" ", text)))
    text = _PREFIX.sub("", text.strip())
    return " ".join(re.sub(r"[-,]", " ", text.casefold()).split())


_KEY_OF_SHORT: dict[str, str] = dict(ALIASES)
for _key, _short in ABBREVIATIONS.items():
    _KEY_OF_SHORT.setdefault(_normal(_short), _key)  # `NaCl` is sodium chloride


def short_name(chemical: str, formula: str = "") -> str:
    """The name a lab writes: an abbreviation (`NaOAc`, `MPD`), else the file's formula when it is short,
    else the name tidied (`Polyethylene glycol 3,350` -> `PEG 3350`)."""
    known = ABBREVIATIONS.get(chemical_key(chemical))
    if known:
        return known
    if formula and len(formula) <= 12 and "*" not in formula:
        return formula
    text = _MARKS.sub("", _THOUSANDS.sub("", chemical.strip()))
    text = _MME.sub("MME", _PEG.sub("PEG", _HYDRATION.sub(" ", text)))
    return " ".join(_PREFIX.sub("", text.strip()).split()) or chemical.strip()


def _concentration(found: re.Match[str]) -> Concentration | None:
    value = float(found["value"].replace(",", "."))
    unit = found["unit"].replace("u", "µ").replace("μ", "µ")
    if unit == "%" and found["basis"]:
        unit = f"% {_basis(found['basis'])}"
    if value <= 0 or (unit.startswith("%") and value > 100):
        return None
    return Concentration(value, unit)


def _basis(text: str) -> str:
    return re.sub(r"\s", "", text).lower()


def _tidy_edges(text: str) -> str:
    return " ".join(_EMPTY_BRACKETS.sub(" ", text).split()).strip(" ,;:-").strip()


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


@dataclass(frozen=True)
class PlateConditions:
    """The conditions a plate's wells hold: its screen's name and the conditions by well (`A1`, `AF48`)."""

    screen: str
    conditions: dict[str, Condition]

    def of(self, well: str | None) -> Condition | None:
        return self.conditions.get(well) if well else None

    def short(self, well: str | None) -> str | None:
        """A well's condition in its short form, or None when the screen has none for it."""
        condition = self.of(well)
        return condition.short() if condition else None
