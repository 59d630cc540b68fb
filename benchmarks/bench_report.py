"""The report at scale (issue 6): one year of minute bars for 10 symbols.

    python benchmarks/bench_report.py            # prints figures; no pass/fail

Synthetic GBM minute bars on weekday sessions (98,280 bars per symbol), SMA crossover 10/50
(about 14,000 trades), 1 bp slippage. Prints the report's size and what takes the room, the
time to write it (best of 3, backtest excluded) and, when Debian's chromium is installed, the
time a headless browser takes from navigation until every chart is drawn (read from the page's
``data-charts-drawn-ms``, driven over the DevTools protocol on a pipe). Targets: <= 10 MB,
rendered in a few seconds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

import barlab
from barlab.bars import Bars
from barlab.report import write_report

N_SYMBOLS, DAYS, MINUTES = 10, 252, 390
DRAWN = "document.body && document.body.dataset.chartsDrawnMs"  # set by the page's loader


def session_bars(seed: int = 42) -> Bars:
    rng = np.random.default_rng(seed)
    days = np.busday_offset("2023-01-03", np.arange(DAYS), roll="forward")
    local = days.astype("datetime64[ns]").astype(np.int64)[:, None] + (
        (570 + np.arange(MINUTES)) * 60 * 10**9
    )
    ts = (
        pl.Series(local.ravel(), dtype=pl.Int64).cast(pl.Datetime("ns"))
        .dt.replace_time_zone("America/New_York").dt.convert_time_zone("UTC")
        .cast(pl.Int64).to_numpy()
    )  # fmt: skip
    shape = (DAYS * MINUTES, N_SYMBOLS)
    log_ret = rng.normal(0.0, 0.001, shape)
    close = 100.0 * np.exp(np.cumsum(log_ret, axis=0))
    open_ = close * np.exp(-log_ret * rng.uniform(0.2, 0.8, shape))
    return Bars(
        ts_ns=ts, open=open_, high=np.maximum(open_, close) * 1.0003,
        low=np.minimum(open_, close) * 0.9997, close=close, volume=np.full(shape, 1e4),
        symbols=tuple(f"S{i:02d}" for i in range(N_SYMBOLS)), timeframe="1m", source="demo",
        periods_per_year=float(DAYS * MINUTES), version="bench",
    )  # fmt: skip


def breakdown(page: str) -> dict[str, int]:
    plotly_js = re.search(r'id="plotly-js"[^>]*>(.*?)</script>', page, re.S)
    figures = re.findall(r'<script type="application/json" id="(figure-[\w-]+)">(.*?)</script>',
                         page, re.S)  # fmt: skip
    trades = re.search(r'<section id="trades">.*?</section>', page, re.S)
    sizes = {"plotly.js (gzip + base64)": len(plotly_js.group(1)) if plotly_js else 0}
    sizes |= {name: len(spec) for name, spec in figures}
    sizes["trades table"] = len(trades.group(0)) if trades else 0
    sizes["everything else"] = len(page) - sum(sizes.values())
    return sizes


def browser_ms(path: Path) -> tuple[float, float] | None:
    """(ms until every chart is drawn, as the page measured it; wall-clock s incl. start-up)."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        return None
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()

        def as_fds_3_and_4() -> None:  # in the child: the pipe ends chromium expects
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--remote-debugging-pipe", f"--user-data-dir={profile}", "--window-size=1280,900",
             "about:blank"],
            close_fds=False, preexec_fn=as_fds_3_and_4, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        reader = os.fdopen(from_chrome_r, "rb")
        writer = os.fdopen(to_chrome_w, "wb")
        buffered = b""
        ids = iter(range(1, 1_000_000))

        def call(method: str, session: str | None = None, **params: object) -> dict:
            nonlocal buffered
            msg_id = next(ids)
            msg: dict = {"id": msg_id, "method": method, "params": params}
            if session:
                msg["sessionId"] = session
            writer.write(json.dumps(msg).encode() + b"\0")
            writer.flush()
            while True:
                while b"\0" not in buffered:
                    chunk = reader.read1(65536)
                    if not chunk:
                        raise RuntimeError("chromium closed the DevTools pipe")
                    buffered += chunk
                raw, buffered = buffered.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == msg_id:
                    return reply.get("result", {})

        try:
            started = time.perf_counter()
            page = next(t for t in call("Target.getTargets")["targetInfos"] if t["type"] == "page")
            session = call("Target.attachToTarget", targetId=page["targetId"], flatten=True)
            sid = session["sessionId"]
            call("Page.navigate", sid, url=path.as_uri())
            drawn = None
            while drawn is None and time.perf_counter() - started < 120:
                time.sleep(0.1)
                value = call("Runtime.evaluate", sid, returnByValue=True, expression=DRAWN)
                drawn = value.get("result", {}).get("value")
            return float(drawn or "nan"), time.perf_counter() - started
        finally:
            proc.kill()
            proc.wait()


def main() -> None:
    bars = session_bars()
    strategy = barlab.load_strategy("sma_crossover")(fast=10, slow=50)
    result = barlab.backtest(strategy, bars)
    print(f"{N_SYMBOLS} symbols x {bars.n_bars:,} minute bars, {result.trades.height:,} trades, "
          f"{result.orders.height:,} orders")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.html"
        times = []
        for _ in range(4):
            start = time.perf_counter()
            write_report(result, path, bars=bars)
            times.append(time.perf_counter() - start)
        size = path.stat().st_size
        print(f"report size          {size / 1e6:8.2f} MB  (target <= 10 MB)")
        print(
            f"write_report         {times[0]:8.2f} s   first call (trades, orders, benchmark "
            "and metrics computed on first use)"
        )
        print(f"write_report         {min(times[1:]):8.2f} s   best of 3 more")
        for name, n in breakdown(path.read_text(encoding="utf-8")).items():
            print(f"  {name:<28}{n / 1e3:9.0f} kB")
        runs = [browser_ms(path) for _ in range(3)]
        if runs[0] is None:
            print("browser              chromium not installed; render time not measured")
            return
        drawn = sorted(ms for ms, _ in runs if ms is not None)
        print(f"browser: every chart drawn {drawn[0] / 1e3:.2f} s (best) / "
              f"{drawn[len(drawn) // 2] / 1e3:.2f} s (median of 3) after navigation, "
              "headless chromium")  # fmt: skip


if __name__ == "__main__":
    main()
