"""create_meter: one instrument by name, or `auto` (the best available for each device kind).

``auto``: NVML for the GPUs this process uses, RAPL for CPU and DRAM when readable, else the
estimate for the CPU (and for RAM when RAPL has no DRAM zone). Every instrument skipped goes
into ``meter.warnings`` with its reason, and so into every window's warnings. ``auto`` never
raises; an explicitly named instrument that cannot measure raises InstrumentError.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from llenergymeasure.energy.base import Channel, Clock, EnergyMeter
from llenergymeasure.energy.estimate import CpuEstimateChannel, Host, RamEstimateChannel
from llenergymeasure.energy.meter import ChannelMeter
from llenergymeasure.energy.rapl import POWERCAP_ROOT, build_rapl_channels, discover_rapl
from llenergymeasure.errors import InstrumentError

INSTRUMENTS = ("auto", "nvml", "rapl", "zeus", "codecarbon", "estimate")
DEFAULT_POLL_INTERVAL_SEC = 0.1
NOT_HOST_NOTE = (
    "this process does not meter the host's CPU and RAM (another process on the same host does)"
)
NO_GPU_NOTE = "NVML not used: the engine runs on no GPU, so no GPU is metered"


class _Parts:
    """Channels, closers and warnings gathered while building a meter."""

    def __init__(self) -> None:
        self.channels: list[Channel] = []
        self.closers: list[Callable[[], object]] = []
        self.warnings: list[str] = []

    def close(self) -> None:
        for channel in self.channels:
            channel.close()
        for closer in self.closers:
            closer()


def _add_nvml(
    parts: _Parts,
    gpu_indices: Sequence[int] | None,
    env: Mapping[str, str],
    poll_interval_sec: float,
    *,
    strict: bool,
) -> None:
    from llenergymeasure.energy.devices import resolve_gpus
    from llenergymeasure.energy.nvml import build_nvml_channels
    from llenergymeasure.energy.nvml_api import Nvml, NvmlError

    if gpu_indices is not None and not list(gpu_indices) and not strict:
        parts.warnings.append(NO_GPU_NOTE)  # a CPU run must not meter the host's idle GPUs
        return
    try:
        nvml = Nvml()
    except NvmlError as exc:
        if strict:
            raise InstrumentError(f"instrument 'nvml' is unavailable: {exc.reason}") from exc
        parts.warnings.append(f"NVML skipped: {exc.reason}")
        return
    if gpu_indices is not None and not list(gpu_indices):
        nvml.close()
        raise InstrumentError(
            "instrument 'nvml' has nothing to measure: the engine runs on no GPU "
            "(device_map cpu); use energy: auto, rapl or estimate"
        )
    try:
        gpus, notes = resolve_gpus(nvml, env, gpu_indices, strict=strict)
        parts.warnings.extend(notes)
        if not gpus:
            why = (
                f"no GPU visible to this process (NVML sees "
                f"{nvml.call('nvmlDeviceGetCount')}; CUDA_VISIBLE_DEVICES="
                f"{env.get('CUDA_VISIBLE_DEVICES', '<unset>')!r})"
            )
            if strict:
                raise InstrumentError(f"instrument 'nvml' has nothing to measure: {why}")
            parts.warnings.append(f"NVML skipped: {why}")
            nvml.close()
            return
        channels, notes = build_nvml_channels(
            nvml, gpus, poll_interval_sec=poll_interval_sec, strict=strict
        )
    except NvmlError as exc:
        nvml.close()
        if strict:
            raise
        parts.warnings.append(f"NVML skipped: {exc}")
        return
    except BaseException:
        nvml.close()
        raise
    parts.warnings.extend(notes)
    parts.channels.extend(channels)
    parts.closers.append(nvml.close)


def _add_rapl(parts: _Parts, root: Path | str, host: Host, *, strict: bool) -> bool:
    """Add RAPL channels; True when a DRAM zone is among them."""
    found = discover_rapl(root)
    parts.warnings.extend(found.warnings)
    if not found.zones:
        if strict:
            raise InstrumentError(
                f"instrument 'rapl' is unavailable: {found.status}: {found.detail}"
            )
        parts.warnings.append(f"RAPL skipped: {found.status}: {found.detail}")
        return False
    parts.channels.extend(build_rapl_channels(found, host.hostname))
    return any(z.kind == "ram" for z in found.zones)


def create_meter(
    instrument: str = "auto",
    gpu_indices: Sequence[int] | None = None,
    *,
    poll_interval_sec: float = DEFAULT_POLL_INTERVAL_SEC,
    clock: Clock | None = None,
    env: Mapping[str, str] | None = None,
    powercap_root: Path | str = POWERCAP_ROOT,
    host: Host | None = None,
    include_host: bool = True,
) -> EnergyMeter:
    """An energy meter for this process's devices.

    ``gpu_indices`` are CUDA ordinals in this process (None: every visible GPU; an empty list:
    the engine uses no GPU, so none is metered);
    ``poll_interval_sec`` paces power polling for GPUs without an energy counter.
    ``include_host=False`` leaves out the host's CPU and RAM (with several processes on one
    host, only one of them meters the host, so nothing is counted twice). ``clock``, ``env``,
    ``powercap_root`` and ``host`` are injectable for tests.
    """
    if instrument not in INSTRUMENTS:
        raise InstrumentError(
            f"unknown energy instrument {instrument!r}; allowed: {', '.join(INSTRUMENTS)}"
        )
    env = os.environ if env is None else env
    host = host or Host.local()
    if instrument in ("zeus", "codecarbon"):
        if not include_host and gpu_indices is not None and not list(gpu_indices):
            # No GPU of its own and the host metered elsewhere: nothing for the library to do.
            return ChannelMeter([], clock=clock, warnings=[NO_GPU_NOTE, NOT_HOST_NOTE])
        if instrument == "zeus":
            from llenergymeasure.energy.adapters import ZeusMeter

            return ZeusMeter(
                gpu_indices, clock=clock, env=env, host=host, include_host=include_host
            )
        from llenergymeasure.energy.adapters import CodeCarbonMeter

        return CodeCarbonMeter(
            gpu_indices,
            clock=clock,
            env=env,
            host=host,
            powercap_root=powercap_root,
            include_host=include_host,
        )

    parts = _Parts()
    try:
        if not include_host and instrument in ("auto", "rapl", "estimate"):
            if instrument == "auto":
                _add_nvml(parts, gpu_indices, env, poll_interval_sec, strict=False)
            parts.warnings.append(NOT_HOST_NOTE)
        elif instrument == "nvml":
            _add_nvml(parts, gpu_indices, env, poll_interval_sec, strict=True)
        elif instrument == "rapl":
            if not _add_rapl(parts, powercap_root, host, strict=True):
                parts.warnings.append("RAPL has no DRAM zone here; RAM energy is not measured")
        elif instrument == "estimate":
            parts.channels += [CpuEstimateChannel(host), RamEstimateChannel(host)]
        else:  # auto
            _add_nvml(parts, gpu_indices, env, poll_interval_sec, strict=False)
            has_dram = _add_rapl(parts, powercap_root, host, strict=False)
            has_cpu = any(c.device.kind == "cpu" for c in parts.channels)
            if not has_cpu:
                parts.channels.append(CpuEstimateChannel(host))
            if not has_dram:
                parts.channels.append(RamEstimateChannel(host))
                if has_cpu:
                    parts.warnings.append("RAPL has no DRAM zone here; RAM energy is estimated")
        meter = ChannelMeter(
            parts.channels, clock=clock, warnings=parts.warnings, closers=parts.closers
        )
    except BaseException:
        parts.close()
        raise
    if instrument == "auto":
        meter.warnings.append(f"energy instruments chosen by auto: {meter.describe()}")
    return meter
