"""Part 2 of the GPU check: every energy instrument on one window of a scripted GPU load.

One recording of idle / busy / idle / on-off square wave / idle phases is read at once by

- llem's NVML energy-counter channel (``nvml_energy_counter``),
- llem's NVML power-polling channel at 100 ms on the telemetry thread (``nvml_power_polling``),
- an independent sampler llem does not use: ``nvidia-smi --query-gpu=timestamp,power.draw -lms
  100`` in its own process, integrated here (trapezoid, clipped to the window),
- Zeus through llem's adapter, when the package is importable,
- a fast poller (every few ms) of the raw counter and power readings, from which the counter's
  real update period and the delay of the power reading after a step (on, then off) are found.

The pure analysis lives in _gpu_analysis.py.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _gpu_analysis import (
    Samples,
    counter_power,
    counter_updates,
    integrate_clipped,
    median_in,
    median_step,
    parse_smi_line,
    quantile,
    relative_diff,
    step_delay,
    update_periods,
)

# ---- loads ----------------------------------------------------------------------------------


class MatmulLoad:
    """Real GPU load: back-to-back bf16 matrix products on cuda:0."""

    def __init__(self, n: int = 8192) -> None:
        import torch

        self.torch = torch
        self.n = n
        self.a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
        self.b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
        self.flops_done = 0.0
        self.busy_sec = 0.0

    def sync(self) -> None:
        self.torch.cuda.synchronize()

    def busy(self, seconds: float) -> None:
        start = time.monotonic()
        deadline = start + seconds
        count = 0
        while time.monotonic() < deadline:
            for _ in range(8):
                self.a @ self.b  # the product is the load
            count += 8
            self.torch.cuda.synchronize()  # keeps the queue short, so "off" is prompt
        self.flops_done += 2.0 * self.n**3 * count
        self.busy_sec += time.monotonic() - start

    def idle(self, seconds: float) -> None:
        time.sleep(seconds)


class FakeLoad:
    """Dry-run load: switches a fake GPU's SwitchedPower trace between idle and busy watts."""

    def __init__(self, power: Any, idle_w: float = 90.0, busy_w: float = 600.0) -> None:
        self.power, self.idle_w, self.busy_w = power, idle_w, busy_w
        self.flops_done = 0.0
        self.busy_sec = 0.0

    def sync(self) -> None:
        pass

    def busy(self, seconds: float) -> None:
        self.power.switch(self.busy_w)
        time.sleep(seconds)
        self.power.switch(self.idle_w)
        self.busy_sec += seconds

    def idle(self, seconds: float) -> None:
        time.sleep(seconds)


# ---- the recording --------------------------------------------------------------------------


@dataclass
class Phases:
    """Seconds of each phase; the square wave toggles every ``square_half_sec``."""

    idle_before: float = 2.0
    busy: float = 4.0
    idle_after: float = 3.0
    square: float = 2.0
    square_half_sec: float = 0.25
    idle_end: float = 1.5

    def scaled(self, factor: float) -> Phases:
        return Phases(*(v * factor for v in vars(self).values()))

    @property
    def total(self) -> float:
        return self.idle_before + self.busy + self.idle_after + self.square + self.idle_end


@dataclass
class Recording:
    """What the fast poller saw, and the edges of the phases (monotonic seconds)."""

    times: list[float] = field(default_factory=list)
    counter_mj: list[float] = field(default_factory=list)
    power_w: list[float] = field(default_factory=list)
    edges: dict[str, float] = field(default_factory=dict)


def _fast_poll(nvml: Any, handle: Any, rec: Recording, stop: threading.Event, every: float) -> None:
    while not stop.is_set():
        t = time.monotonic()
        e = nvml.call("nvmlDeviceGetTotalEnergyConsumption", handle)
        p = nvml.call("nvmlDeviceGetPowerUsage", handle)
        rec.times.append(t)
        rec.counter_mj.append(float(e))
        rec.power_w.append(p / 1000.0)
        stop.wait(every)


