"""Test data and small helpers shared by the test modules."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
MARCO = DATA / "marco-gsk"
SEED_BATCH_OUTPUT = DATA / "seed-gpt41-batch-output.jsonl"
API_KEY = "sk-test-SECRET-never-logged"


def image_bytes(label: str, number: int) -> bytes:
    """A real MARCO microscope image (1280x960 JPEG)."""
    return (MARCO / label / f"{number}.jpeg").read_bytes()


def content_items(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The content items of a Responses API request's single user message."""
    (message,) = request["input"]
    return message["content"]


def prefix_json(request: dict[str, Any]) -> str:
    """Everything in a classification request before the query image, serialised."""
    return json.dumps({**request, "input": content_items(request)[:-1]}, sort_keys=True)
