"""What a plate's hits share: the chemicals in at least half of them (two at least), with the range of
their concentrations, and the hits' pH range. Pure.

"PEG 3350 in 5 of 7 hits (15–25%); NaCl in 4 of 7 hits (0.2 M); pH 4.6–5.6"
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from bot.screens.chemistry import Component, Condition, number_text, ph_text

MAX_SHARED = 3  # chemicals named


@dataclass(frozen=True)
class SharedChemical:
    name: str  # the short name of its first occurrence
    hits: int  # how many of the hits' conditions hold it
    concentrations: tuple[Component, ...]  # its occurrences, for the range


def shared_chemicals(conditions: Sequence[Condition]) -> list[SharedChemical]:
    """The chemicals in at least half of the conditions (and in two at least), most frequent first, then
    in the order they first appear."""
    found: dict[str, list[Component]] = {}
    for condition in conditions:
        first: dict[str, Component] = {}
        for component in condition.components:
            first.setdefault(component.key, component)  # a chemical counts once per condition
        for key, component in first.items():
            found.setdefault(key, []).append(component)
    needed = max(2, (len(conditions) + 1) // 2)
    shared = [SharedChemical(components[0].short_name, len(components), tuple(components))
              for components in found.values() if len(components) >= needed]
    return sorted(shared, key=lambda chemical: -chemical.hits)[:MAX_SHARED]


def hits_chemistry(conditions: Sequence[Condition]) -> str:
    """One line on what the hits' conditions share; "" for fewer than two hits with a condition."""
    total = len(conditions)
    if total < 2:
        return ""
    parts = [f"{chemical.name} in {chemical.hits} of {total} hits{_range(chemical.concentrations)}"
             for chemical in shared_chemicals(conditions)]
    ph_values = sorted(condition.ph for condition in conditions if condition.ph is not None)
    if ph_values:
        span = ph_text(ph_values[0]) if ph_values[0] == ph_values[-1] else \
            f"{ph_text(ph_values[0])}–{ph_text(ph_values[-1])}"
        parts.append(f"pH {span}" + ("" if len(ph_values) == total else f" ({len(ph_values)} of {total} hits)"))
    return "; ".join(parts) if parts else f"no chemical in more than one of the {total} hits"


def _range(components: Sequence[Component]) -> str:
    """` (15–25%)`, ` (0.2 M)`; "" when the concentrations are missing or in different units."""
    amounts = [c.concentration for c in components]
    if any(a is None for a in amounts) or len({a.short_unit for a in amounts if a}) != 1:
        return ""
    values = sorted(a.value for a in amounts if a)
    unit = amounts[0].short_unit if amounts[0] else ""
    span = number_text(values[0]) if values[0] == values[-1] else f"{number_text(values[0])}–{number_text(values[-1])}"
    return f" ({span}{unit})"
