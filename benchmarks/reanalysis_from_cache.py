"""Re-analysis from the score cache against the original run ("score once, calibrate many").

Runs a protocol into a fresh folder (fits every job), runs it again (every job cached:
only calibration, metrics, figures and reports), then re-renders the reports alone.

    python benchmarks/reanalysis_from_cache.py [protocols/kde_vs_test.yaml]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(*args: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "harness.cli", *args], check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    protocol = sys.argv[1] if len(sys.argv) > 1 else "protocols/kde_vs_test.yaml"
    with tempfile.TemporaryDirectory() as work:
        out, cache = str(Path(work) / "out"), str(Path(work) / "cache")
        first = timed("run", protocol, "--out", out, "--cache", cache)
        again = timed("run", protocol, "--out", out, "--cache", cache)
        report = timed("report", out)
        startup = timed("--version")
    print(f"protocol {protocol}")
    print(f"first run (fit + score + analyse + report): {first:7.2f} s")
    print(f"second run (all jobs from cache)          : {again:7.2f} s  ({first / again:.1f}x faster)")
    print(f"harness report (re-render only)           : {report:7.2f} s")
    print(f"process start-up alone (harness --version): {startup:7.2f} s")


if __name__ == "__main__":
    main()
