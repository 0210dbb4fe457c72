"""Idle baseline: each device's power at rest, measured before the window and cached with a TTL.

The baseline is an ordinary meter window over an idle period (default 10 s), so every
instrument measures idle power the same way it measures the workload. It is cached on disk per
device uid and instrument, because a study runs each experiment in a fresh process and should
not re-measure the baseline before every one; an entry older than the TTL is measured again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from llenergymeasure.energy.base import Baseline, EnergyMeter
from llenergymeasure.files import atomic_write_text

DEFAULT_BASELINE_SEC = 10.0
#: Idle power drifts with temperature and background load; re-measure after an hour.
DEFAULT_BASELINE_TTL_SEC = 3600.0
CACHE_FILE_NAME = "idle_baseline.json"


def default_cache_path() -> Path:
    """$LLEM_CACHE_DIR, else $XDG_CACHE_HOME/llenergymeasure, else ~/.cache/llenergymeasure."""
    base = os.environ.get("LLEM_CACHE_DIR")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
        base = os.path.join(xdg, "llenergymeasure")
    return Path(base) / CACHE_FILE_NAME


class BaselineCache:
    """A JSON file of idle power per (device uid, instrument), merged under a file lock."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()

    @staticmethod
    def key(uid: str, method: str) -> str:
        return f"{uid}|{method}"

    def load(self) -> dict[str, dict[str, Any]]:
        """All entries; an unreadable or corrupt file counts as empty."""
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        entries = data.get("entries") if isinstance(data, dict) else None
        return entries if isinstance(entries, dict) else {}

    def lookup(self, keys: list[str], now_unix: float, ttl_sec: float) -> dict[str, dict] | None:
        """Entries for every key if all are fresh (0 <= age <= ttl), else None."""
        entries = self.load()
        found = {}
        for key in keys:
            entry = entries.get(key)
            if not isinstance(entry, dict):
                return None
            try:
                age = now_unix - float(entry["measured_at_unix"])
                power = float(entry["power_w"])
            except (KeyError, TypeError, ValueError):
                return None
            if not (0 <= age <= ttl_sec) or not math.isfinite(power) or power < 0:
                return None
            found[key] = entry
        return found

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def store(self, new_entries: dict[str, dict[str, Any]]) -> None:
        """Merge entries into the file (atomic replace; concurrent writers serialised)."""
        with self._locked():
            entries = self.load()
            entries.update(new_entries)
            text = json.dumps({"version": 1, "entries": entries}, indent=1, sort_keys=True)
            atomic_write_text(self.path, text)


def measure_baseline(
    source: Any,
    seconds: float = DEFAULT_BASELINE_SEC,
    cache: bool = True,
    *,
    ttl_sec: float = DEFAULT_BASELINE_TTL_SEC,
    cache_path: str | Path | None = None,
    sleep: Callable[[float], object] = time.sleep,
    now_unix: Callable[[], float] = time.time,
) -> Baseline:
    """Idle power of every device of a meter (or of a sampler's meter).

    ``seconds=0`` disables the baseline (method 'none'). With ``cache``, fresh entries for
    every device are reused (method 'cached'); otherwise the devices are measured at rest for
    ``seconds`` through the meter's own window (method 'measured') and the cache is updated.
    """
    meter = source if isinstance(source, EnergyMeter) else getattr(source, "meter", None)
    if not isinstance(meter, EnergyMeter):
        raise TypeError("measure_baseline needs an EnergyMeter or a TelemetrySampler of one")
    if not seconds > 0:
        return Baseline.none()
    if not meter.devices:
        return Baseline(power_w={}, method="measured")  # nothing to measure, nothing to wait for
    store = BaselineCache(cache_path) if cache else None
    methods = _methods(meter)
    keys = {d.uid: BaselineCache.key(d.uid, methods.get(d.uid, "?")) for d in meter.devices}
    if store is not None:
        now = now_unix()
        hit = store.lookup(list(keys.values()), now, ttl_sec)
        if hit is not None:
            oldest = min(float(e["measured_at_unix"]) for e in hit.values())
            return Baseline(
                power_w={uid: float(hit[key]["power_w"]) for uid, key in keys.items()},
                method="cached",
                duration_sec=min(float(e.get("duration_sec", 0.0)) for e in hit.values()),
                measured_at_unix=oldest,
                warnings=(
                    f"idle baseline reused from {store.path} (measured {now - oldest:.0f} s ago; "
                    f"re-measured after {ttl_sec:.0f} s)",
                ),
            )
    meter.begin_window(label="baseline")
    sleep(seconds)
    window = meter.end_window()
    measured_at = now_unix()
    duration = window.duration_sec
    if duration <= 0:
        return Baseline.none("idle baseline window had no duration; raw energy only")
    power = {d.uid: d.energy_j / duration for d in window.devices}
    stored_keys = {d.uid: BaselineCache.key(d.uid, d.method) for d in window.devices}
    notes = tuple(f"idle baseline: {w}" for w in window.warnings if w not in meter.warnings)
    if store is not None:
        try:
            store.store(
                {
                    stored_keys[uid]: {
                        "power_w": watts,
                        "measured_at_unix": measured_at,
                        "duration_sec": duration,
                    }
                    for uid, watts in power.items()
                }
            )
        except OSError as exc:
            notes += (f"idle baseline not cached ({store.path}: {exc.strerror or exc})",)
    return Baseline(
        power_w=power,
        method="measured",
        duration_sec=duration,
        measured_at_unix=measured_at,
        warnings=notes,
    )


def _methods(meter: EnergyMeter) -> dict[str, str]:
    """Instrument of each device (so a cached NVML baseline is never reused for an estimate)."""
    channels = meter.telemetry_channels()
    if channels:
        return {c.device.uid: c.method for c in channels}
    method = getattr(meter, "method", "meter")
    return {d.uid: method for d in meter.devices}
