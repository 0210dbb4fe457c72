"""ChannelMeter: an energy meter built from per-device channels (NVML, RAPL, estimate)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from llenergymeasure.domain.energy import DeviceEnergy
from llenergymeasure.energy.base import (
    Channel,
    Clock,
    DeviceRef,
    EnergyMeter,
)


class ChannelMeter(EnergyMeter):
    """Reads every channel at both window edges; starts a poll thread only when one is needed.

    When a :class:`TelemetrySampler` is attached and running often enough, its thread feeds
    the channels that need samples inside the window (power polling, RAPL wrap tracking);
    otherwise the meter runs its own, non-recording poller for the window's duration, at the
    interval those channels need, for those channels only.
    """

    def __init__(
        self,
        channels: Sequence[Channel],
        *,
        clock: Clock | None = None,
        warnings: Sequence[str] = (),
        closers: Sequence[Callable[[], object]] = (),
    ) -> None:
        super().__init__(clock=clock, warnings=warnings)
        uids = [c.device.uid for c in channels]
        if len(set(uids)) != len(uids):
            raise ValueError(f"a device is measured twice: {uids}")
        self.channels = list(channels)
        self._closers = list(closers)
        self._own_poller: object | None = None  # a TelemetrySampler, imported lazily
        self._closed = False

    @property
    def devices(self) -> list[DeviceRef]:
        return [c.device for c in self.channels]

    def describe(self) -> str:
        groups: dict[str, list[str]] = {}
        for c in self.channels:
            groups.setdefault(c.method, []).append(c.device.label)
        if not groups:
            return "nothing (no device for this process to meter)"
        return " + ".join(f"{method} ({', '.join(labels)})" for method, labels in groups.items())

    def telemetry_channels(self) -> list[Channel]:
        return list(self.channels)

    def _start(self, t0: float) -> None:
        if self._closed:
            raise RuntimeError("the meter is closed")
        for channel in self.channels:
            channel.start(t0)
        self._update_polling()

    def _stop(self, t1: float) -> tuple[list[DeviceEnergy], float | None, list[str]]:
        notes: list[str] = []
        devices: list[DeviceEnergy] = []
        for channel in self.channels:
            measured = channel.stop(t1)
            notes.extend(measured.warnings)
            devices.append(
                DeviceEnergy(
                    uid=channel.device.uid,
                    label=channel.device.label,
                    kind=channel.device.kind,
                    name=channel.device.name,
                    energy_j=measured.energy_j,
                    method=channel.method,
                    confidence=measured.confidence or channel.confidence,
                )
            )
        return devices, None, notes

    def _after_stop(self) -> None:
        self._update_polling()

    def sampler_state_changed(self) -> None:
        self._update_polling()

    def _update_polling(self) -> None:
        """Run the meter's own poller iff a window is open and a channel needs samples more
        often than a running attached sampler gives them (or no sampler runs).

        Power polling keeps its own interval (100 ms) whatever the telemetry interval (up to
        10 s): a GPU without an energy counter is never integrated from telemetry-sized steps.
        """
        from llenergymeasure.energy.telemetry import TelemetrySampler

        sampler = self._sampler if self._sampler is not None and self._sampler.running else None
        needy = [
            c
            for c in self.channels
            if c.max_poll_interval_sec is not None
            and (sampler is None or sampler.interval_sec > c.max_poll_interval_sec)
        ]
        want = self._open_at is not None and bool(needy)
        poller = self._own_poller
        if want and poller is None:
            interval = min(c.max_poll_interval_sec or 0.0 for c in needy)
            own = TelemetrySampler(needy, interval_sec=interval, clock=self.clock, record=False)
            own.start()
            self._own_poller = own
        elif not want and poller is not None:
            assert isinstance(poller, TelemetrySampler)
            self._own_poller = None
            poller.stop()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._open_at = None
        self._update_polling()
        for channel in self.channels:
            channel.close()
        for closer in self._closers:
            closer()
