"""The result schema: one RawProcessResult per process, one ExperimentResult per experiment."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, computed_field, model_validator

from llenergymeasure.domain.base import DomainModel
from llenergymeasure.domain.compute import ComputeMetrics
from llenergymeasure.domain.energy import EnergyMetrics
from llenergymeasure.domain.footprint import CarbonEstimate, CostEstimate
from llenergymeasure.domain.inference import InferenceMetrics
from llenergymeasure.domain.metrics import NormalisedMetrics, ThermalThrottleInfo, WarmupResult
from llenergymeasure.domain.quality import QualityMetrics, TaskAccuracy
from llenergymeasure.domain.serving import ServingMetrics

#: Version of the result files' layout. Bump the major part on any incompatible change; loaders
#: migrate files of an older major version they know (see ``results.migrate``) and refuse others.
#: 1.1: optional ``carbon`` and ``cost`` (1.0 files load). 1.2: ``thermal.throttle_intervals``
#: (``throttle_timestamps`` became their starts) and ``energy.baseline``; older files load with
#: those empty. 1.3 (all optional, so older files load): useful FLOPs and their rate (MFU is now
#: from them), idle-adjusted tokens per joule, the warmup's mode, time limit, duration and what
#: stopped it; the OpenMP wait policy. 2.0: latency from per-request traces (arrival model,
#: TPOT, a method per latency figure); 1.x files are migrated. 2.1: optional ``quality`` section
#: (2.0 files load without it). 2.2: optional ``serving`` section (a serving run's load, window
#: and per-request energy; older files load without it). 2.3: optional ``task_accuracy`` (lm-eval
#: task scores beside the quality section; older files load without it).
SCHEMA_VERSION = "2.3"


class DeviceInfo(DomainModel):
    """One accelerator (or the CPU) as the environment reported it."""

    index: int = Field(ge=0)
    kind: str = Field(description="'gpu' or 'cpu'.")
    name: str
    uuid: str | None = None
    memory_mb: float | None = Field(default=None, ge=0)


class EnvironmentSnapshot(DomainModel):
    """Where the experiment ran: enough to explain a difference between two results."""

    llenergymeasure_version: str
    python_version: str
    platform: str
    hostname: str
    cpu_model: str | None = None
    cpu_count: int | None = Field(default=None, ge=1)
    ram_mb: float | None = Field(default=None, ge=0)
    packages: dict[str, str] = Field(
        default_factory=dict, description="Versions of the packages that affect measurement."
    )
    devices: list[DeviceInfo] = Field(default_factory=list)
    driver_version: str | None = None
    cuda_version: str | None = None
    omp_wait_policy: str | None = Field(
        default=None, description="OMP_WAIT_POLICY in effect (llem sets PASSIVE unless given)."
    )
    engine: str | None = Field(default=None, description="The inference engine measured.")
    engine_version: str | None = Field(
        default=None, description="Version of the engine's library (e.g. vllm 0.32.0)."
    )


class _Timed(DomainModel):
    start_time: datetime = Field(description="Start of the measurement window (UTC).")
    end_time: datetime = Field(description="End of the measurement window (UTC).")

    @model_validator(mode="after")
    def _ordered(self) -> _Timed:
        if self.end_time < self.start_time:
            raise ValueError(f"end_time {self.end_time} is before start_time {self.start_time}")
        return self


class RawProcessResult(_Timed):
    """What one process measured on its own devices; experiments are aggregated from these."""

    schema_version: str = SCHEMA_VERSION
    experiment_id: str
    config_hash: str
    process_index: int = Field(ge=0)
    world_size: int = Field(ge=1)
    hostname: str
    device_ids: list[str] = Field(description="Devices this process measured (device uids).")
    energy: EnergyMetrics
    inference: InferenceMetrics
    compute: ComputeMetrics
    warmup: WarmupResult | None = None
    thermal: ThermalThrottleInfo = Field(default_factory=ThermalThrottleInfo)
    warnings: list[str] = Field(default_factory=list)
    timeseries_file: str | None = Field(
        default=None, description="Telemetry time series (Parquet), relative to the result."
    )
    quality: QualityMetrics | None = Field(
        default=None, description="Quality on a reference text (process 0), if enabled."
    )
    task_accuracy: TaskAccuracy | None = Field(
        default=None, description="lm-eval task scores (process 0), if tasks were listed."
    )

    @model_validator(mode="after")
    def _index_in_world(self) -> RawProcessResult:
        if self.process_index >= self.world_size:
            raise ValueError(
                f"process_index {self.process_index} must be < world_size {self.world_size}"
            )
        return self


class ExperimentResult(_Timed):
    """One experiment's result: aggregate figures, their provenance, and the process results."""

    schema_version: str = SCHEMA_VERSION
    experiment_id: str
    config: dict[str, Any] = Field(description="The resolved experiment config.")
    config_hash: str
    environment: EnvironmentSnapshot
    energy: EnergyMetrics
    inference: InferenceMetrics
    compute: ComputeMetrics
    normalised: NormalisedMetrics
    thermal: ThermalThrottleInfo = Field(
        description="Throttling merged over processes (flags OR-ed)."
    )
    warmup: list[WarmupResult] = Field(
        default_factory=list, description="Warmup result of each process, in process order."
    )
    warnings: list[str] = Field(default_factory=list)
    quality: QualityMetrics | None = Field(
        default=None,
        description="Perplexity, KL and top-1 agreement against a reference configuration, "
        "measured outside the energy window (None when quality evaluation is off).",
    )
    task_accuracy: TaskAccuracy | None = Field(
        default=None,
        description="Benchmark task scores through lm-eval on the measured model, outside the "
        "energy window (None when no quality.lm_eval.tasks were listed).",
    )
    process_results: list[RawProcessResult] = Field(default_factory=list)
    carbon: CarbonEstimate | None = Field(
        default=None, description="gCO2e of the window: a view, recomputable (results/footprint)."
    )
    cost: CostEstimate | None = Field(
        default=None, description="Hardware cost of the window, when a price was configured."
    )
    serving: ServingMetrics | None = Field(
        default=None,
        description="A serving run's load, steady-state window and per-request energy; energy "
        "and inference then cover that window.",
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def energy_per_output_token_j(self) -> float:
        """Raw joules per generated token (0.0 when nothing was generated)."""
        tokens = self.inference.output_tokens
        return self.energy.total_energy_j / tokens if tokens else 0.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def adjusted_energy_per_output_token_j(self) -> float | None:
        """Idle-adjusted joules per generated token (None without a baseline or tokens)."""
        tokens = self.inference.output_tokens
        adjusted = self.energy.adjusted_energy_j
        return adjusted / tokens if adjusted is not None and tokens else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def warmup_converged(self) -> bool | None:
        """True when every process's warmup converged; None without warmup."""
        return all(w.converged for w in self.warmup) if self.warmup else None
