"""Benchmark of the plate modules on their own (no Slack, no model): reading plate zips and drawing maps.

    .venv/bin/python benchmarks/bench_plates.py [--out DIR]

1. Reading: a 96- and a 384-image plate zip (1280x960 JPEGs, from make_plate.py) surveyed and read
   member by member; the time, and the most memory Python allocated meanwhile (tracemalloc peak),
   which must not grow with the plate's size.
2. Drawing: the plate map of a full 96- and 384-well plate with 1 to 3 drops; the time and the PNG's
   size. With --out, the maps are written there to look at.
3. End to end: `python -m bot` in its own process (default settings) against the fake Slack and a
   fake model that answers each image in 0.5 s; a 96- and a 384-image plate zip of 1280x960 JPEGs
   uploaded; the time from the upload event to the outcome reaction (everything posted and
   uploaded), and the bot's peak resident memory (VmHWM) meanwhile. Goals for 96 images on 2 cores:
   under 10 s and under 300 MB.
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_slack import memory_mb, start_bot, stop  # noqa: E402
from benchmarks.make_plate import write_plate_zip  # noqa: E402
from bot.plates.archive import ZipLimits, iter_images, open_zip, survey  # noqa: E402
from bot.plates.platemap import PlateView, plate_map_png  # noqa: E402
from bot.plates.wells import PLATE_SHAPES, Position, Well  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI  # noqa: E402
from tests.fakes.slack_server import FakeSlack  # noqa: E402
from tests.helpers import image_bytes  # noqa: E402
from tests.slack_harness import CHANNEL  # noqa: E402

LABELS = {"clear": 40, "precipitate": 35, "other": 15, "crystals": 10}


def bench_reading(directory: Path) -> None:
    limits = ZipLimits()
    for wells in (96, 384):
        path = directory / f"plate{wells}.zip"
        write_plate_zip(path, wells=wells)
        tracemalloc.start()
        started = time.perf_counter()
        with open_zip(path, path.name, limits) as archive:
            contents = survey(archive, path.name, limits)
            total = sum(len(m.data or b"") for m in iter_images(archive, contents, limits))
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"read {len(contents.images)} images ({total / 1e6:.0f} MB) from {path.stat().st_size / 1e6:.0f} MB zip: "
              f"{elapsed:.2f} s, peak Python allocation {peak / 1e6:.1f} MB")


def bench_drawing(out: Path | None) -> None:
    rng = random.Random(7)
    for wells in (96, 384):
        rows, columns = PLATE_SHAPES[wells]
        for drops in (1, 2, 3):
            labels = {Position(Well(r, c), d): rng.choices(list(LABELS), list(LABELS.values()))[0]
                      for r in range(rows) for c in range(1, columns + 1) for d in range(1, drops + 1)}
            new_hits = frozenset([p for p, label in labels.items() if label == "crystals"][:3])
            view = PlateView("plate42", "2026-11-26 09:30 UTC", labels, new_hits=new_hits)
            started = time.perf_counter()
            png = plate_map_png(view)
            elapsed = time.perf_counter() - started
            print(f"map of {wells} wells x {drops} drops: {elapsed:.2f} s, {len(png) / 1024:.0f} KB")
            if out:
                (out / f"plate-map-{wells}-{drops}.png").write_bytes(png)


def bench_end_to_end(directory: Path, model_delay: float) -> None:
    for wells in (96, 384):
        path = directory / f"plate{wells}_2026-11-26.zip"
        write_plate_zip(path, wells=wells)
        with FakeSlack() as slack, FakeOpenAI() as openai:
            bot = start_bot(slack, openai, str(directory), f"sqlite:///{directory}/plates{wells}.db")
            slack.wait_connected(timeout=60)
            finish(slack, slack.add_file("warm-up.jpeg", image_bytes("clear", 236)))  # the SDKs' first-use work
            openai.delay = model_delay
            baseline = memory_mb(bot.pid, "VmRSS")
            seconds = finish(slack, slack.add_file(path.name, path.read_bytes(), "application/zip", "zip"), timeout=300)
            peak = memory_mb(bot.pid)
            uploads = len(slack.uploads)
            calls = len(openai.responses_requests()) - 1
            stop(bot)
        print(f"{wells}-image plate zip ({path.stat().st_size / 1e6:.0f} MB), model {model_delay} s per image: "
              f"done in {seconds:.1f} s ({calls} model calls, {uploads} files uploaded); bot's peak RSS "
              f"{peak:.0f} MB (idle after warm-up {baseline:.0f} MB)")


def finish(slack: FakeSlack, file: dict, timeout: float = 60) -> float:
    """Post a message with the file; the seconds until its outcome reaction replaced :eyes:."""
    event = slack.add_message(CHANNEL, "", files=[file])
    started = time.perf_counter()
    slack.push_event(event)

    def done() -> bool:
        reactions = slack.reactions(CHANNEL, event["ts"])
        return bool(reactions) and "eyes" not in reactions

    slack.wait_for(done, timeout, what="the outcome reaction")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="folder to write the maps into")
    parser.add_argument("--model-delay", type=float, default=0.5, help="seconds the fake model takes per image")
    parser.add_argument("--only-end-to-end", action="store_true")
    args = parser.parse_args()
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as directory:
        if not args.only_end_to_end:
            bench_reading(Path(directory))
        bench_end_to_end(Path(directory), args.model_delay)
    if not args.only_end_to_end:
        bench_drawing(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
