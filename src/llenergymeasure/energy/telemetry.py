"""The telemetry thread: ONE background thread samples every device each interval.

Per tick and device it records power, the energy counter, temperature, SM clock, memory used,
utilisation and the clock-event (throttle) reasons into typed columns, and feeds the channels
that integrate power or track RAPL wraps. The per-tick work is kept small because it runs all
through the measured window: each channel hands over its reading as one ready row
(``Channel.sample_row``), the tick's rows go into the columns with one ``extend`` per column,
and the thread sleeps on a plain lock. Turning the columns into a table, the Parquet file and
the window's ``ThermalThrottleInfo`` happens after ``stop()``, off the measured path.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from llenergymeasure.energy.base import Channel, Clock, EnergyMeter, WindowLabel
from llenergymeasure.energy.timeseries import COLUMNS, Telemetry, empty_columns

DEFAULT_INTERVAL_SEC = 0.1


class TelemetrySampler:
    """Samples devices every ``interval_sec`` on one daemon thread; ``stop()`` gives Telemetry.

    ``source`` is a meter (its channels are sampled and the meter is told, so it need not run a
    poll thread of its own) or a list of channels. ``clock`` stamps the samples (the meter's
    clock by default); the thread's pacing always uses real time. ``sample_once()`` takes one
    sample on the caller's thread, which is how tests drive scripted traces on a fake clock.
    """

    def __init__(
        self,
        source: EnergyMeter | Sequence[Channel],
        interval_sec: float = DEFAULT_INTERVAL_SEC,
        *,
        clock: Clock | None = None,
        record: bool = True,
    ) -> None:
        if not interval_sec > 0:
            raise ValueError(f"interval_sec must be > 0, got {interval_sec!r}")
        if isinstance(source, EnergyMeter):
            self.meter: EnergyMeter | None = source
            self.channels = source.telemetry_channels()
            self.clock = clock or source.clock
        else:
            self.meter = None
            self.channels = list(source)
            self.clock = clock or time.monotonic
        self.interval_sec = float(interval_sec)
        self.record = record
        self._columns = empty_columns()
        # built once: (device index, bound sample_row) per channel, and the columns a row fills
        self._readers = [(index, channel.sample_row) for index, channel in enumerate(self.channels)]
        self._tick_column = self._columns[COLUMNS[0]]
        self._row_columns = [self._columns[name] for name in COLUMNS[1:]]
        self._tick_times: list[float] = []
        self._windows: list[tuple[str, float, float | None]] = []
        # held while sampling; stop() releases it, which wakes the thread at once
        self._stop = threading.Lock()
        self._stop.acquire()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._started_at: float | None = None
        self._active = False
        self._stopped_at: float | None = None
        self.thread_cpu_sec = 0.0
        self.thread_wall_sec = 0.0
        self.missed_ticks = 0
        if self.meter is not None:
            self.meter.attach_sampler(self)

    @property
    def ticks(self) -> int:
        """Ticks recorded so far."""
        return len(self._tick_times)

    @property
    def running(self) -> bool:
        """True between start() and stop()."""
        return self._active

    def start(self, *, background: bool = True) -> TelemetrySampler:
        """Start sampling on the thread; ``background=False``: the caller calls sample_once()."""
        if self._started_at is not None:
            raise RuntimeError("a TelemetrySampler starts once")
        self._started_at = self.clock()
        self._active = True
        if background:
            self._thread = threading.Thread(target=self._run, name="llem-telemetry", daemon=True)
            self._thread.start()
        if self.meter is not None:
            self.meter.sampler_state_changed()
        return self

    def stop(self) -> Telemetry:
        """Stop the thread and return everything it recorded."""
        if self._thread is not None:
            if self._stop.locked():
                self._stop.release()
            self._thread.join()
        self._active = False
        self._stopped_at = self.clock()
        if self.meter is not None:
            self.meter.sampler_state_changed()
        return self.telemetry()

    def telemetry(self) -> Telemetry:
        """What has been recorded so far (a snapshot)."""
        with self._lock:
            columns = {name: values[:] for name, values in self._columns.items()}
            ticks = list(self._tick_times)
        warnings = []
        for channel in self.channels:
            for error in getattr(channel, "sample_errors", []):
                warnings.append(f"telemetry: {error}")
        if self.missed_ticks:
            warnings.append(
                f"telemetry: {self.missed_ticks} sample(s) were late by more than one interval"
            )
        start = self._started_at if self._started_at is not None else (ticks or [0.0])[0]
        return Telemetry(
            devices=[c.device for c in self.channels],
            columns=columns,
            tick_times=ticks,
            windows=[(label, t0, t1) for label, t0, t1 in self._windows if t1 is not None],
            interval_sec=self.interval_sec,
            start_monotonic_sec=start,
            stop_monotonic_sec=self._stopped_at if self._stopped_at is not None else self.clock(),
            thread_cpu_sec=self.thread_cpu_sec,
            thread_wall_sec=self.thread_wall_sec,
            warnings=warnings,
        )

    # -- called by the meter ------------------------------------------------------------------
    def window_began(self, label: WindowLabel, t: float) -> None:
        """The meter opened a window at ``t`` (kept for thermal figures and the Parquet file)."""
        self._windows.append((label, t, None))

    def window_ended(self, label: WindowLabel, t: float) -> None:
        """The meter closed its window at ``t``."""
        if self._windows and self._windows[-1][2] is None:
            began_label, t0, _ = self._windows[-1]
            self._windows[-1] = (began_label, t0, t)

    # -- sampling -------------------------------------------------------------------------------
    def sample_once(self) -> None:
        """Sample every channel now (the thread calls this each tick)."""
        clock = self.clock
        tick_t = clock()
        record = self.record
        rows = []
        for index, sample_row in self._readers:
            t = clock()
            row = sample_row(t)
            if row is not None and record:
                rows.append((t, index, *row))
        if not record:
            return
        with self._lock:
            tick = len(self._tick_times)
            self._tick_times.append(tick_t)
            if rows:
                self._tick_column.extend([tick] * len(rows))
                # one row per device -> one extend per column (monotonic_sec ... reasons)
                for column, values in zip(self._row_columns, zip(*rows, strict=True), strict=True):
                    column.extend(values)

    def _run(self) -> None:
        cpu0, wall0 = time.thread_time(), time.monotonic()
        next_at = wall0
        try:
            while True:
                self.sample_once()
                next_at += self.interval_sec
                delay = next_at - time.monotonic()
                if delay < 0:  # fell behind (a slow read or a busy host): skip, do not burst
                    skipped = int(-delay // self.interval_sec) + 1
                    self.missed_ticks += skipped - 1
                    next_at += skipped * self.interval_sec
                    delay = next_at - time.monotonic()
                if self._stop.acquire(timeout=max(0.0, delay)):
                    break
        finally:
            self.thread_cpu_sec = time.thread_time() - cpu0
            self.thread_wall_sec = time.monotonic() - wall0

    def __enter__(self) -> TelemetrySampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.running:
            self.stop()
