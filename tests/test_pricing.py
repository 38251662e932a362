"""bot.pricing: the cost of a call from its tokens and the price table (bot/prices.toml)."""
from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image as PILImage

from bot.models import Usage
from bot.pricing import Price, estimated_usage, image_tokens, load_price_table

PRICES = Path(__file__).resolve().parent.parent / "bot" / "prices.toml"
SEED_USAGE = Usage(input_tokens=4119, cached_tokens=1752, output_tokens=44)
SEED_COST = ((4119 - 1752) * 2.00 + 1752 * 0.50 + 44 * 8.00) / 1_000_000


@pytest.fixture(scope="module")
def table():
    return load_price_table(PRICES)


def test_gpt41_cost_counts_cached_input_at_the_cached_price(table):
    assert table.cost("gpt-4.1", SEED_USAGE) == pytest.approx(SEED_COST)
    assert table.cost("gpt-4.1", SEED_USAGE) == pytest.approx(0.005962)


def test_batch_halves_the_cost(table):
    assert table.batch_discount == 0.5
    assert table.cost("gpt-4.1", SEED_USAGE, batch=True) == pytest.approx(SEED_COST / 2)


def test_dated_snapshot_uses_the_longest_matching_entry(table):
    assert table.price("gpt-4.1-2025-04-14") == Price(2.00, 0.50, 8.00)
    assert table.price("gpt-4.1-mini-2025-04-14") == Price(0.40, 0.10, 1.60)
    assert table.price("gpt-4o-mini-2024-07-18") == Price(0.15, 0.075, 0.60)
    assert table.cost("gpt-4.1-2025-04-14", SEED_USAGE) == pytest.approx(SEED_COST)


def test_unknown_model_has_no_price(table):
    assert table.price("claude-3") is None
    assert table.cost("claude-3", SEED_USAGE) is None
    assert table.price("gpt-4.10") is None  # a prefix that is not followed by "-" is another model


def test_zero_usage_costs_nothing(table):
    assert table.cost("gpt-4.1", Usage()) == 0


def test_custom_table_file(tmp_path):
    path = tmp_path / "prices.toml"
    path.write_text('batch_discount = 0.25\n[models."local-vlm"]\ninput = 1.0\ncached_input = 0.0\noutput = 3.0\n')
    table = load_price_table(path)
    usage = Usage(input_tokens=1000, cached_tokens=400, output_tokens=100)
    assert table.cost("local-vlm", usage) == pytest.approx((600 * 1.0 + 100 * 3.0) / 1_000_000)
    assert table.cost("local-vlm", usage, batch=True) == pytest.approx((600 + 300) / 1_000_000 * 0.25)
    assert table.cost("gpt-4.1", usage) is None


def test_custom_table_without_discount_defaults_to_half(tmp_path):
    path = tmp_path / "prices.toml"
    path.write_text('[models.m]\ninput = 4.0\ncached_input = 1.0\noutput = 8.0\n')
    table = load_price_table(path)
    assert table.cost("m", Usage(1_000_000, 0, 0), batch=True) == pytest.approx(2.0)


def test_image_tokens_follow_the_published_tile_rule():
    assert image_tokens(1024, 768, "high") == 765
    assert image_tokens(1280, 960, "high") == 765
    assert image_tokens(4000, 4000, "high") == 765  # 2048 -> 768x768: 4 tiles
    assert image_tokens(1280, 960, "low") == 85


def test_estimated_usage_caches_the_prefix_after_the_first_call():
    picture = io.BytesIO()
    PILImage.new("RGB", (1024, 768)).save(picture, format="JPEG")
    image = {"type": "input_image", "image_url": "data:image/jpeg;base64," + base64.b64encode(picture.getvalue()).decode(),
             "detail": "high"}
    request = {"input": [{"role": "user", "content": [{"type": "input_text", "text": "x" * 400}, image, image]}]}
    usage = estimated_usage(request, calls=3, output_tokens=50)
    prefix = 100 + 765
    assert usage == Usage(input_tokens=3 * (prefix + 765), cached_tokens=0, output_tokens=150)  # prefix < 1024
    request["input"][0]["content"].insert(0, image)
    cached = (100 + 2 * 765) // 128 * 128
    assert estimated_usage(request, calls=3, output_tokens=50).cached_tokens == 2 * cached
