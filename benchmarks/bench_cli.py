"""Wall time of the main job, as a user runs it (``../shared/BENCHMARKS.md``: cold start).

    python benchmarks/bench_cli.py

Runs ``backtest run sma_crossover --from 2023-01-01 --to 2023-12-31`` (4 symbols of demo minute
bars) in a fresh directory:
1. cold: empty numba cache (NUMBA_CACHE_DIR) and empty data cache: compiles and generates;
2. warm numba, cold data: generates and caches the demo market;
3. warm: everything cached, report included (target <= 3 s);
4. warm with --no-report.
Prints figures only; no pass/fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ARGS = ["run", "sma_crossover", "--from", "2023-01-01", "--to", "2023-12-31", "--quiet"]


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    exe = shutil.which("backtest", path=os.path.dirname(sys.executable)) or "backtest"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {**os.environ, "NUMBA_CACHE_DIR": str(work / "numba"),
               "XDG_CONFIG_HOME": str(work / "xdg")}  # fmt: skip
        rows = [("cold numba cache, cold data cache", timed([exe, *ARGS], work, env))]
        shutil.rmtree(work / "data")
        rows.append(("warm numba cache, cold data cache", timed([exe, *ARGS], work, env)))
        rows.append(("warm (target <= 3 s)", min(timed([exe, *ARGS], work, env) for _ in range(3))))
        rows.append(("warm, --no-report", min(timed([exe, *ARGS, "--no-report"], work, env)
                                             for _ in range(3))))  # fmt: skip
        report = next((work / "reports" / "runs").glob("*/report.html"))
        for name, seconds in rows:
            print(f"{name:<40}{seconds:8.2f} s")
        print(f"report size {report.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
