"""Idle baseline: each device's power at rest, measured before the window and cached.

The baseline is an ordinary meter window over an idle period (default 10 s) that begins after
the devices have rested (``settle_sec``, default 5 s, after warmup), so every instrument
measures idle power the same way it measures the workload; it is sampled every 100 ms and
the number of samples is kept. It is cached on disk per device uid and instrument, because a
study runs each experiment in a fresh process; a cached entry is reused only when it is young
enough (TTL) and was measured for at least as long, after at least as much rest, as asked.
``baseline_cache: false`` never uses the cache, ``refresh`` measures and replaces it.
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
from typing import Any, Literal

from llenergymeasure.energy.base import Baseline, EnergyMeter
from llenergymeasure.files import atomic_write_text

DEFAULT_BASELINE_SEC = 10.0
#: Rest after warmup before the idle window: GPUs keep a busy power state (and NVML's ~1 s
#: power average) for a few seconds after their last kernel.
DEFAULT_SETTLE_SEC = 5.0
#: Power samples during the idle window (the telemetry thread's default).
DEFAULT_SAMPLE_INTERVAL_SEC = 0.1
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

    def lookup(
        self,
        keys: list[str],
        now_unix: float,
        ttl_sec: float,
        *,
        min_duration_sec: float = 0.0,
        min_settle_sec: float = 0.0,
    ) -> tuple[dict[str, dict] | None, str]:
        """Entries for every key if all can be reused, else None and why not ('' when absent).

        Reusable: 0 <= age <= ttl, measured for at least ``min_duration_sec`` (less 1% for
        timer granularity) after at least ``min_settle_sec`` of rest.
        """
        entries = self.load()
        found = {}
        for key in keys:
            entry = entries.get(key)
            if not isinstance(entry, dict):
                return None, ""
            try:
                age = now_unix - float(entry["measured_at_unix"])
                power = float(entry["power_w"])
                duration = float(entry.get("duration_sec", 0.0))
                settle = float(entry.get("settle_sec", 0.0))
            except (KeyError, TypeError, ValueError):
                return None, ""
            if not math.isfinite(power) or power < 0:
                return None, ""
            if not 0 <= age <= ttl_sec:
                return None, ""  # expired: measured again, as expected (not a caveat)
            if duration < min_duration_sec * (1 - _DURATION_SLACK):
                return None, (
                    f"for {key} was measured for {duration:.1f} s, less than the "
                    f"{min_duration_sec:g} s asked"
                )
            if settle < min_settle_sec - 1e-9:
                return None, (
                    f"for {key} was measured after {settle:g} s at rest, less than the "
                    f"{min_settle_sec:g} s asked"
                )
            found[key] = entry
        return found, ""

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


CacheMode = bool | Literal["refresh"]
#: How much shorter than requested a cached window may be (timer granularity), as a fraction.
_DURATION_SLACK = 0.01


def measure_baseline(
    source: Any,
    seconds: float = DEFAULT_BASELINE_SEC,
    cache: CacheMode = True,
    *,
    settle_sec: float = 0.0,
    sample_interval_sec: float = DEFAULT_SAMPLE_INTERVAL_SEC,
    ttl_sec: float = DEFAULT_BASELINE_TTL_SEC,
    cache_path: str | Path | None = None,
    sleep: Callable[[float], object] = time.sleep,
    now_unix: Callable[[], float] = time.time,
) -> Baseline:
    """Idle power of every device of a meter (or of a sampler's meter).

    ``seconds=0`` disables the baseline (method 'none'). Otherwise the devices rest for
    ``settle_sec`` and are then measured for ``seconds`` through the meter's own window,
    sampled every ``sample_interval_sec`` (method 'measured'). ``cache``: True reuses a cached
    entry for every device (method 'cached') when it is younger than ``ttl_sec`` and was
    measured for at least ``seconds`` after at least ``settle_sec`` of rest, by the same
    instrument on the same device, and stores what it measures; 'refresh' always measures and
    stores; False neither reads nor writes the cache.
    """
    meter = source if isinstance(source, EnergyMeter) else getattr(source, "meter", None)
    if not isinstance(meter, EnergyMeter):
        raise TypeError("measure_baseline needs an EnergyMeter or a TelemetrySampler of one")
    if not seconds > 0:
        return Baseline.none()
    if not meter.devices:
        return Baseline(power_w={}, method="measured")  # nothing to measure, nothing to wait for
    store = BaselineCache(cache_path) if cache is not False else None
    notes: tuple[str, ...] = ()
    if store is not None and cache is True:
        methods = _methods(meter)
        keys = {d.uid: BaselineCache.key(d.uid, methods.get(d.uid, "?")) for d in meter.devices}
        now = now_unix()
        hit, why_not = store.lookup(
            list(keys.values()), now, ttl_sec, min_duration_sec=seconds, min_settle_sec=settle_sec
        )
        if hit is not None:
            return _cached(store, hit, keys, now, ttl_sec)
        if why_not:
            notes += (f"idle baseline measured again: the cached one {why_not}",)
    sleep(settle_sec)  # let the devices leave their busy power state first
    window, samples = _idle_window(meter, seconds, sample_interval_sec, sleep)
    measured_at = now_unix()
    duration = window.duration_sec
    if duration <= 0:
        return Baseline.none("idle baseline window had no duration; raw energy only")
    power = {d.uid: d.energy_j / duration for d in window.devices}
    stored_keys = {d.uid: BaselineCache.key(d.uid, d.method) for d in window.devices}
    notes += tuple(f"idle baseline: {w}" for w in window.warnings if w not in meter.warnings)
    if store is not None:
        entry = {
            "measured_at_unix": measured_at,
            "duration_sec": duration,
            "settle_sec": settle_sec,
            "samples": samples,
        }
        try:
            store.store({stored_keys[uid]: {"power_w": w, **entry} for uid, w in power.items()})
        except OSError as exc:
            notes += (f"idle baseline not cached ({store.path}: {exc.strerror or exc})",)
    return Baseline(
        power_w=power,
        method="measured",
        duration_sec=duration,
        measured_at_unix=measured_at,
        warnings=notes,
        samples=samples,
        settle_sec=settle_sec,
    )


def _idle_window(
    meter: EnergyMeter, seconds: float, interval: float, sleep: Callable[[float], object]
) -> tuple[Any, int]:
    """One 'baseline' window of ``seconds``, sampled every ``interval`` on this thread (or by
    the caller's sampler when one is running: it then records the baseline window too)."""
    from llenergymeasure.energy.telemetry import TelemetrySampler

    previous = meter.attached_sampler
    if previous is not None and previous.running:
        before = previous.ticks
        meter.begin_window(label="baseline")
        try:
            sleep(seconds)
        finally:
            window = meter.end_window()
        return window, previous.ticks - before
    sampler = TelemetrySampler(meter, interval_sec=interval).start(background=False)
    try:
        meter.begin_window(label="baseline")
        try:
            # Paced by the meter's clock, so that sampling costs do not stretch the window;
            # at most one step per interval, so that a sleep that does not move it still ends.
            deadline = meter.clock() + seconds
            for _ in range(math.ceil(seconds / interval - 1e-9)):
                step = min(interval, deadline - meter.clock())
                if step <= 1e-9:
                    break
                sleep(step)
                sampler.sample_once()
        finally:
            window = meter.end_window()
    finally:
        samples = len(sampler.stop().tick_times)
        meter.attach_sampler(previous)  # the run's own sampler, if one was attached before
    return window, samples


def _cached(
    store: BaselineCache, hit: dict[str, dict], keys: dict[str, str], now: float, ttl_sec: float
) -> Baseline:
    oldest = min(float(e["measured_at_unix"]) for e in hit.values())
    samples = [e.get("samples") for e in hit.values()]
    duration = min(float(e.get("duration_sec", 0.0)) for e in hit.values())
    return Baseline(
        power_w={uid: float(hit[key]["power_w"]) for uid, key in keys.items()},
        method="cached",
        duration_sec=duration,
        measured_at_unix=oldest,
        samples=None if None in samples else min(int(s) for s in samples if s is not None),
        settle_sec=min(float(e.get("settle_sec", 0.0)) for e in hit.values()),
        warnings=(
            f"idle baseline reused from {store.path} (measured {now - oldest:.0f} s ago for "
            f"{duration:.1f} s; re-measured after {ttl_sec:.0f} s; baseline_cache: false or "
            "--no-baseline-cache measures it now)",
        ),
    )


def _methods(meter: EnergyMeter) -> dict[str, str]:
    """Instrument of each device (so a cached NVML baseline is never reused for an estimate)."""
    channels = meter.telemetry_channels()
    if channels:
        return {c.device.uid: c.method for c in channels}
    method = getattr(meter, "method", "meter")
    return {d.uid: method for d in meter.devices}
