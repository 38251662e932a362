"""Benchmark of the classifier's local work per image, and the input tokens one image costs.

    .venv/bin/python benchmarks/bench_classifier.py [--repeats N]

Times, per image, the steps the bot does itself (read the file, normalise it, build the request,
store the call) on the 12 MARCO test images, against a temporary database; no model is called.
Then estimates the input tokens of one classification with the default settings: images by
OpenAI's published tile rule (bot/pricing.py's image_tokens), text at about 4 characters per token.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import load_settings  # noqa: E402
from bot.models import Call, Usage  # noqa: E402
from bot.pricing import image_tokens, items_tokens  # noqa: E402
from bot.prompt import classification_request  # noqa: E402
from bot.services import build_services  # noqa: E402

IMAGES = sorted((Path(__file__).resolve().parent.parent / "tests/data/marco-gsk").rglob("*.jpeg"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings(environ={"OPENAI_API_KEY": "unused", "DATABASE_URL": f"sqlite:///{folder}/b.db"},
                                 env_file=Path(folder) / ".env")
        services = build_services(settings)
        steps: dict[str, list[float]] = {"read": [], "normalise": [], "build request": [], "store": [], "total": []}
        for repeat in range(args.repeats):
            for path in IMAGES:
                started = time.perf_counter()
                data = path.read_bytes()
                read = time.perf_counter()
                image = services.normalise(data + repeat.to_bytes(2, "big"), path.name)  # a new sha256 each round
                normalised = time.perf_counter()
                request = classification_request(services.prompt_set, image, services.classifier.options)
                built = time.perf_counter()
                services.store.save_call(image, Call("clear", 0.9, "model", "o", "e", settings.openai_model,
                                                     Usage(4000, 1700, 40), 0.006), services.classifier.prompt().fingerprint)
                stored = time.perf_counter()
                for name, begin, end in [("read", started, read), ("normalise", read, normalised),
                                         ("build request", normalised, built), ("store", built, stored),
                                         ("total", started, stored)]:
                    steps[name].append((end - begin) * 1000)
        count = len(steps["total"])
        print(f"local work per image, {count} runs ({len(IMAGES)} images x {args.repeats}), milliseconds:")
        for name, values in steps.items():
            print(f"  {name:14s} median {statistics.median(values):7.2f}   mean {statistics.mean(values):7.2f}"
                  f"   max {max(values):7.2f}")

        query = services.normalise(IMAGES[0].read_bytes(), IMAGES[0].name)
        request = classification_request(services.prompt_set, query, services.classifier.options)
        items = request["input"][0]["content"]
        images = sum(item["type"] == "input_image" for item in items)
        per_image = image_tokens(query.width, query.height, settings.openai_image_detail)
        total = items_tokens(items)
        text = total - images * per_image
        prefix = items_tokens(items[:-1])
        print(f"\ninput tokens of one 1280x960 image with the defaults (model {settings.openai_model}, detail "
              f"{settings.openai_image_detail}, long side {settings.max_image_side} -> sent as {query.width}x{query.height}):")
        print(f"  {images} images x {per_image} + about {text} text tokens = about {total:,} tokens")
        print(f"  cacheable prefix (instructions + {images - 1} examples): about {prefix:,} tokens "
              f"(cached in 128-token steps once >= 1,024)")
        print("  proof of concept: 4,119 per image, 1,752 of them cached on average")
        services.close()


if __name__ == "__main__":
    main()
