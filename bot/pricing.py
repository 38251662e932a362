"""Estimated cost of a model call from its token usage and a price table (bot/prices.toml)."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from bot.models import Usage


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens."""

    input: float
    cached_input: float
    output: float


@dataclass(frozen=True)
class PriceTable:
    models: dict[str, Price]
    batch_discount: float = 0.5

    def price(self, model: str) -> Price | None:
        """The entry for `model`, or for the longest name it starts with (dated snapshots)."""
        matches = [name for name in self.models if model == name or model.startswith(name + "-")]
        return self.models[max(matches, key=len)] if matches else None

    def cost(self, model: str, usage: Usage, *, batch: bool = False) -> float | None:
        """Dollars for one call; None when the model is not in the table."""
        price = self.price(model)
        if price is None:
            return None
        uncached = usage.input_tokens - usage.cached_tokens
        dollars = (uncached * price.input + usage.cached_tokens * price.cached_input
                   + usage.output_tokens * price.output) / 1_000_000
        return dollars * (self.batch_discount if batch else 1.0)


def load_price_table(path: Path) -> PriceTable:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return PriceTable(
        models={name: Price(**entry) for name, entry in data.get("models", {}).items()},
        batch_discount=float(data.get("batch_discount", 0.5)),
    )
