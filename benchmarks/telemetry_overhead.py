"""How much CPU the telemetry thread uses at 10 Hz, as a share of one core (goal: under 1%).

Runs the real TelemetrySampler over the real NVML when a GPU driver is present, else over the
fake pynvml from tests/fakes (same code path, scripted devices) plus the CPU/RAM estimate.
In paired rounds (alternating order) it times a CPU-bound loop with and without the sampler
running, until the 95% interval of their ratio is within +-2% or the time cap is hit, and
reports the thread's CPU share over the same rounds with its interval.

Without a driver the figure includes the fake's own Python work (it evaluates traces and counts
calls on every read). ``--fake constant`` makes the fake's reads return fixed values, so the
figure is llem's own per-sample work plus the thread's wake-ups. Neither is what the real
driver calls cost (ctypes calls into the driver, kernel time included): only a GPU host can
measure that, where this script uses the real NVML. Usage:

    PYTHONPATH=src:. python benchmarks/telemetry_overhead.py [--max-sec 120] [--gpus 8] \
        [--fake scripted|constant] [--save]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

sys.path.insert(0, str(ROOT / "benchmarks"))

from _paired import RatioEstimate, ratio_interval, run_paired, save_estimates  # noqa: E402

from llenergymeasure.energy import TelemetrySampler, create_meter  # noqa: E402
from llenergymeasure.energy.nvml_api import Nvml, NvmlError  # noqa: E402


def _meter(fake_gpus: int, kind: str = "scripted"):  # type: ignore[no-untyped-def]
    """The auto meter on real NVML if it works, else on fake GPUs; and a description."""
    try:
        Nvml().close()
        meter = create_meter("auto")
        return meter, "real NVML"
    except NvmlError:
        pass
    from tests.fakes.fake_pynvml import install_wall_clock_fake

    install_wall_clock_fake(fake_gpus, kind)
    what = "constant-reading" if kind == "constant" else "scripted"
    return create_meter("auto"), f"{what} fake pynvml ({fake_gpus} GPUs; no driver here)"


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
    parser.add_argument("--round-sec", type=float, default=1.0, help="workload per member")
    parser.add_argument("--max-sec", type=float, default=120.0, help="time cap per figure")
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--gpus", type=int, default=8, help="fake GPUs when there is no driver")
    parser.add_argument(
        "--fake",
        choices=("scripted", "constant"),
        default="scripted",
        help="without a driver: the scripted fake (its Python work included) or constant reads",
    )
    parser.add_argument("--save", action="store_true", help="write benchmarks/results/*.json")
    args = parser.parse_args()

    meter, source = _meter(args.gpus, args.fake)
    print(f"devices: {meter.describe()} via {source}")
    shares: list[tuple[float, float]] = []

    def with_sampler() -> float:
        sampler = TelemetrySampler(meter, interval_sec=args.interval)
        sampler.start()
        done = _workload(args.round_sec)
        telemetry = sampler.stop()
        shares.append((telemetry.thread_cpu_sec, telemetry.thread_wall_sec))
        return done

    def one_pair(i: int) -> tuple[float, float]:
        if i % 2:
            alone = _workload(args.round_sec)
            return with_sampler(), alone
        together = with_sampler()
        return together, _workload(args.round_sec)

    slowdown = run_paired(
        "workload with/without sampler",
        one_pair,
        max_sec=args.max_sec,
        verbose=False,
        meaning="CPU-bound loop iterations with the telemetry thread running / without",
    )
    # The thread's CPU share per round (CPU s / wall s), with the same interval method.
    centre, low, high = ratio_interval(shares)
    share = RatioEstimate(
        name="telemetry thread CPU / wall",
        ratio=centre,
        low=low,
        high=high,
        rounds=len(shares),
        stopped_by=slowdown.stopped_by,
        target=slowdown.target,
        elapsed_sec=slowdown.elapsed_sec,
        meaning="share of one core used by the telemetry thread while the host is busy",
    )
    meter.close()
    print(slowdown.line())
    print(
        f"telemetry thread: {share.ratio * 100:.3f}% of one core "
        f"[95% CI {share.low * 100:.3f}-{share.high * 100:.3f}%] over {share.rounds} rounds "
        f"at {1 / args.interval:.0f} Hz -> goal < 1%: {'met' if share.high < 0.01 else 'NOT met'}"
    )
    if args.save:
        command = "python " + " ".join(sys.argv)
        what = (
            f"a CPU-bound loop with / without the telemetry thread at {1 / args.interval:.0f} Hz "
            f"({source}), and the thread's share of one core"
        )
        name = "telemetry_overhead" if args.fake == "scripted" else "telemetry_overhead_constant"
        path = save_estimates(name, command, [slowdown, share], what=what)
        print(f"saved {path}")


if __name__ == "__main__":
    main()
