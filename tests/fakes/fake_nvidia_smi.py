"""A fake ``nvidia-smi --query-gpu=timestamp,power.draw --format=csv,noheader,nounits -lms N``.

It prints what the real tool prints in that mode (one ``YYYY/MM/DD HH:MM:SS.mmm, watts`` line per
period, wall-clock stamps) while playing the trace a SwitchedPower mirrors to ``--trace-file``,
``--lag-sec`` late, until it is terminated. Only the options the GPU check uses are understood.

    python -m tests.fakes.fake_nvidia_smi --trace-file F [--lag-sec S] -i 0 \\
        --query-gpu=timestamp,power.draw --format=csv,noheader,nounits -lms 100
"""

from __future__ import annotations

import argparse
import bisect
import signal
import sys
import time
from datetime import datetime
from pathlib import Path

from tests.fakes.gpu_process import read_mirror


def smi_timestamp(wall: float) -> str:
    """nvidia-smi's timestamp format, local time, milliseconds."""
    return datetime.fromtimestamp(wall).strftime("%Y/%m/%d %H:%M:%S.%f")[:-3]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trace-file", type=Path, required=True)
    parser.add_argument("--lag-sec", type=float, default=0.0)
    parser.add_argument("-i", "--id", default="0")
    parser.add_argument("--query-gpu", required=True)
    parser.add_argument("--format", required=True)
    parser.add_argument("-lms", type=int, required=True)
    args = parser.parse_args(argv)
    fields = args.query_gpu.split(",")
    if fields != ["timestamp", "power.draw"] or args.format != "csv,noheader,nounits":
        print(f"fake nvidia-smi: unsupported query {args.query_gpu} {args.format}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    period = args.lms / 1000.0
    next_t = time.monotonic()
    while True:
        points = read_mirror(args.trace_file)
        times = [t for t, _ in points]
        now = time.monotonic()
        i = max(0, bisect.bisect_right(times, now - args.lag_sec) - 1)
        print(f"{smi_timestamp(time.time())}, {points[i][1]:.2f}", flush=True)
        next_t += period
        time.sleep(max(0.0, next_t - time.monotonic()))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
