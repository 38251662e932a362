"""Estimated cost of a model call from its token usage and a price table (bot/prices.toml), and the
usage a run will have, estimated before it starts."""
from __future__ import annotations

import base64
import io
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from PIL import Image as PILImage

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


# --- estimates before a run ----------------------------------------------------------------------

CACHE_MIN_TOKENS = 1024  # the provider caches an identical prefix from this length on
CACHE_STEP = 128  # ... in steps of this many tokens
CHARS_PER_TOKEN = 4


def image_tokens(width: int, height: int, detail: str) -> int:
    """OpenAI's published tile rule (gpt-4.1, gpt-4o): scale to fit 2048x2048, short side to 768,
    170 tokens per 512-px tile + 85; 85 flat at detail "low"."""
    if detail == "low":
        return 85
    scale = min(1.0, 2048 / max(width, height))
    width, height = width * scale, height * scale
    scale = min(1.0, 768 / min(width, height))
    width, height = width * scale, height * scale
    return 85 + 170 * math.ceil(width / 512) * math.ceil(height / 512)


def items_tokens(items: Sequence[dict[str, Any]]) -> int:
    """Estimated input tokens of Responses API content items: images by the tile rule, text at
    about 4 characters per token."""
    tokens, chars = 0, 0
    for item in items:
        if item["type"] == "input_image":
            with PILImage.open(io.BytesIO(base64.b64decode(item["image_url"].split(",", 1)[1]))) as picture:
                tokens += image_tokens(picture.width, picture.height, item.get("detail", "auto"))
        else:
            chars += len(item.get("text", ""))
    return tokens + math.ceil(chars / CHARS_PER_TOKEN)


def request_tokens(request: dict[str, Any]) -> int:
    """Estimated input tokens of a Responses-shaped request: its content items and instructions."""
    items = [item for message in request["input"] for item in message["content"]]
    return items_tokens(items) + math.ceil(len(request.get("instructions") or "") / CHARS_PER_TOKEN)


def estimated_usage(request: dict[str, Any], calls: int, output_tokens: int) -> Usage:
    """Usage of `calls` requests like this one (same prefix, query image last); every call after the
    first finds the prefix in the provider's cache."""
    items = [item for message in request["input"] for item in message["content"]]
    text_instructions = math.ceil(len(request.get("instructions") or "") / CHARS_PER_TOKEN)
    prefix = items_tokens(items[:-1]) + text_instructions
    total = prefix + items_tokens(items[-1:])
    cached = prefix // CACHE_STEP * CACHE_STEP if prefix >= CACHE_MIN_TOKENS else 0
    return Usage(input_tokens=total * calls, cached_tokens=cached * max(calls - 1, 0),
                 output_tokens=output_tokens * calls)
