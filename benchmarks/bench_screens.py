"""Benchmark of screens: reading the 1536-condition HWI cocktail list, keeping it, and what a plate's
summary and a hit's grid then cost.

    .venv/bin/python benchmarks/bench_screens.py [--repeat N] [--database-url URL]

Measures, on the real file in tests/data/screens/ (HWI's generation 22 soluble screen):
- reading it (decoding, delimiter, header, 1,536 conditions and their components): the median time
  of N runs and the peak memory Python allocated for one read (tracemalloc);
- keeping it in a temporary SQLite database (or an empty PostgreSQL one given with --database-url),
  and loading it again whole (what a plate summary and its CSV do) and for one well (a hit's reply);
- an optimisation grid around a condition of it: computing, the CSV, the picture (4 x 6 and 8 x 12).
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

from bot.screens.grid import GridSize, grid_csv, grid_png, optimisation_grid  # noqa: E402
from bot.screens.reading import read_screen  # noqa: E402
from bot.store import open_store  # noqa: E402

HWI = Path(__file__).resolve().parent.parent / "tests" / "data" / "screens" / "hwi-22_C1536.csv"
LIMIT = 1024 * 1024


def median_ms(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    data = HWI.read_bytes()

    read_screen(data, HWI.name, LIMIT)  # imports and caches warmed
    reading = median_ms(lambda: read_screen(data, HWI.name, LIMIT), args.repeat)
    tracemalloc.start()
    screen = read_screen(data, HWI.name, LIMIT)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"read {HWI.name} ({len(data) / 1024:.0f} KB, {len(screen.conditions)} conditions, "
          f"{len(screen.unread())} parts not understood): median {reading:.0f} ms of {args.repeat}, "
          f"peak Python memory {peak / 1024 / 1024:.1f} MB")

    with tempfile.TemporaryDirectory() as folder:
        store = open_store(args.database_url or f"sqlite:///{Path(folder) / 'bench.db'}")
        start = time.perf_counter()
        saved = store.add_screen("HWI 22", HWI.name, "sha", screen, "C1", "U1")
        kept = (time.perf_counter() - start) * 1000
        assert saved is not None
        whole = median_ms(lambda: store.screen_conditions(saved.id), args.repeat)
        one = median_ms(lambda: store.screen_conditions(saved.id, ["D7"]), args.repeat)
        print(f"kept in {'PostgreSQL' if args.database_url else 'SQLite'}: {kept:.0f} ms; loaded whole (a summary, "
              f"its CSV): median {whole:.0f} ms; one well (a hit's reply): median {one:.2f} ms")
        store.close()

    condition = screen.conditions["H25"]
    for size in (GridSize(4, 6), GridSize(8, 12)):
        grid = optimisation_grid("H25", condition, size, 0.1, 0.2)
        computed = median_ms(lambda: optimisation_grid("H25", condition, size, 0.1, 0.2), args.repeat)
        table = median_ms(lambda: grid_csv(grid), args.repeat)
        grid_png(grid)  # matplotlib imported
        picture = median_ms(lambda: grid_png(grid), max(3, args.repeat // 4))
        print(f"grid {size} around H25 ({condition.short()}): computed in {computed:.2f} ms, CSV {table:.1f} ms, "
              f"picture {picture:.0f} ms")


if __name__ == "__main__":
    main()
