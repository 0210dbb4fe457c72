"""A fake ``zeus.monitor`` (ZeusMonitor windows over scripted constant powers on a fake clock)."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Measurement:
    """Like zeus.monitor.energy.Measurement: seconds and joules per device index."""

    time: float
    gpu_energy: dict[int, float]
    cpu_energy: dict[int, float] | None = None
    dram_energy: dict[int, float] | None = None


def install_fake_zeus(
    monkeypatch: Any,
    clock: Callable[[], float],
    *,
    gpu_w: dict[int, float],
    cpu_w: dict[int, float] | None = None,
    dram_w: dict[int, float] | None = None,
    old_gpus: tuple[int, ...] = (),
) -> list[Any]:
    """Install fake ``zeus`` and ``zeus.monitor``; returns the list of monitors created."""
    created: list[Any] = []

    class ZeusMonitor:
        def __init__(
            self,
            gpu_indices: list[int] | None = None,
            cpu_indices: list[int] | None = None,
            approx_instant_energy: bool = False,
            log_file: str | None = None,
            sync_execution_with: str = "torch",
        ) -> None:
            self.gpu_indices = gpu_indices if gpu_indices is not None else sorted(gpu_w)
            self.cpu_indices = cpu_indices if cpu_indices is not None else sorted(cpu_w or {})
            old = [i for i in self.gpu_indices if i in old_gpus]
            self.power_monitor = types.SimpleNamespace(gpu_indices=old) if old else None
            self.windows: dict[str, float] = {}
            self.synced = 0
            created.append(self)

        def begin_window(self, key: str, sync_execution: bool = True) -> None:
            if key in self.windows:
                raise ValueError(f"Measurement window '{key}' already exists")
            self.synced += sync_execution
            self.windows[key] = clock()

        def end_window(self, key: str, sync_execution: bool = True) -> Measurement:
            self.synced += sync_execution
            elapsed = clock() - self.windows.pop(key)
            return Measurement(
                time=elapsed,
                gpu_energy={i: gpu_w[i] * elapsed for i in self.gpu_indices},
                cpu_energy={i: (cpu_w or {})[i] * elapsed for i in self.cpu_indices} or None,
                dram_energy={
                    i: w * elapsed for i, w in (dram_w or {}).items() if i in self.cpu_indices
                }
                or None,  # like Zeus: DRAM only of the CPUs it measures, only in a result
            )

    zeus = types.ModuleType("zeus")
    monitor = types.ModuleType("zeus.monitor")
    monitor.ZeusMonitor = ZeusMonitor  # type: ignore[attr-defined]
    zeus.monitor = monitor  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "zeus", zeus)
    monkeypatch.setitem(sys.modules, "zeus.monitor", monitor)
    return created
