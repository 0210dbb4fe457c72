"""RAPL through the Linux powercap sysfs tree: CPU package and DRAM energy counters.

Zones live under ``/sys/class/powercap`` (injectable) as ``intel-rapl:<pkg>`` and
``intel-rapl:<pkg>:<sub>``; AMD Zen CPUs report through the same ``*-rapl`` zones. Package zones
are measured as ``cpu``, ``dram`` zones as ``ram``; ``core``/``uncore`` (inside the package),
``psys`` (overlaps everything) and ``intel-rapl-mmio`` (a second view of the package) are not,
so nothing is counted twice. ``energy_uj`` wraps at ``max_energy_range_uj``; each read adds the
delta since the previous read with one wrap allowed, and the telemetry thread reads often enough
that a second wrap cannot happen between reads.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from llenergymeasure.domain.energy import DeviceKind
from llenergymeasure.domain.metrics import Confidence
from llenergymeasure.energy.base import (
    NAN,
    NO_REASONS,
    Channel,
    ChannelEnergy,
    DeviceRef,
    TelemetryRow,
)

POWERCAP_ROOT = Path("/sys/class/powercap")
#: RAPL counters update about every millisecond; one that has not moved in this long is stuck.
STUCK_AFTER_SEC = 0.05
#: Power assumed when working out how fast a counter can wrap (above any CPU package's draw).
ASSUMED_MAX_POWER_W = 1000.0

_ZONE_DIR = re.compile(r"^[a-z]+-rapl:(\d+(?::\d+)*)$")
_GRANT_HINT = (
    "energy_uj is readable by root only since Linux 5.10; grant read access with "
    "`sudo chmod a+r /sys/class/powercap/*rapl:*/energy_uj` (until reboot; a udev rule or "
    "tmpfiles.d entry makes it permanent) or run as root"
)


@dataclass(frozen=True)
class RaplZone:
    """One measured powercap zone: a CPU package or its DRAM."""

    path: Path
    zone_id: str
    name: str
    package: str
    kind: DeviceKind
    max_energy_range_uj: int

    @property
    def energy_file(self) -> Path:
        return self.path / "energy_uj"

    @property
    def wrap_sec(self) -> float:
        """Shortest time in which the counter can wrap (at ASSUMED_MAX_POWER_W)."""
        return self.max_energy_range_uj / 1e6 / ASSUMED_MAX_POWER_W


@dataclass
class RaplDiscovery:
    """Readable zones, and why the others (or the whole tree) are unusable."""

    root: Path
    zones: list[RaplZone] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    status: str = "absent"  # 'available', 'absent', 'no permission', 'error'
    detail: str = ""


def _read_text(path: Path) -> str:
    return path.read_text().strip()


def discover_rapl(root: Path | str = POWERCAP_ROOT) -> RaplDiscovery:
    """Find the package and DRAM zones under ``root`` and check each can be read."""
    root = Path(root)
    found = RaplDiscovery(root=root)
    if not root.is_dir():
        found.detail = f"{root} does not exist (no powercap driver)"
        return found
    zone_dirs = sorted(
        (p for p in root.iterdir() if _ZONE_DIR.match(p.name)),
        key=lambda p: [int(x) for x in _ZONE_DIR.match(p.name).group(1).split(":")],  # type: ignore[union-attr]
    )
    if not zone_dirs:
        found.detail = f"{root} has no RAPL zones (intel-rapl:*)"
        return found
    names: dict[str, str] = {}
    denied: list[Path] = []
    for zone_dir in zone_dirs:
        zone_id = _ZONE_DIR.match(zone_dir.name).group(1)  # type: ignore[union-attr]
        try:
            name = _read_text(zone_dir / "name")
        except OSError as exc:
            found.warnings.append(f"RAPL: cannot read {zone_dir / 'name'} ({exc.strerror})")
            continue
        names[zone_id] = name
        if name.startswith("package"):
            kind: DeviceKind = "cpu"
            package = name
        elif name == "dram":
            kind = "ram"
            parent = zone_id.rsplit(":", 1)[0] if ":" in zone_id else None
            package = names.get(parent, f"package-{parent}") if parent else f"dram-{zone_id}"
        else:
            continue  # core/uncore are inside the package; psys overlaps everything
        try:
            max_range = int(_read_text(zone_dir / "max_energy_range_uj"))
            with open(zone_dir / "energy_uj", "rb") as fh:
                int(fh.read())
        except PermissionError:
            denied.append(zone_dir / "energy_uj")
            continue
        except (OSError, ValueError) as exc:
            found.warnings.append(f"RAPL: cannot read {zone_dir} ({exc}); zone skipped")
            continue
        found.zones.append(
            RaplZone(
                path=zone_dir,
                zone_id=zone_id,
                name=name,
                package=package,
                kind=kind,
                max_energy_range_uj=max_range,
            )
        )
    for path in denied:
        found.warnings.append(f"RAPL: cannot read {path} (permission denied); {_GRANT_HINT}")
    if found.zones:
        found.status = "available"
        found.detail = ", ".join(f"{z.kind}:{z.package}" for z in found.zones)
    elif denied:
        found.status = "no permission"
        found.detail = f"cannot read {denied[0]} (permission denied); {_GRANT_HINT}"
    else:
        found.detail = f"{root} has RAPL zones but no package or dram zone"
    return found


class RaplChannel(Channel):
    """One RAPL zone's energy counter, wrap-aware; sampled by the telemetry thread."""

    method = "rapl"
    confidence = "high"

    def __init__(self, zone: RaplZone, hostname: str) -> None:
        suffix = zone.package if zone.kind == "cpu" else f"{zone.package}:dram"
        self.device = DeviceRef(
            uid=f"{hostname}:rapl:{suffix}",
            label=f"{zone.kind}:{zone.package}",
            kind=zone.kind,
            name=f"RAPL {zone.name}",
        )
        self.zone = zone
        # Read often enough that the counter cannot wrap twice between two reads.
        self.max_poll_interval_sec = zone.wrap_sec / 2
        self._fd = os.open(zone.energy_file, os.O_RDONLY)
        self._lock = threading.Lock()
        self._open = False
        self._window_last_uj = 0
        self._window_uj = 0
        self._last_read_t = 0.0
        self._window_t0 = 0.0
        self._longest_gap_sec = 0.0
        self._sample_last: tuple[float, int] | None = None

    def read_uj(self) -> int:
        """The raw counter in microjoules."""
        return int(os.pread(self._fd, 32, 0))

    def _delta(self, previous: int, current: int) -> int:
        if current >= previous:
            return current - previous
        return current + self.zone.max_energy_range_uj - previous  # wrapped once

    def _accumulate(self, t: float, value: int) -> None:
        self._window_uj += self._delta(self._window_last_uj, value)
        self._window_last_uj = value
        self._longest_gap_sec = max(self._longest_gap_sec, t - self._last_read_t)
        self._last_read_t = t

    def start(self, t: float) -> None:
        with self._lock:
            self._window_last_uj = self.read_uj()
            self._window_uj = 0
            self._last_read_t, self._longest_gap_sec = t, 0.0
            self._window_t0 = t
            self._open = True

    def sample_row(self, t: float) -> TelemetryRow:
        with self._lock:
            value = self.read_uj()
            if self._open:
                self._accumulate(t, value)
            power = NAN
            if self._sample_last is not None and t > self._sample_last[0]:
                last_t, last_uj = self._sample_last
                power = self._delta(last_uj, value) / 1e6 / (t - last_t)
            self._sample_last = (t, value)
        return (power, value / 1e6, NAN, NAN, NAN, NAN, NO_REASONS)

    def stop(self, t: float) -> ChannelEnergy:
        with self._lock:
            if not self._open:
                raise RuntimeError("stop() without start()")
            self._accumulate(t, self.read_uj())
            self._open = False
            energy_j = self._window_uj / 1e6
            gap = self._longest_gap_sec
            duration = t - self._window_t0
        warnings = []
        confidence: Confidence | None = None
        if self._window_uj == 0 and duration >= STUCK_AFTER_SEC:
            confidence = "low"
            warnings.append(
                f"{self.device.label}: the RAPL energy counter did not advance in {duration:.3f} s "
                "(common on virtual machines, which expose a counter the host does not update); "
                "0 J is not a measurement (confidence low)"
            )
        if gap > self.zone.wrap_sec:
            warnings.append(
                f"{self.device.label}: {gap:.0f} s passed between two RAPL reads, longer than the "
                f"{self.zone.wrap_sec:.0f} s in which its counter can wrap; if it wrapped twice "
                "the energy is too low"
            )
        return ChannelEnergy(energy_j=energy_j, warnings=warnings, confidence=confidence)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def build_rapl_channels(discovery: RaplDiscovery, hostname: str) -> list[RaplChannel]:
    """One channel per discovered zone."""
    return [RaplChannel(zone, hostname) for zone in discovery.zones]
