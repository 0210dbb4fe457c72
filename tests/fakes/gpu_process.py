"""A fake GPU on the real clock, for dry runs of the GPU check (benchmarks/gpu_check.py).

``SwitchedPower`` is a power trace that a fake load switches between idle and busy watts as it
runs; its integral is exact, and it can be mirrored to a file so that a second process (the
fake nvidia-smi) plays the same trace. ``install_fake_gpu`` puts a fake ``pynvml`` with one such
GPU into ``sys.modules``, timed by ``time.monotonic``.

``python -m tests.fakes.gpu_process MODULE ARGS...`` runs MODULE (e.g.
``llenergymeasure.cli.main``) as ``__main__`` in a process whose ``pynvml`` is the fake, so
``llem run`` and ``llem doctor`` meter a scripted GPU through their real NVML code.
"""

from __future__ import annotations

import bisect
import runpy
import sys
import threading
import time
from pathlib import Path

from tests.fakes.fake_pynvml import FakeGpu, FakePynvml, gpu_uuid
from tests.fakes.traces import PowerTrace, ramp_plus_square

FAKE_GPU_NAME = "NVIDIA H200"
#: The fake counter's update period (s); the dry run checks that the GPU check measures it.
FAKE_COUNTER_UPDATE_SEC = 0.1


class SwitchedPower:
    """Piecewise-constant power on trace time (s since ``origin``, a time.monotonic value)."""

    def __init__(self, idle_w: float, origin: float, mirror: Path | None = None) -> None:
        self.origin = origin
        self._times = [0.0]
        self._watts = [idle_w]
        self._energy = [0.0]  # exact energy at each switch
        self._lock = threading.Lock()
        self.mirror = mirror
        if mirror is not None:
            mirror.write_text(f"{origin:.6f} {idle_w}\n")

    def switch(self, watts: float) -> None:
        """From now on the device draws ``watts``."""
        t = time.monotonic() - self.origin
        with self._lock:
            t = max(t, self._times[-1])
            self._energy.append(self._energy[-1] + self._watts[-1] * (t - self._times[-1]))
            self._times.append(t)
            self._watts.append(watts)
        if self.mirror is not None:
            with self.mirror.open("a") as f:
                f.write(f"{self.origin + t:.6f} {watts}\n")

    def power_w(self, t: float) -> float:
        with self._lock:
            i = max(0, bisect.bisect_right(self._times, t) - 1)
            return self._watts[i]

    def energy_j(self, t: float) -> float:
        with self._lock:
            i = max(0, bisect.bisect_right(self._times, t) - 1)
            return self._energy[i] + self._watts[i] * max(0.0, t - self._times[i])

    def trace(self, power_lag_sec: float = 0.0) -> PowerTrace:
        """The trace a fake GPU plays: power readings ``power_lag_sec`` late (as NVML's averaged
        power is), the energy counter exact."""
        return PowerTrace(lambda t: self.power_w(t - power_lag_sec), self.energy_j)


def read_mirror(path: Path) -> list[tuple[float, float]]:
    """The (monotonic time, watts) switch points a SwitchedPower wrote."""
    points = []
    for line in path.read_text().splitlines():
        t, w = line.split()
        points.append((float(t), float(w)))
    return points


def install_fake_gpu(trace: PowerTrace, *, origin: float | None = None) -> FakePynvml:
    """Make ``import pynvml`` give one fake H200 playing ``trace`` on the real clock."""
    fake = FakePynvml(
        [
            FakeGpu(
                uuid=gpu_uuid(0),
                name=FAKE_GPU_NAME,
                power=trace,
                counter_update_sec=FAKE_COUNTER_UPDATE_SEC,
                memory_used_bytes=3_000_000_000,
            )
        ],
        clock=time.monotonic,  # type: ignore[arg-type]  # any monotonic callable will do
        driver_version="580.00.00",
        cuda_driver_version=13000,
    )
    if origin is not None:
        fake.origin = origin
    sys.modules["pynvml"] = fake
    return fake


def claim_the_fake_gpu() -> None:
    """Make the transformers engine say it runs on the fake GPU 0 (it computes on the CPU), so
    a run meters that GPU as a real one would (an engine on no GPU gets no GPU meter)."""
    from llenergymeasure.engines import registry
    from llenergymeasure.measure import experiment

    registry.ENGINES["transformers"] = "tests.fakes.fake_gpu_engine:FakeGpuEngine"
    experiment._device_names = lambda engine: [FAKE_GPU_NAME]  # type: ignore[attr-defined]


def main(argv: list[str]) -> None:
    """Run module argv[0] as __main__ with argv[1:] as its arguments, under a fake GPU."""
    if not argv:
        raise SystemExit("usage: python -m tests.fakes.gpu_process MODULE [ARGS...]")
    install_fake_gpu(ramp_plus_square(start_w=120.0, end_w=450.0, ramp_sec=2.0, period_sec=0.7))
    claim_the_fake_gpu()
    sys.argv = argv
    runpy.run_module(argv[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
