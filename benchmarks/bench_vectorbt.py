"""barlab and vectorbt side by side on W1 (one backtest) and W2 (920 combinations).

    python benchmarks/bench_vectorbt.py --vectorbt-python /path/to/venv/bin/python

vectorbt is an optional benchmark dependency: it pins its own numba and numpy, so it usually
lives in a virtual environment of its own (``python -m venv vbt && vbt/bin/pip install
vectorbt && vbt/bin/pip install --no-deps -e .``); each engine runs in a child process of
its interpreter, so the peak RSS is that engine's alone. Same data (bench_engine.gbm_bars),
same conventions (../shared/BENCHMARKS.md): SMA crossover on close (strict cross), long only,
all-in with whole shares, 100,000 cash, 0.1 % fee per fill, signal on bar t's close filled at
bar t+1's open. Both sides report their trade count and final equity for W1, so a run that
disagrees is visibly measuring different work. Prints figures and ratios; no pass/fail.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

FAST, SLOW = range(5, 55), range(20, 220, 10)  # W2: fast < slow leaves 920 combinations
CASH, FEE = 100_000.0, 0.001


def best_s(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def run_barlab(workload: str) -> dict:
    import barlab
    from bench_engine import gbm_bars

    bars = gbm_bars(1)
    sma = barlab.load_strategy("sma_crossover")
    options = {"commission_rate": FEE, "slippage_bps": 0.0, "cash": CASH}
    if workload == "W1":
        first = barlab.backtest(sma(fast=10, slow=50), bars, **options)
        seconds = best_s(lambda: barlab.backtest(sma(fast=10, slow=50), bars, **options), 7)
        m = first.metrics
        return {"s": seconds, "trades": m.n_trades, "final_equity": m.final_equity}
    barlab.sweep(sma, bars, fast=[10], slow=[50], n_jobs=1, **options)  # compile / cache load

    def go():
        return barlab.sweep(sma, bars, fast=FAST, slow=SLOW, where="fast < slow", **options)

    seconds = best_s(go, 2)
    return {"s": seconds, "combos": go().n_run}


def run_vectorbt(workload: str) -> dict:
    import numpy as np
    import vectorbt as vbt

    from bench_engine import gbm_bars

    bars = gbm_bars(1)
    close, open_ = bars.close[:, 0], bars.open[:, 0]

    def crossings(fast_w, slow_w):
        n = len(close)
        fast = vbt.MA.run(close, fast_w, short_name="fast").ma.to_numpy().reshape(n, -1)
        slow = vbt.MA.run(close, slow_w, short_name="slow").ma.to_numpy().reshape(n, -1)
        up = np.zeros(fast.shape, dtype=bool)
        down = np.zeros(fast.shape, dtype=bool)
        # a cross at bar t's close (strict) is acted on at bar t+1's open: shifted by one
        up[2:] = (fast[:-2] < slow[:-2]) & (fast[1:-1] > slow[1:-1])
        down[2:] = (fast[:-2] > slow[:-2]) & (fast[1:-1] < slow[1:-1])
        return up, down

    def portfolio(fast_w, slow_w):
        entries, exits = crossings(fast_w, slow_w)
        price = np.broadcast_to(open_[:, None], entries.shape)
        return vbt.Portfolio.from_signals(
            price, entries, exits, size=np.inf, size_granularity=1, fees=FEE,
            init_cash=CASH, freq="1min",
        )  # fmt: skip

    if workload == "W1":
        pf = portfolio([10], [50])
        seconds = best_s(lambda: portfolio([10], [50]), 5)
        # marked at the close like barlab (the portfolio prices at the open)
        cash = pf.cash().to_numpy()[-1, 0]
        shares = pf.assets().to_numpy()[-1, 0]
        return {
            "s": seconds,
            "trades": int(pf.trades.count().iloc[0]),
            "final_equity": float(cash + shares * close[-1]),
        }
    pairs = [(f, s) for f in FAST for s in SLOW if f < s]
    fast_w, slow_w = [p[0] for p in pairs], [p[1] for p in pairs]

    def go():
        return portfolio(fast_w, slow_w).sharpe_ratio()

    go()  # compile
    return {"s": best_s(go, 1), "combos": len(pairs)}


def child(engine: str, workload: str) -> None:
    fn = run_barlab if engine == "barlab" else run_vectorbt
    out = fn(workload)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def spawn(python: str, engine: str, workload: str) -> dict | None:
    args = [python, __file__, "--child", engine, workload]
    done = subprocess.run(args, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        print(f"{engine} {workload} failed:\n{done.stderr[-2000:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vectorbt-python", default=sys.executable, help="interpreter with vectorbt")
    ap.add_argument("--workloads", default="W1,W2")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    for workload in args.workloads.split(","):
        ours = spawn(sys.executable, "barlab", workload)
        theirs = spawn(args.vectorbt_python, "vectorbt", workload)
        for name, res in (("barlab", ours), ("vectorbt", theirs)):
            if res:
                extra = {k: v for k, v in res.items() if k not in ("s", "peak_rss_mb")}
                print(f"{workload} {name:9s} {res['s'] * 1e3:10.1f} ms  peak RSS "
                      f"{res['peak_rss_mb']:7.0f} MB  {extra}")  # fmt: skip
        if ours and theirs:
            print(f"{workload} vectorbt / barlab: time x{theirs['s'] / ours['s']:.1f}, "
                  f"peak RSS x{theirs['peak_rss_mb'] / ours['peak_rss_mb']:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
