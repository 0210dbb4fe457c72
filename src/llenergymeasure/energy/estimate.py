"""The estimate (confidence low): CPU power from utilisation x TDP, RAM power from its size.

Used only when nothing measures the CPU or RAM, and labelled so in every result.

- **CPU**: ``P = u x W_core x cores``. ``u`` is the *system-wide* busy share of all CPUs over the
  window (from ``/proc/stat`` via psutil, not only this process's threads): like RAPL and NVML,
  the estimate describes the device, whatever runs on it. ``W_core`` is the TDP of the CPU
  model divided by its core count (table below), else ``DEFAULT_W_PER_CORE``; ``cores`` is the
  number of physical cores this host sees, so a VM is charged for its share of the package.
- **RAM**: ``RAM_W_PER_GB`` (about 3 W per 8 GB DDR4 module) x installed GB, constant.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from llenergymeasure.energy.base import (
    EMPTY_ROW,
    NAN,
    NO_REASONS,
    Channel,
    ChannelEnergy,
    DeviceRef,
    TelemetryRow,
)

#: Watts per physical core when the CPU model is not in the table (about the table's median).
DEFAULT_W_PER_CORE = 6.0
#: Watts per GB of installed RAM (about 3 W per 8 GB DDR4 module).
RAM_W_PER_GB = 0.375

#: (vendor word, model number, TDP in W, cores) from the vendors' specification sheets.
CPU_TDP_TABLE: tuple[tuple[str, str, float, int], ...] = (
    ("EPYC", "9654", 360.0, 96),
    ("EPYC", "9554", 360.0, 64),
    ("EPYC", "9454", 290.0, 48),
    ("EPYC", "7763", 280.0, 64),
    ("EPYC", "7742", 225.0, 64),
    ("EPYC", "7713", 225.0, 64),
    ("EPYC", "7543", 225.0, 32),
    ("Xeon", "8480", 350.0, 56),
    ("Xeon", "8468", 350.0, 48),
    ("Xeon", "8380", 270.0, 40),
    ("Xeon", "8358", 250.0, 32),
    ("Xeon", "8275CL", 240.0, 24),
    ("Xeon", "6338", 205.0, 32),
    ("Xeon", "6248R", 205.0, 24),
    ("Xeon", "6248", 150.0, 20),
    ("Core", "i9-13900K", 125.0, 24),
    ("Ryzen", "7950X", 170.0, 16),
)


class CpuTimes(NamedTuple):
    """Cumulative busy and total CPU seconds over all CPUs."""

    busy_sec: float
    total_sec: float


def psutil_cpu_times() -> CpuTimes:
    """Busy/total CPU seconds of the whole system through psutil (any platform)."""
    import psutil

    times = psutil.cpu_times()
    busy = sum(getattr(times, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq"))
    idle = sum(getattr(times, f, 0.0) for f in ("idle", "iowait", "steal"))
    return CpuTimes(busy, busy + idle)


_CLOCK_TICKS: float | None = None


def _parse_proc_stat(head: bytes, path: str) -> CpuTimes:
    """psutil_cpu_times's figures from the start of /proc/stat: the same fields (jiffies /
    SC_CLK_TCK) summed in the same order, so the floats are identical."""
    global _CLOCK_TICKS
    if _CLOCK_TICKS is None:
        _CLOCK_TICKS = float(os.sysconf("SC_CLK_TCK"))
    line, newline, _ = head.partition(b"\n")
    values = line.split()
    if not newline or len(values) < 8 or values[0] != b"cpu":
        raise ValueError(f"{path}: unexpected first line {line[:80]!r}")
    ticks = _CLOCK_TICKS
    user, nice, system, idle, iowait, irq, softirq = (float(v) / ticks for v in values[1:8])
    steal = float(values[8]) / ticks if len(values) > 8 else 0.0
    busy = 0 + user + nice + system + irq + softirq  # the order psutil_cpu_times sums in
    return CpuTimes(busy, busy + (0 + idle + iowait + steal))


def proc_stat_cpu_times(path: str) -> CpuTimes:
    """psutil_cpu_times's figures from the first line of Linux's /proc/stat, read directly.

    Raises OSError or ValueError where the file cannot be read or parsed.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        return _parse_proc_stat(os.read(fd, 1024), path)
    finally:
        os.close(fd)


