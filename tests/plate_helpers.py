"""Helpers for the plate tests."""
from __future__ import annotations

from bot.plates.wells import Position, parse_position


def at(name: str) -> Position:
    """The position a file name gives (`"B12_2"` -> B12 drop 2); the name must have one."""
    position = parse_position(name)
    assert position is not None, name
    return position