class SmiSampler:
    """``nvidia-smi ... -lms 100`` (or a stand-in command) in its own process, lines collected."""

    def __init__(self, command: Sequence[str], period_ms: int = 100) -> None:
        self.argv = [
            *command,
            "-i",
            "0",
            "--query-gpu=timestamp,power.draw",
            "--format=csv,noheader,nounits",
            "-lms",
            str(period_ms),
        ]
        self.lines: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def start(self, wait_sec: float = 10.0) -> bool:
        """Start it and wait for its first line; False when it printed nothing in time."""
        self.proc = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + wait_sec
        while time.monotonic() < deadline and not self.lines and self.proc.poll() is None:
            time.sleep(0.02)
        return bool(self.lines)

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def stop(self) -> str:
        """Stop it; returns its stderr (empty when quiet)."""
        if self.proc is None:
            return ""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        if self._reader is not None:
            self._reader.join(timeout=2)
        return (err or "").strip()

    def samples(self) -> Samples:
        return [s for s in map(parse_smi_line, self.lines) if s is not None]


def _play(load: Any, phases: Phases, rec: Recording) -> None:
    rec.edges["idle_before"] = time.monotonic()
    load.idle(phases.idle_before)
    rec.edges["busy_on"] = time.monotonic()
    load.busy(phases.busy)
    load.sync()
    rec.edges["busy_off"] = time.monotonic()
    load.idle(phases.idle_after)
    rec.edges["square_on"] = time.monotonic()
    end = rec.edges["square_on"] + phases.square
    while time.monotonic() < end:
        load.busy(phases.square_half_sec)
        load.idle(phases.square_half_sec)
    load.sync()
    rec.edges["square_off"] = time.monotonic()
    load.idle(phases.idle_end)
    rec.edges["end"] = time.monotonic()


def record_instruments(
    load: Any,
    phases: Phases,
    smi_command: Sequence[str] | None,
    *,
    poll_every_sec: float = 0.005,
) -> dict[str, Any]:
    """Play the phases under every instrument; returns the raw figures (JSON-ready)."""
    import os

    from llenergymeasure.energy.devices import resolve_gpus
    from llenergymeasure.energy.meter import ChannelMeter
    from llenergymeasure.energy.nvml import (
        COUNTER_UPDATE_SEC,
        NvmlCounterChannel,
        NvmlPowerChannel,
    )
    from llenergymeasure.energy.nvml_api import Nvml
    from llenergymeasure.energy.telemetry import TelemetrySampler

    notes: list[str] = []
    nvml = Nvml()
    gpu = resolve_gpus(nvml, os.environ, [0], strict=True)[0][0]
    counter_meter = ChannelMeter([NvmlCounterChannel(nvml, gpu)])
    poll_meter = ChannelMeter([NvmlPowerChannel(nvml, gpu, 0.1)])
    poll_sampler = TelemetrySampler(poll_meter, interval_sec=0.1)
    zeus = _zeus_meter(notes)
    smi = SmiSampler(smi_command) if smi_command else None
    if smi is None:
        notes.append("nvidia-smi not found: no independent sampler")
    elif not smi.start():
        notes.append(f"nvidia-smi printed nothing: {smi.stop()[:200]}")
        smi = None
    rec, stop = Recording(), threading.Event()
    poller = threading.Thread(
        target=_fast_poll, args=(nvml, gpu.handle, rec, stop, poll_every_sec), daemon=True
    )
    poller.start()
    poll_sampler.start()
    energies: dict[str, float | None] = {}
    try:
        time.sleep(0.3)  # the poller and nvidia-smi are running before the window opens
        counter_meter.begin_window(sync=load.sync)
        poll_meter.begin_window()
        if zeus is not None:
            try:
                zeus.begin_window(sync=load.sync)
            except Exception as exc:  # an optional instrument must not cost the others
                notes.append(f"zeus skipped: begin_window failed: {exc}")
                zeus.close()
                zeus = None
        wall_t0 = time.time()
        _play(load, phases, rec)
        wall_t1 = time.time()
        window = counter_meter.end_window(sync=load.sync)
        energies["nvml_energy_counter"] = window.energy_j(gpu.label)
        energies["nvml_power_polling"] = poll_meter.end_window().energy_j(gpu.label)
        if zeus is not None:
            try:
                zeus_window = zeus.end_window(sync=load.sync)
                energies["zeus"] = sum(d.energy_j for d in zeus_window.devices if d.kind == "gpu")
            except Exception as exc:
                notes.append(f"zeus failed: end_window: {exc}")
        time.sleep(0.3)  # samples after the edge, for the clipped integral
    finally:
        stop.set()
        poller.join(timeout=2)
        poll_sampler.stop()
        smi_err = smi.stop() if smi is not None else ""
        if zeus is not None:
            zeus.close()
        counter_meter.close()
        poll_meter.close()
        nvml.close()
    if smi is not None:
        energies["nvidia_smi"] = integrate_clipped(smi.samples(), wall_t0, wall_t1)
        if energies["nvidia_smi"] is None:
            notes.append(f"nvidia-smi samples do not cover the window ({len(smi.lines)} lines)")
        if smi_err:
            notes.append(f"nvidia-smi stderr: {smi_err[:200]}")
    return {
        "gpu": gpu.name,
        "window_sec": window.duration_sec,
        "window_monotonic_sec": [window.start_monotonic_sec, window.end_monotonic_sec],
        "phases": vars(phases),
        "energies_j": energies,
        "smi_samples": len(smi.samples()) if smi is not None else 0,
        "smi_period_sec": median_step([t for t, _ in smi.samples()]) if smi else None,
        "assumed_counter_update_sec": COUNTER_UPDATE_SEC,
        "load_flops": load.flops_done,
        "load_busy_sec": load.busy_sec,
        "notes": notes,
        "recording": {
            "times": rec.times,
            "counter_mj": rec.counter_mj,
            "power_w": rec.power_w,
            "edges": rec.edges,
        },
    }


