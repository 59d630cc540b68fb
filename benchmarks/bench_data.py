"""Data-layer timings: generating + caching demo minute bars, and loading many symbol-years.

Prints figures and peak RSS; no pass/fail (BENCHMARKS.md: <= 1 s and <= 2x the arrays for
loading 100 symbol-years). Each load is measured in a fresh child process, so the peak RSS is
that of the load alone, not of the fill before it.

    python benchmarks/bench_data.py                  # 4 x 1 year fill, 100 symbol-years load
    python benchmarks/bench_data.py --symbols 20 --repeat 5 --data-dir /tmp/barlab-bench
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

START, END = dt.date(2023, 1, 1), dt.date(2023, 12, 31)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def fill(data_dir: Path, n_symbols: int) -> dict[str, float]:
    """Time the calendar build, then generating + caching ``n_symbols`` x 1 year (cold cache)."""
    from barlab.data import calendar
    from barlab.data.panel import load_bars
    from barlab.data.providers.demo import SYMBOLS

    t0 = time.perf_counter()
    calendar.sessions(START, END)
    t1 = time.perf_counter()
    bars = load_bars(list(SYMBOLS[:n_symbols]), START, END, data_dir=data_dir)
    t2 = time.perf_counter()
    return {"calendar_s": t1 - t0, "fill_s": t2 - t1, "bars": bars.n_bars}


def load(data_dir: Path, n_symbols: int, repeat: int) -> dict[str, float]:
    """Best of ``repeat`` loads of ``n_symbols`` x 1 year from a warm cache; peak RSS."""
    from barlab.data import calendar
    from barlab.data.panel import load_bars
    from barlab.data.providers.demo import SYMBOLS

    t0 = time.perf_counter()
    calendar.sessions(START, END)
    calendar_s = time.perf_counter() - t0
    before = _rss_mb()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        bars = load_bars(list(SYMBOLS[:n_symbols]), START, END, data_dir=data_dir)
        times.append(time.perf_counter() - t)
        arrays_mb = 5 * bars.close.nbytes / 2**20
        del bars
    return {
        "calendar_s": calendar_s,
        "load_best_s": min(times),
        "load_median_s": sorted(times)[len(times) // 2],
        "arrays_mb": arrays_mb,
        "rss_before_mb": before,
        "rss_peak_mb": _rss_mb(),
    }


def _child(mode: str, data_dir: Path, n: int, repeat: int) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", mode, "--data-dir", str(data_dir),
           "--symbols", str(n), "--repeat", str(repeat)]  # fmt: skip
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--symbols", type=int, default=100, help="symbols in the load benchmark")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data-dir", type=Path, help="cache directory (default: a temporary one)")
    ap.add_argument("--child", choices=["fill", "load"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "fill":
        print(json.dumps(fill(args.data_dir, args.symbols)))
        return
    if args.child == "load":
        print(json.dumps(load(args.data_dir, args.symbols, args.repeat)))
        return

    with tempfile.TemporaryDirectory(prefix="barlab-bench-") as tmp:
        root = args.data_dir or Path(tmp)
        small = _child("fill", root / "small", 4, 1)
        print(f"calendar build (cold process): {small['calendar_s']:.2f} s")
        print(f"generate + cache 4 symbols x 1 year ({small['bars']:,} bars each): "
              f"{small['fill_s']:.2f} s")  # fmt: skip
        big = _child("fill", root / "big", args.symbols, 1)
        print(f"generate + cache {args.symbols} symbols x 1 year: {big['fill_s']:.2f} s")
        res = _child("load", root / "big", args.symbols, args.repeat)
        print(
            f"load {args.symbols} symbol-years from the cache: best {res['load_best_s']:.2f} s, "
            f"median {res['load_median_s']:.2f} s (of {args.repeat}; calendar build excluded)"
        )
        grown = res["rss_peak_mb"] - res["rss_before_mb"]
        print(
            f"arrays {res['arrays_mb']:.0f} MB; peak RSS {res['rss_peak_mb']:.0f} MB "
            f"({res['rss_before_mb']:.0f} MB after imports + calendar, so the load added "
            f"{grown:.0f} MB = {grown / res['arrays_mb']:.2f}x the arrays)"
        )


if __name__ == "__main__":
    main()
