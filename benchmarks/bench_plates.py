"""Benchmark of the plate modules on their own (no Slack, no model): reading plate zips and drawing maps.

    .venv/bin/python benchmarks/bench_plates.py [--out DIR] [--sizes 96,384,1536] [--only-end-to-end]

1. Reading: a 96- and a 384-image plate zip (1280x960 JPEGs, from make_plate.py) surveyed and read
   member by member; the time, and the most memory Python allocated meanwhile (tracemalloc peak),
   which must not grow with the plate's size.
2. Drawing: the plate map of a full 96- and 384-well plate with 1 to 3 drops, and of a 1536-well
   plate; the time and the PNG's size. The gallery of 48 crystal hits (two sheets) and the history
   strip of a drop over 8 inspections, from stored 1024x768 JPEGs: the time and the most memory Python
   allocated. With --out, the pictures are written there to look at.
3. End to end: `python -m bot` in its own process (default settings) against the fake Slack and a
   fake model that answers each image in 0.5 s; plate zips of 1280x960 JPEGs uploaded (96 and 384
   images, and 1536 named as HWI names them, about 2% of them crystal hits, each with its reply);
   the time from the upload event to the summary and to the outcome reaction (everything posted and
   uploaded: map, CSV, gallery), and the bot's peak resident memory (VmHWM) meanwhile. Goals on 2
   cores: 96 images under 10 s; 1536 under 60 s; under 300 MB.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import tracemalloc
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_slack import memory_mb, start_bot, stop  # noqa: E402
from benchmarks.make_plate import PlateMember, write_plate_zip  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.models import Call, Inspection  # noqa: E402
from bot.plates.archive import ZipLimits, iter_images, open_zip, survey  # noqa: E402
from bot.plates.gallery import gallery_hits, gallery_pngs  # noqa: E402
from bot.plates.history import DropRecord, sightings  # noqa: E402
from bot.plates.platemap import PlateView, plate_map_png  # noqa: E402
from bot.plates.report import PlateImage  # noqa: E402
from bot.plates.strip import DropHistory, history_png  # noqa: E402
from bot.plates.wells import PLATE_SHAPES, Position, Well  # noqa: E402
from bot.prompt import load_categories  # noqa: E402
from bot.services import normalisation  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI  # noqa: E402
from tests.fakes.slack_server import FakeSlack  # noqa: E402
from tests.helpers import image_bytes  # noqa: E402
from tests.slack_harness import CHANNEL  # noqa: E402

LABELS = {"clear": 40, "precipitate": 35, "other": 15, "crystals": 10}
CATEGORIES = load_categories(ROOT / "prompts")
MARCO = ROOT / "tests" / "data" / "marco-gsk"
HWI_HITS = 32  # crystal hits taught to the fake model on the 1536-image plate: about 2%, as 1536 screens find


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
    for wells, drop_counts in ((96, (1, 2, 3)), (384, (1, 2, 3)), (1536, (1,))):
        rows, columns = PLATE_SHAPES[wells]
        for drops in drop_counts:
            labels = {Position(Well(r, c), d): rng.choices(list(LABELS), list(LABELS.values()))[0]
                      for r in range(rows) for c in range(1, columns + 1) for d in range(1, drops + 1)}
            new_hits = frozenset([p for p, label in labels.items() if label == "crystals"][:3])
            view = PlateView("plate42", "2026-11-26 09:30 UTC", labels, new_hits=new_hits, categories=CATEGORIES)
            started = time.perf_counter()
            png = plate_map_png(view)
            elapsed = time.perf_counter() - started
            print(f"map of {wells} wells x {drops} drops: {elapsed:.2f} s, {len(png) / 1024:.0f} KB")
            if out:
                (out / f"plate-map-{wells}-{drops}.png").write_bytes(png)


def stored_jpegs(count: int) -> list[bytes]:
    """MARCO images as the bot stores them (1024x768 JPEGs), `count` of them."""
    paths = sorted(MARCO.glob("*/*.jpeg"))
    settings = load_settings(environ={}, env_file=ROOT / "no.env")
    return [normalisation(settings).apply(paths[n % len(paths)].read_bytes(), "x.jpeg").jpeg for n in range(count)]


def bench_pictures(out: Path | None) -> None:
    """The gallery of 48 hits and a drop's strip over 8 inspections, drawn from stored JPEGs."""
    jpegs = stored_jpegs(48)
    images = [PlateImage(f"{n}.jpg", Position(Well(n // 12, n % 12 + 1)),
                         Call("crystals", 0.7 + n / 200, "logprobs", "", "", "m", id=n + 1)) for n in range(48)]
    hits = gallery_hits(images, {images[3].position, images[17].position}, CATEGORIES)
    pictures = measured("gallery of 48 hits", lambda: gallery_pngs("plate42", "2026-12-01, day 7", hits,
                                                                  lambda key: jpegs[int(key) - 1]))
    day0 = time.time() - 40 * 86_400
    inspections = [Inspection(n, "C1", "plate42", "plate42", str(day0), "1", "p.zip", "U1", 96, {}, None, True, None,
                              day0, day0, imaged_at=day0 + n * 4 * 86_400, dated_from="zip") for n in range(1, 9)]
    records = [DropRecord(n, n, 1, "crystals" if n > 3 else "clear", 0.9, None, str(n), True, False)
               for n in range(1, 9)]
    strip = measured("history strip of 8 inspections", lambda: [history_png(
        "plate42", [DropHistory("D7", sightings(inspections, records))], 90, lambda key: jpegs[int(key)],
        CATEGORIES)])
    if out:
        for number, png in enumerate(pictures, start=1):
            (out / f"gallery-48-{number}.png").write_bytes(png)
        (out / "history-strip-8.png").write_bytes(strip[0])


def measured(what: str, draw) -> list[bytes]:
    tracemalloc.start()
    started = time.perf_counter()
    pictures = draw()
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    sizes = ", ".join(f"{len(png) / 1024:.0f} KB" for png in pictures)
    print(f"{what}: {elapsed:.2f} s ({sizes}), peak Python allocation {peak / 1e6:.1f} MB")
    return pictures


def bench_end_to_end(directory: Path, model_delay: float, sizes: list[int]) -> None:
    settings = load_settings(environ={}, env_file=ROOT / "no.env")
    for wells in sizes:
        hwi = wells == 1536
        path = directory / (f"X000015862_{wells}.zip" if hwi else f"plate{wells}_2026-11-26.zip")
        members = write_plate_zip(path, wells=wells, hwi=hwi)  # fixed seed: the same plate every time
        with FakeSlack() as slack, FakeOpenAI() as openai:
            hits = teach_hits(openai, path, members, settings) if hwi else 0
            bot = start_bot(slack, openai, str(directory), f"sqlite:///{directory}/plates{wells}.db")
            slack.wait_connected(timeout=60)
            finish(slack, slack.add_file("warm-up.jpeg", image_bytes("clear", 236)))  # the SDKs' first-use work
            openai.delay = model_delay
            baseline, cpu = memory_mb(bot.pid, "VmRSS"), cpu_seconds(bot.pid)
            summary, seconds = finish(slack, slack.add_file(path.name, path.read_bytes(), "application/zip", "zip"),
                                      timeout=600)
            peak, cpu = memory_mb(bot.pid), cpu_seconds(bot.pid) - cpu
            uploads = len(slack.uploads)
            calls = len(openai.responses_requests()) - 1
            stop(bot)
        print(f"{wells}-image plate zip ({path.stat().st_size / 1e6:.0f} MB, {hits} hits taught), model "
              f"{model_delay} s per image: summary after {summary:.1f} s, done in {seconds:.1f} s ({calls} model "
              f"calls, {uploads} files uploaded), the bot busy {cpu:.0f} CPU seconds; bot's peak RSS {peak:.0f} MB "
              f"(idle after warm-up {baseline:.0f} MB)")


def cpu_seconds(pid: int) -> float:
    """The CPU time a process has used so far (user and system, all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def teach_hits(openai: FakeOpenAI, path: Path, members: list[PlateMember], settings) -> int:
    """Make the fake model call HWI_HITS of the plate's crystal images crystals (it calls the rest clear)."""
    chosen = [m for m in members if m.source_label == "crystals"][:HWI_HITS]
    with zipfile.ZipFile(path) as archive:
        for member in chosen:
            image = normalisation(settings).apply(archive.read(member.name), member.name.rsplit("/", 1)[-1])
            openai.label_image(image.jpeg, "crystals")
    return len(chosen)


def finish(slack: FakeSlack, file: dict, timeout: float = 60) -> tuple[float | None, float]:
    """Post a message with the file; the seconds until the bot posted a plate's summary in its thread
    (None for an image), and until its outcome reaction replaced :eyes:."""
    event = slack.add_message(CHANNEL, "", files=[file])
    started = time.perf_counter()
    slack.push_event(event)
    summary = None
    while not done(slack, event):
        if summary is None and any(c.params.get("thread_ts") == event["ts"] and c.params["text"].startswith("Plate ")
                                   and " crystal hit" in c.params["text"] for c in slack.calls_to("chat.postMessage")):
            summary = time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"no outcome reaction after {timeout} s")
        time.sleep(0.1)
    return summary, time.perf_counter() - started


def done(slack: FakeSlack, event: dict) -> bool:
    reactions = slack.reactions(CHANNEL, event["ts"])
    return bool(reactions) and "eyes" not in reactions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="folder to write the maps and pictures into")
    parser.add_argument("--model-delay", type=float, default=0.5, help="seconds the fake model takes per image")
    parser.add_argument("--sizes", default="96,384,1536", help="plates run end to end, by their number of images")
    parser.add_argument("--only-end-to-end", action="store_true")
    args = parser.parse_args()
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as directory:
        if not args.only_end_to_end:
            bench_reading(Path(directory))
        bench_end_to_end(Path(directory), args.model_delay, [int(size) for size in args.sizes.split(",")])
    if not args.only_end_to_end:
        bench_drawing(args.out)
        bench_pictures(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