class _ProcStatReader:
    """/proc/stat read through one descriptor kept open: one ``pread`` a sample (the kernel
    writes the file afresh on every read from offset 0) instead of open, read and close, each
    of which lets another thread take the GIL while the telemetry thread waits to get it
    back. Reopened when the path changes (psutil.PROCFS_PATH set after the first read)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._path: str | None = None
        self._fd = -1

    def __call__(self, path: str) -> CpuTimes:
        if path != self._path:
            self._reopen(path)
        return _parse_proc_stat(os.pread(self._fd, 1024, 0), path)

    def _reopen(self, path: str) -> None:
        with self._lock:
            if path == self._path:
                return
            fd = os.open(path, os.O_RDONLY)
            old, self._fd, self._path = self._fd, fd, path
            if old >= 0:
                os.close(old)


_read_proc_stat = _ProcStatReader()
_fast_times_work: bool | None = None


def system_cpu_times() -> CpuTimes:
    """Busy/total CPU seconds of the whole system; steal and iowait count as not busy.

    /proc/stat read directly where it works (Linux), else psutil; the figures are the same.
    """
    global _fast_times_work
    if _fast_times_work is not False:
        import psutil  # its PROCFS_PATH (e.g. a host's /proc mounted in a container) holds

        try:
            times = _read_proc_stat(f"{psutil.PROCFS_PATH}/stat")
        except (OSError, ValueError):
            _fast_times_work = False
        else:
            _fast_times_work = True
            return times
    return psutil_cpu_times()


def read_cpu_model(cpuinfo: Path | str = "/proc/cpuinfo") -> str | None:
    """The 'model name' of the first CPU in /proc/cpuinfo, or None."""
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        return None
    return None


def cpu_watts_per_core(model: str | None) -> tuple[float, str]:
    """Watts per core for a CPU model, and where the figure comes from."""
    if model:
        for vendor, number, tdp_w, cores in CPU_TDP_TABLE:
            if vendor.lower() in model.lower() and re.search(
                rf"(?<![0-9A-Za-z]){re.escape(number)}(?![0-9])", model
            ):
                return tdp_w / cores, f"{vendor} {number}: TDP {tdp_w:g} W / {cores} cores"
    shown = repr(model) if model else "unknown"
    return DEFAULT_W_PER_CORE, f"CPU model {shown} not in the table: default"


@dataclass
class Host:
    """What the estimate needs to know about this machine (injectable in tests)."""

    hostname: str
    cpu_model: str | None
    physical_cores: int
    ram_bytes: int
    cpu_times: Callable[[], CpuTimes] = field(default=system_cpu_times, repr=False)

    @classmethod
    def local(cls) -> Host:
        """This machine."""
        import psutil

        cores = psutil.cpu_count(logical=False) or max(1, (os.cpu_count() or 2) // 2)
        return cls(
            hostname=socket.gethostname(),
            cpu_model=read_cpu_model(),
            physical_cores=cores,
            ram_bytes=int(psutil.virtual_memory().total),
        )


class CpuEstimateChannel(Channel):
    """CPU energy = busy share over the window x watts per core x cores x duration."""

    method = "estimate"
    confidence = "low"

    def __init__(self, host: Host) -> None:
        self.host = host
        self.w_per_core, self.source = cpu_watts_per_core(host.cpu_model)
        self.max_power_w = self.w_per_core * host.physical_cores
        self.device = DeviceRef(
            uid=f"{host.hostname}:cpu-estimate", label="cpu", kind="cpu", name=host.cpu_model
        )
        self._lock = threading.Lock()
        self._t0 = 0.0
        self._start: CpuTimes | None = None
        self._sample_last: CpuTimes | None = None

    def describe_model(self) -> str:
        """The formula with this host's numbers."""
        return (
            f"CPU = utilisation x {self.w_per_core:.2f} W/core x {self.host.physical_cores} "
            f"cores ({self.source})"
        )

    @staticmethod
    def _busy_share(a: CpuTimes, b: CpuTimes) -> float:
        total = b.total_sec - a.total_sec
        return min(1.0, max(0.0, (b.busy_sec - a.busy_sec) / total)) if total > 0 else 0.0

    def start(self, t: float) -> None:
        with self._lock:
            self._start, self._t0 = self.host.cpu_times(), t

    def sample_row(self, t: float) -> TelemetryRow:
        now = self.host.cpu_times()
        with self._lock:
            last, self._sample_last = self._sample_last, now
        if last is None:
            return EMPTY_ROW
        share = self._busy_share(last, now)
        return (share * self.max_power_w, NAN, NAN, NAN, NAN, 100 * share, NO_REASONS)

    def stop(self, t: float) -> ChannelEnergy:
        end = self.host.cpu_times()
        with self._lock:
            if self._start is None:
                raise RuntimeError("stop() without start()")
            start, self._start = self._start, None
        share = self._busy_share(start, end)
        duration = t - self._t0
        return ChannelEnergy(
            energy_j=share * self.max_power_w * duration,
            warnings=[
                f"cpu energy is an estimate (confidence low): {self.describe_model()}; "
                f"system-wide utilisation over the window {100 * share:.1f}%"
            ],
        )


class RamEstimateChannel(Channel):
    """RAM energy = RAM_W_PER_GB x installed GB x duration."""

    method = "estimate"
    confidence = "low"

    def __init__(self, host: Host) -> None:
        self.ram_gb = host.ram_bytes / 1e9
        self.power_w = RAM_W_PER_GB * self.ram_gb
        self.device = DeviceRef(uid=f"{host.hostname}:ram-estimate", label="ram", kind="ram")
        self._t0: float | None = None

    def start(self, t: float) -> None:
        self._t0 = t

    def stop(self, t: float) -> ChannelEnergy:
        if self._t0 is None:
            raise RuntimeError("stop() without start()")
        duration, self._t0 = t - self._t0, None
        return ChannelEnergy(
            energy_j=self.power_w * duration,
            warnings=[
                f"ram energy is an estimate (confidence low): {RAM_W_PER_GB} W/GB x "
                f"{self.ram_gb:.1f} GB = {self.power_w:.1f} W, constant"
            ],
        )
