"""A fake host for the CPU/RAM estimate: fixed model, cores and RAM, scripted CPU times."""

from __future__ import annotations

from collections.abc import Callable

from llenergymeasure.energy.estimate import CpuTimes, Host


class ScriptedCpuTimes:
    """Cumulative CPU seconds that grow at a busy share the test sets, per elapsed second."""

    def __init__(self, clock: Callable[[], float], cores: int = 4) -> None:
        self.clock = clock
        self.cores = cores
        self.busy_share = 0.0
        self._busy = 0.0
        self._total = 0.0
        self._last = clock()

    def set_busy(self, share: float) -> None:
        self._catch_up()
        self.busy_share = share

    def _catch_up(self) -> None:
        now = self.clock()
        elapsed = (now - self._last) * self.cores
        self._busy += elapsed * self.busy_share
        self._total += elapsed
        self._last = now

    def __call__(self) -> CpuTimes:
        self._catch_up()
        return CpuTimes(self._busy, self._total)


def fake_host(
    clock: Callable[[], float],
    *,
    cpu_model: str | None = "AMD EPYC 7763 64-Core Processor",
    cores: int = 64,
    ram_gb: float = 512.0,
    hostname: str = "node1",
) -> tuple[Host, ScriptedCpuTimes]:
    """A Host whose CPU times follow a scripted busy share."""
    times = ScriptedCpuTimes(clock, cores)
    host = Host(
        hostname=hostname,
        cpu_model=cpu_model,
        physical_cores=cores,
        ram_bytes=int(ram_gb * 1e9),
        cpu_times=times,
    )
    return host, times