def _zeus_meter(notes: list[str]) -> Any:
    from llenergymeasure.energy.factory import create_meter
    from llenergymeasure.errors import LlemError

    try:
        return create_meter("zeus", gpu_indices=[0])
    except (LlemError, ImportError) as exc:
        cause = f" ({exc.__cause__})" if exc.__cause__ else ""
        notes.append(f"zeus skipped: {exc}{cause}")
        return None


def analyse(raw: dict[str, Any]) -> dict[str, Any]:
    """Differences between instruments, the counter's update period, step delays."""
    rec, edges = raw["recording"], raw["recording"]["edges"]
    times, counter = rec["times"], rec["counter_mj"]
    power = list(zip(times, rec["power_w"], strict=True))
    periods = update_periods(counter_updates(times, counter))
    from_counter = counter_power(times, counter)
    on, off = edges["busy_on"], edges["busy_off"]
    idle_span = (edges["idle_before"] + 0.2, on)
    busy_span = (off - min(1.0, (off - on) / 2), off)
    after_span = (edges["square_on"] - min(1.0, (edges["square_on"] - off) / 2), edges["square_on"])
    reference = raw["energies_j"].get("nvml_energy_counter")
    return {
        "energy_vs_counter": {
            name: relative_diff(value, reference)
            for name, value in raw["energies_j"].items()
            if name != "nvml_energy_counter"
        },
        "counter_update_median_sec": statistics.median(periods) if periods else None,
        "counter_update_p90_sec": quantile(periods, 0.9),
        "counter_updates_seen": len(periods),
        "fast_poll_median_sec": median_step(times),
        "power_rise_delay_sec": step_delay(power, on, idle_span, busy_span),
        "power_fall_delay_sec": step_delay(power, off, busy_span, after_span),
        "counter_rise_delay_sec": step_delay(from_counter, on, idle_span, busy_span),
        "counter_fall_delay_sec": step_delay(from_counter, off, busy_span, after_span),
        "idle_power_w": median_in(power, idle_span),
        "busy_power_w": median_in(power, busy_span),
        "load_tflops": raw["load_flops"] / raw["load_busy_sec"] / 1e12
        if raw["load_busy_sec"] and raw["load_flops"]
        else None,
    }


def run(
    make_load: Callable[[], Any],
    phases: Phases,
    smi_command: Sequence[str] | None,
    out_dir: Path,
) -> dict[str, Any]:
    """Record, analyse, and write ``instruments.json`` (figures) beside the raw recording."""
    load = make_load()
    raw = record_instruments(load, phases, smi_command)
    with contextlib.suppress(Exception):
        del load  # frees the GPU matrices before the model runs
    figures = {**{k: v for k, v in raw.items() if k != "recording"}, **analyse(raw)}
    (out_dir / "instruments.json").write_text(json.dumps(figures, indent=2))
    (out_dir / "instruments_recording.json").write_text(json.dumps(raw["recording"]))
    return figures
