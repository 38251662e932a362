"""Whole plates: a zip (or a message) of a plate's images -> wells, a plate map, a summary, a CSV. Pure."""
