"""A test rig: fake clock, fake pynvml, fake powercap tree and fake host wired into create_meter."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llenergymeasure.energy import EnergyMeter, TelemetrySampler, create_meter
from llenergymeasure.energy.estimate import Host
from tests.fakes.clock import FakeClock
from tests.fakes.fake_host import ScriptedCpuTimes, fake_host
from tests.fakes.fake_powercap import FakePowercap
from tests.fakes.fake_pynvml import NVML_ERROR_LIBRARY_NOT_FOUND, FakeGpu, FakePynvml, install


@dataclass
class Rig:
    """Everything a meter touches, scripted; time moves only when the test advances it."""

    clock: FakeClock
    nvml: FakePynvml
    powercap_root: Path
    host: Host
    cpu: ScriptedCpuTimes
    env: dict[str, str] = field(default_factory=dict)
    powercap: FakePowercap | None = None

    def meter(self, instrument: str = "auto", **kw: Any) -> EnergyMeter:
        return create_meter(
            instrument,
            clock=self.clock,
            env=self.env,
            powercap_root=self.powercap_root,
            host=self.host,
            **kw,
        )

    def sampler(self, meter: EnergyMeter, interval_sec: float = 0.1) -> TelemetrySampler:
        """A sampler driven by hand (no thread): call ``run`` to move time and sample."""
        return TelemetrySampler(meter, interval_sec=interval_sec).start(background=False)

    def run(self, sampler: TelemetrySampler | None, seconds: float, step: float = 0.1) -> None:
        """Advance the clock by ``seconds`` in ``step``s, sampling after each step."""
        n = round(seconds / step)
        for _ in range(n):
            self.clock.advance(step)
            if sampler is not None:
                sampler.sample_once()


def make_rig(
    monkeypatch: Any,
    tmp_path: Path,
    gpus: list[FakeGpu] | None = None,
    *,
    nvml_error: int | None = None,
    powercap: bool = False,
    **host_kw: Any,
) -> Rig:
    """A rig with the given GPUs (none and NVML 'no driver' by default) and no RAPL tree."""
    clock = FakeClock()
    if gpus is None and nvml_error is None:
        nvml_error = NVML_ERROR_LIBRARY_NOT_FOUND
    fake = install(monkeypatch, FakePynvml(gpus or [], clock, init_error=nvml_error))
    host, cpu = fake_host(clock, **host_kw)
    root = tmp_path / "powercap"
    tree = FakePowercap(root) if powercap else None
    return Rig(clock, fake, root, host, cpu, powercap=tree)
