"""CLI start time: `llem --help` against a bare `python -c pass`, side by side.

python benchmarks/cli_startup.py [--repeat 10]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    bare, llem = [], []
    for _ in range(args.repeat):
        bare.append(timed([sys.executable, "-c", "pass"]))
        llem.append(timed([sys.executable, "-m", "llenergymeasure.cli.main", "--help"]))
    b, lm = statistics.median(bare), statistics.median(llem)
    print(f"python -c pass: {b * 1e3:.0f} ms; llem --help: {lm * 1e3:.0f} ms; ratio {lm / b:.1f}x")


if __name__ == "__main__":
    main()
