"""Peak memory of normalising a burst of images in 64 threads, as the bot's job workers would.

    .venv/bin/python benchmarks/bench_memory.py [--threads N] [--bot-dir DIR]

Each scenario runs in a fresh process that first imports the whole bot (its baseline), then
normalises every image of the scenario at once in a pool of `--threads` threads with the default
settings, and reports its peak resident memory (ru_maxrss). Scenarios:
  10 PNGs 7745x7745 RGBA  - the 230 KB decompression-bomb-like PNG found in testing, ten in a message
  10 PNGs at the limit    - the largest RGBA PNG MAX_IMAGE_PIXELS accepts, ten in a message
  96 JPEGs 1280x960       - a plate of real MARCO images
`--bot-dir` runs the same scenarios against another checkout (e.g. an older commit) for comparison.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

ROOT = Path(__file__).resolve().parent.parent
MARCO = sorted((ROOT / "tests/data/marco-gsk").rglob("*.jpeg"))

WORKER = r"""
import json, os, resource, sys
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor
import bot.slack.app, bot.services  # the bot's own imports: its baseline
from bot.config import load_settings
from bot.images import ImageError, normalise

settings = load_settings(environ={}, env_file=Path(os.devnull))
def peak_mb():  # VmHWM is reset by exec; ru_maxrss keeps the parent's peak at fork, so it is the fallback
    try:
        return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")) / 1024
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

baseline = peak_mb()
paths, threads = json.loads(sys.argv[1]), int(sys.argv[2])

def one(path):
    try:
        normalise(open(path, "rb").read(), path, max_side=settings.max_image_side, max_pixels=settings.max_image_pixels)
        return "ok"
    except ImageError:
        return "refused"

with ThreadPoolExecutor(threads) as pool:
    outcomes = list(pool.map(one, paths))
print(json.dumps({"baseline_mb": baseline, "peak_mb": peak_mb(),
                  "ok": outcomes.count("ok"), "refused": outcomes.count("refused")}))
"""


def rgba_png(side: int) -> bytes:
    """A mostly flat RGBA PNG of side x side (compresses to a few hundred KB), made a band at a time."""
    image = PILImage.new("RGBA", (side, side), (40, 160, 90, 200))
    noise = np.random.default_rng(1).integers(0, 255, (16, side, 4), np.uint8)
    image.paste(PILImage.fromarray(noise, "RGBA"), (0, side // 2))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def scenarios(folder: Path, max_pixels: int) -> dict[str, list[str]]:
    at_limit = int(max_pixels ** 0.5)
    sizes = {}
    for name, side in (("bomb.png", 7745), ("limit.png", at_limit)):
        (folder / name).write_bytes(rgba_png(side))
        sizes[name] = (folder / name).stat().st_size
    return {
        f"10 PNGs 7745x7745 RGBA ({sizes['bomb.png'] // 1000} KB each)": [str(folder / "bomb.png")] * 10,
        f"10 PNGs {at_limit}x{at_limit} RGBA (at MAX_IMAGE_PIXELS)": [str(folder / "limit.png")] * 10,
        "96 JPEGs 1280x960 (a plate)": [str(MARCO[i % len(MARCO)]) for i in range(96)],
    }


def measure(paths: list[str], threads: int, bot_dir: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(bot_dir)}
    for name in ("MAX_IMAGE_PIXELS", "MAX_IMAGE_SIDE", "MAX_DECODE_PIXELS"):
        env.pop(name, None)
    out = subprocess.run([sys.executable, "-c", WORKER, json.dumps(paths), str(threads)], env=env, cwd=bot_dir,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--bot-dir", type=Path, default=ROOT, help="checkout whose bot package to measure")
    args = parser.parse_args()
    sys.path.insert(0, str(args.bot_dir))
    from bot.config import SETTINGS

    max_pixels = int(SETTINGS["MAX_IMAGE_PIXELS"][0])
    print(f"bot: {args.bot_dir}   threads: {args.threads}   MAX_IMAGE_PIXELS default: {max_pixels:,}")
    print(f"{'scenario':58} {'baseline MB':>11} {'peak MB':>8} {'ok':>4} {'refused':>8}")
    with tempfile.TemporaryDirectory() as folder:
        for name, paths in scenarios(Path(folder), max_pixels).items():
            result = measure(paths, args.threads, args.bot_dir)
            print(f"{name:58} {result['baseline_mb']:11.0f} {result['peak_mb']:8.0f} "
                  f"{result['ok']:4d} {result['refused']:8d}")


if __name__ == "__main__":
    main()
