"""Data layer: pydantic models and pure functions on them. Imports nothing else of the package."""

from llenergymeasure.domain.compute import ComputeMetrics
from llenergymeasure.domain.energy import DeviceEnergy, EnergyMetrics
from llenergymeasure.domain.inference import InferenceMetrics, LatencyStats
from llenergymeasure.domain.metrics import (
    FlopsResult,
    NormalisedMetrics,
    PrecisionMetadata,
    ThermalThrottleInfo,
    WarmupResult,
)
from llenergymeasure.domain.requests import RequestTrace
from llenergymeasure.domain.results import (
    SCHEMA_VERSION,
    DeviceInfo,
    EnvironmentSnapshot,
    ExperimentResult,
    RawProcessResult,
)

__all__ = [
    "SCHEMA_VERSION",
    "ComputeMetrics",
    "DeviceEnergy",
    "DeviceInfo",
    "EnergyMetrics",
    "EnvironmentSnapshot",
    "ExperimentResult",
    "FlopsResult",
    "InferenceMetrics",
    "LatencyStats",
    "NormalisedMetrics",
    "PrecisionMetadata",
    "RawProcessResult",
    "RequestTrace",
    "ThermalThrottleInfo",
    "WarmupResult",
]
