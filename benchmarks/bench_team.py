"""Benchmark of the team features on a large channel: `/crystals export` and the budget check.

    .venv/bin/python benchmarks/bench_team.py [--calls N] [--database-url URL]

Fills a temporary SQLite database (or an empty PostgreSQL one given with --database-url) with N
classified images in one channel, a third of them with feedback, then measures:
- the export: the CSV written page by page (time, file size, and the peak memory Python allocated
  meanwhile, which must not grow with N);
- the budget check made before every model call: this month's spend summed over all calls.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.budget import month_start  # noqa: E402
from bot.export import write_csv  # noqa: E402
from bot.store import open_store  # noqa: E402
from bot.store.base import Store  # noqa: E402

CHANNEL = "C1"
PAGE = 1000


def fill(store: Store, calls: int, channel_of: Callable[[int], str] = lambda n: CHANNEL,
         label_of: Callable[[int], str] = lambda n: "crystals", age_of: Callable[[int], float] = lambda n: 0.0) -> None:
    """`calls` images, calls and image jobs (call n in channel_of(n), labelled label_of(n), made age_of(n)
    seconds ago), feedback confirming every third, loaded a page at a time."""
    now = time.time()
    for first in range(1, calls + 1, PAGE):
        ids = range(first, min(first + PAGE, calls + 1))
        store.load("images", [{"sha256": f"{n:064x}", "name": f"{n}.jpeg", "jpeg": b"", "width": 1280, "height": 960,
                               "source_format": "JPEG", "used_at": now} for n in ids])
        store.load("calls", [{"id": n, "image_sha256": f"{n:064x}", "fingerprint": "fp", "model": "gpt-4.1",
                              "label": label_of(n), "confidence": 0.93, "confidence_source": "logprobs",
                              "observations": "edges", "explanation": "Sharp faceted edges: crystals. " * 3,
                              "input_tokens": 4250, "cached_tokens": 3490, "output_tokens": 60, "cost_usd": 0.004,
                              "created_at": now - age_of(n)} for n in ids])
        store.load("jobs", [{"id": n, "kind": "image", "channel": channel_of(n),
                             "message_ts": f"{1_700_000_000 + n}.000100", "thread_ts": f"{1_700_000_000 + n}.000100",
                             "file_id": f"F{n}", "file_name": f"{n}.jpeg", "user_id": "U1", "state": "done",
                             "call_id": n, "reply_ts": f"{1_700_000_000 + n}.000200", "payload": "{}",
                             "created_at": now - age_of(n), "updated_at": now} for n in ids])
        store.load("feedback", [{"id": n, "job_id": n, "user_id": "U2", "verdict": "confirmed", "label": label_of(n),
                                 "created_at": now} for n in ids if n % 3 == 0])
    store.after_load()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: a temporary SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(args.database_url or f"sqlite:///{folder}/bench.db")
        started = time.perf_counter()
        fill(store, args.calls)
        print(f"{args.calls:,} calls in one channel, loaded in {time.perf_counter() - started:.1f} s")

        path = Path(folder) / "export.csv"
        tracemalloc.start()
        started = time.perf_counter()
        with path.open("w", newline="", encoding="utf-8") as out:
            rows = write_csv(store.export_pages(CHANNEL, None, None), "https://lab.slack.com/", CHANNEL, out)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"export: {rows:,} rows, {path.stat().st_size / 1e6:.1f} MB of CSV in {elapsed:.2f} s "
              f"({rows / elapsed:,.0f} rows/s); peak Python memory meanwhile {peak / 1e6:.1f} MB")

        timings = []
        for _ in range(20):
            started = time.perf_counter()
            store.spend_since(month_start(time.time()))
            timings.append((time.perf_counter() - started) * 1000)
        print(f"budget check (this month's spend over {args.calls:,} calls): median {statistics.median(timings):.2f} ms, "
              f"max {max(timings):.2f} ms")
        store.close()


if __name__ == "__main__":
    main()
