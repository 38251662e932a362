"""The values that travel through the bot: a normalised image and a call (the model's answer)."""
from __future__ import annotations

import base64
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Image:
    """An image ready for the model: 8-bit RGB, upright, scaled, re-encoded as JPEG."""

    name: str
    sha256: str  # of the original bytes, so the same upload always finds its cached call
    jpeg: bytes
    width: int
    height: int
    source_format: str  # what the original was, e.g. "TIFF"

    def data_url(self) -> str:
        return "data:image/jpeg;base64," + base64.b64encode(self.jpeg).decode("ascii")


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class Call:
    """One classification of one image."""

    label: str
    confidence: float | None  # None when the answer carried none (e.g. an old batch file)
    confidence_source: str  # "logprobs" (the label's token probability), "model" (its own estimate) or "none"
    observations: str
    explanation: str
    model: str
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None  # None when the model is not in the price table
    id: int | None = None  # row id once stored
    from_cache: bool = False
