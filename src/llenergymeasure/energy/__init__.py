"""Instruments: energy meters (NVML, RAPL, Zeus, CodeCarbon, estimate), telemetry, baseline.

Typical use by the harness::

    meter = create_meter("auto", gpu_indices=[0])
    sampler = TelemetrySampler(meter, interval_sec=0.1)
    baseline = measure_baseline(meter, seconds=10.0)
    sampler.start()
    meter.begin_window(sync=torch.cuda.synchronize)
    ...  # the workload
    window = meter.end_window(sync=torch.cuda.synchronize)
    telemetry = sampler.stop()
    energy = window.to_energy_metrics(baseline)   # window.warnings now holds every caveat
    thermal = telemetry.thermal
    meter.close()

pynvml, zeus and codecarbon are imported only when a meter that needs them is created.
"""

from llenergymeasure.energy.base import (
    Baseline,
    Channel,
    DeviceRef,
    EnergyMeter,
    EnergyWindow,
    TelemetryReading,
)
from llenergymeasure.energy.baseline import (
    DEFAULT_BASELINE_SEC,
    DEFAULT_BASELINE_TTL_SEC,
    DEFAULT_SETTLE_SEC,
    BaselineCache,
    measure_baseline,
)
from llenergymeasure.energy.factory import INSTRUMENTS, create_meter
from llenergymeasure.energy.telemetry import DEFAULT_INTERVAL_SEC, TelemetrySampler
from llenergymeasure.energy.timeseries import Telemetry

__all__ = [
    "DEFAULT_BASELINE_SEC",
    "DEFAULT_BASELINE_TTL_SEC",
    "DEFAULT_INTERVAL_SEC",
    "DEFAULT_SETTLE_SEC",
    "INSTRUMENTS",
    "Baseline",
    "BaselineCache",
    "Channel",
    "DeviceRef",
    "EnergyMeter",
    "EnergyWindow",
    "Telemetry",
    "TelemetryReading",
    "TelemetrySampler",
    "create_meter",
    "measure_baseline",
]
