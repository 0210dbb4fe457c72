"""How much CPU the telemetry thread uses at 10 Hz, as a share of one core (goal: under 1%).

Runs the real TelemetrySampler over the real NVML when a GPU driver is present, else over the
fake pynvml from tests/fakes (same code path, scripted devices) plus the CPU/RAM estimate.
Also times a CPU-bound loop with and without the sampler running, to show it does not slow
the measured workload. Usage:

    PYTHONPATH=src:. python benchmarks/telemetry_overhead.py [--seconds 10] [--gpus 8]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from llenergymeasure.energy import TelemetrySampler, create_meter  # noqa: E402
from llenergymeasure.energy.nvml_api import Nvml, NvmlError  # noqa: E402


def _meter(fake_gpus: int):  # type: ignore[no-untyped-def]
    """The auto meter on real NVML if it works, else on fake GPUs; and a description."""
    try:
        Nvml().close()
        meter = create_meter("auto")
        return meter, "real NVML"
    except NvmlError:
        pass
    from tests.fakes.fake_pynvml import FakeGpu, FakePynvml, gpu_uuid

    fake = FakePynvml([FakeGpu(gpu_uuid(i)) for i in range(fake_gpus)])
    fake.clock = time.monotonic  # type: ignore[assignment]
    fake.origin = time.monotonic()
    sys.modules["pynvml"] = fake
    return create_meter("auto"), f"fake pynvml ({fake_gpus} GPUs; no driver here)"


def _workload(seconds: float) -> int:
    """A CPU-bound loop; returns iterations completed in ``seconds``."""
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        sum(range(200))
        n += 1
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--gpus", type=int, default=8, help="fake GPUs when there is no driver")
    args = parser.parse_args()

    meter, source = _meter(args.gpus)
    print(f"devices: {meter.describe()} via {source}")

    sampler = TelemetrySampler(meter, interval_sec=args.interval)
    sampler.start()
    time.sleep(args.seconds)
    telemetry = sampler.stop()
    ticks = len(telemetry.tick_times)
    share = telemetry.cpu_share_of_core
    print(
        f"idle host: {ticks} ticks x {len(telemetry.devices)} devices in "
        f"{telemetry.thread_wall_sec:.2f} s; thread CPU {telemetry.thread_cpu_sec * 1e3:.1f} ms "
        f"= {share * 100:.3f}% of one core ({telemetry.thread_cpu_sec / max(ticks, 1) * 1e6:.0f} "
        f"us per tick) -> goal < 1%: {'met' if share < 0.01 else 'NOT met'}"
    )

    half = max(1.0, args.seconds / 2)
    alone = _workload(half)
    sampler = TelemetrySampler(meter, interval_sec=args.interval)
    sampler.start()
    together = _workload(half)
    busy = sampler.stop()
    print(
        f"busy host: thread CPU {busy.cpu_share_of_core * 100:.3f}% of one core; "
        f"{sampler.missed_ticks} late ticks; "
        f"workload iterations with/without the sampler: {together / alone:.4f}"
    )
    meter.close()


if __name__ == "__main__":
    main()
