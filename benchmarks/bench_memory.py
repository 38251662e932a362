"""Peak memory of the bot taking a burst of images, with the default settings.

    .venv/bin/python benchmarks/bench_memory.py [--threads N] [--bot-dir DIR]

Two measurements per scenario, each in a fresh process, reporting its peak resident memory (VmHWM):
  normalise - a process that imports the whole bot (its baseline), then normalises every image of
              the scenario at once in a pool of `--threads` threads, as the job workers would;
  whole bot - `python -m bot` in Socket Mode against the test fakes (on 127.0.0.1, in this process),
              sent the scenario's images as messages of up to 10 files, measured once every image
              has its reply.
Scenarios:
  10 PNGs 7745x7745 RGBA  - the 230 KB decompression-bomb-like PNG found in testing, ten in a message
  10 PNGs at the limit    - the largest RGBA PNG MAX_IMAGE_PIXELS accepts, ten in a message
  96 JPEGs 1280x960       - a plate of real MARCO images
`--bot-dir` runs the same scenarios against another checkout (e.g. an older commit) for comparison.
Needs the test requirements (requirements-dev.txt).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.openai_server import FakeOpenAI  # noqa: E402
from tests.fakes.slack_server import FakeSlack  # noqa: E402
from tests.slack_harness import CHANNEL, slack_environ  # noqa: E402

MARCO = sorted((ROOT / "tests/data/marco-gsk").rglob("*.jpeg"))
FILES_PER_MESSAGE = 10  # Slack's limit

WORKER = r"""
import json, os, resource, sys
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor
import bot.slack.app, bot.services  # the bot's own imports: its baseline
from bot.config import load_settings
from bot.images import ImageError, normalise
try:
    from bot.images import pixel_budget  # the bot's process-wide decode budget
    limits = {"budget": pixel_budget(load_settings(environ={}, env_file=Path(os.devnull)).max_decode_pixels)}
except ImportError:  # a checkout from before the budget
    limits = {}

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
        normalise(open(path, "rb").read(), path, max_side=settings.max_image_side, max_pixels=settings.max_image_pixels,
                  **limits)
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


def clean_environment(bot_dir: Path) -> dict[str, str]:
    """This environment without proxies or bot settings, importing the bot from `bot_dir`."""
    env = {key: value for key, value in os.environ.items()
           if "PROXY" not in key.upper() and not key.startswith(("OPENAI_", "SLACK_", "MAX_", "JOB_"))}
    return {**env, "PYTHONPATH": str(bot_dir)}


def measure_normalise(paths: list[str], threads: int, bot_dir: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", WORKER, json.dumps(paths), str(threads)],
                         env=clean_environment(bot_dir), cwd=bot_dir, capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def process_peak_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024


def measure_whole_bot(paths: list[str], bot_dir: Path) -> dict[str, float]:
    """Run `python -m bot` against the fakes, send it the images, and read its peak once all are answered."""
    with FakeSlack() as slack, FakeOpenAI() as openai, tempfile.TemporaryDirectory() as home:
        env = {**clean_environment(bot_dir), "OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": openai.base_url,
               **slack_environ(slack), "DATABASE_URL": f"sqlite:///{home}/bench.db", "LOG_LEVEL": "WARNING"}
        process = subprocess.Popen([sys.executable, "-m", "bot"], env=env, cwd=bot_dir, stdout=subprocess.DEVNULL)
        try:
            slack.wait_connected(timeout=60)
            threads = [send_message(slack, paths[start:start + FILES_PER_MESSAGE])
                       for start in range(0, len(paths), FILES_PER_MESSAGE)]
            slack.wait_for(lambda: all(answered(slack, ts) >= count for ts, count in threads), timeout=600)
            replies = [call.params.get("text", "") for call in slack.calls_to("chat.postMessage")]
            return {"peak_mb": process_peak_mb(process.pid),
                    "ok": sum(" for " in text and "could not" not in text for text in replies),
                    "refused": sum("could not" in text for text in replies)}
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)


def send_message(slack: FakeSlack, paths: list[str]) -> tuple[str, int]:
    """Post one message with these files; returns its ts and how many replies it should get."""
    hosted = []
    for path in paths:
        png = path.endswith(".png")
        hosted.append(slack.add_file(Path(path).name, Path(path).read_bytes(), mimetype="image/png" if png else
                                     "image/jpeg", filetype="png" if png else "jpg"))
    event = slack.add_message(CHANNEL, "", files=hosted)
    slack.push_event(event)
    return event["ts"], len(hosted)


def answered(slack: FakeSlack, thread_ts: str) -> int:
    return sum(call.params.get("thread_ts") == thread_ts for call in slack.calls_to("chat.postMessage"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--bot-dir", type=Path, default=ROOT, help="checkout whose bot package to measure")
    args = parser.parse_args()
    max_pixels = int(subprocess.run(
        [sys.executable, "-c", "from bot.config import SETTINGS; print(SETTINGS['MAX_IMAGE_PIXELS'][0])"],
        env=clean_environment(args.bot_dir), cwd=args.bot_dir, capture_output=True, text=True, check=True).stdout)
    print(f"bot: {args.bot_dir}   threads: {args.threads}   MAX_IMAGE_PIXELS default: {max_pixels:,}")
    print(f"{'scenario':52} {'measured':>10} {'baseline MB':>11} {'peak MB':>8} {'ok':>4} {'refused':>8}")
    with tempfile.TemporaryDirectory() as folder:
        for name, paths in scenarios(Path(folder), max_pixels).items():
            for measured, result in (("normalise", measure_normalise(paths, args.threads, args.bot_dir)),
                                     ("whole bot", measure_whole_bot(paths, args.bot_dir))):
                baseline = f"{result['baseline_mb']:11.0f}" if "baseline_mb" in result else f"{'':11}"
                print(f"{name:52} {measured:>10} {baseline} {result['peak_mb']:8.0f} "
                      f"{result['ok']:4d} {result['refused']:8d}")


if __name__ == "__main__":
    main()
