"""A fake ``codecarbon`` (OfflineEmissionsTracker over scripted constant powers, in kWh)."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any

J_PER_KWH = 3.6e6


def install_fake_codecarbon(
    monkeypatch: Any,
    clock: Callable[[], float],
    *,
    cpu_w: float,
    ram_w: float,
    gpu_w: float = 0.0,
    gpu_count: int = 0,
    version3: bool = True,
) -> list[Any]:
    """Install a fake ``codecarbon`` module; returns the trackers created (with their kwargs)."""
    created: list[Any] = []

    class OfflineEmissionsTracker:
        def __init__(self, **kwargs: Any) -> None:
            if "country_iso_code" not in kwargs:
                raise TypeError("OfflineEmissionsTracker needs country_iso_code")
            if "output_methods" in kwargs and not version3:
                raise TypeError("unexpected keyword argument 'output_methods'")
            self.kwargs = kwargs
            self.final_emissions_data: Any = None
            self._t0: float | None = None
            created.append(self)

        def start(self) -> None:
            self._t0 = clock()

        def stop(self) -> float:
            assert self._t0 is not None
            duration = clock() - self._t0
            self.final_emissions_data = types.SimpleNamespace(
                duration=duration,
                cpu_energy=cpu_w * duration / J_PER_KWH,
                ram_energy=ram_w * duration / J_PER_KWH,
                gpu_energy=gpu_w * duration / J_PER_KWH,
                gpu_count=gpu_count,
            )
            return 0.001

    module = types.ModuleType("codecarbon")
    module.OfflineEmissionsTracker = OfflineEmissionsTracker  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "codecarbon", module)
    return created
