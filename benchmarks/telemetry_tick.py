"""CPU time of one telemetry tick (``TelemetrySampler.sample_once``) over fake GPUs, in a loop.

Separates the fake's cost from llem's own: the same tick over the scripted fake pynvml (which
evaluates traces and counts calls in Python on every read) and over the fake with constant
reads (``constant_readings``), so the second figure is llem's own per-tick work plus the CPU
estimate's /proc/stat read. Hot loop: caches warm, no thread wake-up; the thread at 10 Hz pays
more per tick (see ``telemetry_overhead.py``). Real NVML reads are ctypes calls into the driver,
whose cost is in neither figure. Usage:

    PYTHONPATH=src:. python benchmarks/telemetry_tick.py [--gpus 8] [--ticks 3000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.fakes.fake_pynvml import install_wall_clock_fake  # noqa: E402

from llenergymeasure.energy import TelemetrySampler, create_meter  # noqa: E402


def tick_us(gpus: int, kind: str, ticks: int, repeats: int = 5) -> tuple[float, float, str]:
    """Median and lowest thread-CPU microseconds per tick over ``repeats`` loops."""
    install_wall_clock_fake(gpus, kind)
    meter = create_meter("auto")
    sampler = TelemetrySampler(meter, interval_sec=0.1).start(background=False)
    for _ in range(min(200, ticks)):  # warm up
        sampler.sample_once()
    per_tick = []
    for _ in range(repeats):
        t0 = time.thread_time()
        for _ in range(ticks):
            sampler.sample_once()
        per_tick.append((time.thread_time() - t0) / ticks * 1e6)
    sampler.stop()
    described = meter.describe()
    meter.close()
    return statistics.median(per_tick), min(per_tick), described


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--ticks", type=int, default=3000, help="ticks per timed loop")
    args = parser.parse_args()
    for kind in ("scripted", "constant"):
        median, lowest, described = tick_us(args.gpus, kind, args.ticks)
        print(
            f"{kind} fake: {median:.1f} us per tick (median of 5 loops, lowest {lowest:.1f}) "
            f"= {median * 10 / 1e4:.3f}% of one core at 10 Hz, hot; {described}"
        )


if __name__ == "__main__":
    main()
