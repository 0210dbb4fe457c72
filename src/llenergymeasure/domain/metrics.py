"""The five core domain types: FLOPs, precision, normalised efficiency, throttling, warmup.

Field names, literal values and factors follow ``shared/spec/seed-domain-metrics.md``; that
document is the contract. Everything here is pure: no I/O, no heavy imports.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

from pydantic import Field, computed_field, model_validator

from llenergymeasure.domain.base import DomainModel
from llenergymeasure.domain.intervals import (
    ThrottleCause,
    ThrottleInterval,
    merge_throttle_intervals,
    union_sec,
)
from llenergymeasure.domain.stats import coefficient_of_variation

FlopsMethod = Literal["calflops", "architecture", "parameter_estimate"]
Confidence = Literal["high", "medium", "low"]
WeightPrecision = Literal["fp32", "fp16", "bf16", "fp8", "int8", "int4", "mixed"]
ActivationPrecision = Literal["fp32", "fp16", "bf16", "fp8", "int8"]
ComputePrecision = Literal["fp32", "fp16", "bf16", "fp8", "int8", "tf32"]

#: Confidence implied by each FLOPs method (the seed: calflops=high, architecture=medium, ...).
METHOD_CONFIDENCE: dict[str, Confidence] = {
    "calflops": "high",
    "architecture": "medium",
    "parameter_estimate": "low",
}

#: Throughput a precision gets relative to 16/32-bit dense compute; used to normalise FLOPs.
PRECISION_FACTORS: dict[str, float] = {
    "fp32": 1.0,
    "fp16": 1.0,
    "bf16": 1.0,
    "tf32": 1.0,
    "fp8": 0.5,
    "int8": 0.5,
    "int4": 0.25,
    "mixed": 0.75,
}

_CONFIDENCE_RANK: dict[str, int] = {"low": 0, "medium": 1, "high": 2}


def lowest_confidence(*levels: Confidence) -> Confidence:
    """The weakest of several confidence levels (a chain is as trustworthy as its weakest link)."""
    if not levels:
        raise ValueError("lowest_confidence needs at least one level")
    return min(levels, key=lambda level: _CONFIDENCE_RANK[level])


def weakest_flops_method(methods: Iterable[FlopsMethod]) -> FlopsMethod:
    """The least accurate of several FLOPs methods (a sum is as good as its weakest part)."""
    return min(methods, key=lambda method: _CONFIDENCE_RANK[METHOD_CONFIDENCE[method]])


class FlopsResult(DomainModel):
    """A FLOPs count together with how it was obtained and how far it can be trusted."""

    value: float = Field(ge=0, description="Estimated FLOPs (a multiply-accumulate counts as 2).")
    method: FlopsMethod = Field(description="How the count was obtained, most accurate first.")
    confidence: Confidence = Field(
        default=None,  # type: ignore[assignment]  # derived from `method` by the validator
        description="Mirrors method: calflops=high, architecture=medium, parameter_estimate=low.",
    )
    precision: str = Field(description="Compute precision the FLOPs are counted at, e.g. 'fp16'.")
    notes: str | None = Field(default=None, description="Caveats, e.g. why a method was skipped.")

    @model_validator(mode="before")
    @classmethod
    def _confidence_from_method(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("confidence") is None and "method" in data:
            implied = METHOD_CONFIDENCE.get(str(data["method"]))
            if implied is not None:
                data = {**data, "confidence": implied}
        return data

    @model_validator(mode="after")
    def _confidence_matches_method(self) -> FlopsResult:
        implied = METHOD_CONFIDENCE[self.method]
        if self.confidence != implied:
            raise ValueError(
                f"confidence {self.confidence!r} contradicts method {self.method!r}, "
                f"which implies {implied!r}; omit confidence or set it to {implied!r}"
            )
        return self

    @property
    def is_valid(self) -> bool:
        """True when a positive count was obtained."""
        return self.value > 0


class PrecisionMetadata(DomainModel):
    """The precision of weights, activations and compute, for precision-normalised efficiency.

    ``weights`` and ``activations`` default to the compute precision when omitted (tf32 compute
    stores fp32), so ``PrecisionMetadata(compute="fp16")`` describes a plain fp16 model.
    """

    weights: WeightPrecision = "fp32"
    activations: ActivationPrecision = "fp32"
    compute: ComputePrecision = "fp32"
    mixed_precision_breakdown: dict[str, float] | None = Field(
        default=None,
        description="Share of compute at each precision (keys from the factor table, sum 1).",
    )
    quantization_method: str | None = Field(
        default=None, description="e.g. 'bitsandbytes', 'gptq', 'awq', 'fp8', 'trt_ptq'."
    )
    perplexity_degradation: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _storage_defaults_from_compute(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("compute") is not None:
            stored = "fp32" if data["compute"] == "tf32" else data["compute"]
            data = dict(data)
            data.setdefault("weights", stored)
            data.setdefault("activations", stored)
        return data

    @model_validator(mode="after")
    def _breakdown_is_a_distribution(self) -> PrecisionMetadata:
        breakdown = self.mixed_precision_breakdown
        if breakdown is None:
            return self
        if not breakdown:
            raise ValueError("mixed_precision_breakdown is empty; omit it or give shares")
        unknown = sorted(set(breakdown) - set(PRECISION_FACTORS))
        if unknown:
            raise ValueError(
                f"mixed_precision_breakdown has unknown precision(s) {unknown}; "
                f"allowed: {sorted(PRECISION_FACTORS)}"
            )
        negative = {k: v for k, v in breakdown.items() if v < 0}
        if negative:
            raise ValueError(f"mixed_precision_breakdown shares must be >= 0, got {negative}")
        total = math.fsum(breakdown.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"mixed_precision_breakdown shares must sum to 1, got {total:.9g}")
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def precision_factor(self) -> float:
        """Relative throughput factor: the breakdown's weighted mean, else that of ``compute``."""
        if self.mixed_precision_breakdown:
            return math.fsum(
                share * PRECISION_FACTORS[name]
                for name, share in self.mixed_precision_breakdown.items()
            )
        return PRECISION_FACTORS[self.compute]


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator; 0.0 when the denominator is zero (or so small it overflows)."""
    if denominator <= 0:
        return 0.0
    value = numerator / denominator
    return value if math.isfinite(value) else 0.0


class NormalisedMetrics(DomainModel):
    """Efficiency figures comparable across engines, precisions and hardware.

    ``tokens_per_joule`` uses the raw energy of every metered device (idle power included);
    ``adjusted_tokens_per_joule`` the idle-adjusted energy (None without a baseline).
    ``tokens_per_second_per_watt`` is (tokens / s) / mean power: since the mean power is the
    window's energy over its duration, it equals tokens per joule (up to the few milliseconds
    between the energy window's and the inference timer's edges). It is not a separate
    measurement of efficiency; it is kept for the seed contract and for readers who think
    in watts.
    """

    tokens_per_joule: float = Field(ge=0, description="Output tokens / raw joules.")
    tokens_per_effective_pflop: float = Field(
        ge=0, description="Output tokens per PFLOP of effective_flops."
    )
    tokens_per_second_per_watt: float = Field(
        ge=0,
        description="(Output tokens / s) / mean power: equal to tokens_per_joule when the "
        "power is the window's mean, as here.",
    )
    theoretical_flops: float = Field(
        ge=0, description="Executed FLOPs (what the device computed, padding included)."
    )
    effective_flops: float = Field(ge=0, description="theoretical_flops x precision_factor")
    precision: PrecisionMetadata | None = None
    adjusted_tokens_per_joule: float | None = Field(
        default=None, ge=0, description="Output tokens / idle-adjusted joules (None: no baseline)."
    )

    @classmethod
    def from_metrics(
        cls,
        total_output_tokens: int,
        total_energy_j: float,
        mean_power_w: float,
        inference_time_sec: float,
        theoretical_flops: float,
        precision: PrecisionMetadata | None = None,
        adjusted_energy_j: float | None = None,
    ) -> NormalisedMetrics:
        """Compute every field from raw measurements; a zero denominator gives 0.0."""
        if adjusted_energy_j is not None and (
            not math.isfinite(adjusted_energy_j) or adjusted_energy_j < 0
        ):
            raise ValueError(
                f"adjusted_energy_j must be a finite number >= 0, got {adjusted_energy_j!r}"
            )
        inputs = {
            "total_output_tokens": total_output_tokens,
            "total_energy_j": total_energy_j,
            "mean_power_w": mean_power_w,
            "inference_time_sec": inference_time_sec,
            "theoretical_flops": theoretical_flops,
        }
        for name, value in inputs.items():
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        factor = precision.precision_factor if precision is not None else 1.0
        effective_flops = theoretical_flops * factor
        return cls(
            tokens_per_joule=_ratio(total_output_tokens, total_energy_j),
            tokens_per_effective_pflop=_ratio(total_output_tokens, effective_flops / 1e15),
            tokens_per_second_per_watt=_ratio(
                _ratio(total_output_tokens, inference_time_sec), mean_power_w
            ),
            theoretical_flops=theoretical_flops,
            effective_flops=effective_flops,
            precision=precision,
            adjusted_tokens_per_joule=None
            if adjusted_energy_j is None
            else _ratio(total_output_tokens, adjusted_energy_j),
        )


# NVML clock-event ("throttle") reason bits, equal to nvidia-ml-py's nvmlClocksEventReason*
# constants (a test checks they match). Kept here so that the domain layer imports nothing.
REASON_GPU_IDLE = 0x1
REASON_APPLICATIONS_CLOCKS_SETTING = 0x2
REASON_SW_POWER_CAP = 0x4
REASON_HW_SLOWDOWN = 0x8
REASON_SYNC_BOOST = 0x10
REASON_SW_THERMAL_SLOWDOWN = 0x20
REASON_HW_THERMAL_SLOWDOWN = 0x40
REASON_HW_POWER_BRAKE_SLOWDOWN = 0x80
REASON_DISPLAY_CLOCK_SETTING = 0x100

#: Reasons that lower clocks below what the workload asked for, i.e. that distort a measurement.
THROTTLING_REASONS_MASK = (
    REASON_SW_POWER_CAP
    | REASON_HW_SLOWDOWN
    | REASON_SW_THERMAL_SLOWDOWN
    | REASON_HW_THERMAL_SLOWDOWN
    | REASON_HW_POWER_BRAKE_SLOWDOWN
)

_THROTTLE_FLAGS = ("thermal", "power", "sw_thermal", "hw_thermal", "hw_power")

#: The cause each throttling bit names in a ThrottleInterval.
REASON_CAUSES: tuple[tuple[int, ThrottleCause], ...] = (
    (REASON_SW_POWER_CAP, "sw_power_cap"),
    (REASON_HW_SLOWDOWN, "hw_slowdown"),
    (REASON_SW_THERMAL_SLOWDOWN, "sw_thermal"),
    (REASON_HW_THERMAL_SLOWDOWN, "hw_thermal"),
    (REASON_HW_POWER_BRAKE_SLOWDOWN, "hw_power_brake"),
)


def throttle_causes(mask: int) -> list[ThrottleCause]:
    """The throttling causes set in an NVML clock-event-reason bitmask."""
    return [cause for bit, cause in REASON_CAUSES if mask & bit]


class ThermalThrottleInfo(DomainModel):
    """Whether, how and for how long the device lowered its clocks during a window.

    ``detected`` is always the OR of the five flags; ``thermal`` covers ``sw_thermal`` and
    ``hw_thermal``, ``power`` covers ``hw_power``. Omitted aggregate flags are derived; an
    explicit value that contradicts the specific flags is rejected.
    """

    detected: bool = False
    thermal: bool = False
    power: bool = False
    sw_thermal: bool = False
    hw_thermal: bool = False
    hw_power: bool = False
    throttle_duration_sec: float = Field(default=0.0, ge=0)
    max_temperature_c: float | None = None
    throttle_timestamps: list[float] = Field(
        default_factory=list,
        description="Seconds from the window start at which throttling began (the starts of "
        "throttle_intervals; files before schema 1.2 hold one per throttled sample).",
    )
    throttle_intervals: list[ThrottleInterval] = Field(
        default_factory=list,
        description="Throttled intervals (start, end, cause) in seconds from the window start "
        "(the experiment's first window start once merged); throttle_duration_sec is the "
        "length of their union.",
    )

    @model_validator(mode="after")
    def _flags_consistent(self) -> ThermalThrottleInfo:
        given = self.model_fields_set
        implied = {
            "thermal": self.thermal or self.sw_thermal or self.hw_thermal,
            "power": self.power or self.hw_power,
        }
        for name, value in implied.items():
            if name in given and getattr(self, name) != value:
                raise ValueError(f"{name}=False contradicts the specific flags set")
            object.__setattr__(self, name, value)
        detected = any(getattr(self, flag) for flag in _THROTTLE_FLAGS)
        if "detected" in given and self.detected != detected:
            raise ValueError(
                f"detected={self.detected} contradicts the flags (any flag set: {detected})"
            )
        object.__setattr__(self, "detected", detected)
        return self

    @classmethod
    def from_reasons(cls, mask: int) -> ThermalThrottleInfo:
        """Flags from one NVML clock-event-reason bitmask.

        GpuIdle, ApplicationsClocksSetting, SyncBoost and DisplayClockSetting are not throttling.
        HwSlowdown alone (without HwThermalSlowdown or HwPowerBrakeSlowdown): drivers that split
        the hardware causes report the thermal and power-brake causes in their own bits, so the
        cause left is power draw over the limit (fast-trigger protection). We record it as
        ``power`` (and so ``detected``), but not ``hw_power``, which means the external
        power-brake signal specifically.
        """
        if mask < 0:
            raise ValueError(f"a clock-event-reason mask is >= 0, got {mask}")
        sw_thermal = bool(mask & REASON_SW_THERMAL_SLOWDOWN)
        hw_thermal = bool(mask & REASON_HW_THERMAL_SLOWDOWN)
        hw_power = bool(mask & REASON_HW_POWER_BRAKE_SLOWDOWN)
        hw_unexplained = bool(mask & REASON_HW_SLOWDOWN) and not (hw_thermal or hw_power)
        return cls(
            sw_thermal=sw_thermal,
            hw_thermal=hw_thermal,
            hw_power=hw_power,
            thermal=sw_thermal or hw_thermal,
            power=bool(mask & REASON_SW_POWER_CAP) or hw_power or hw_unexplained,
        )

    @classmethod
    def merge(
        cls, infos: Iterable[ThermalThrottleInfo], offsets_sec: Iterable[float] | None = None
    ) -> ThermalThrottleInfo:
        """Combine several processes' windows on one time origin.

        ``offsets_sec[k]``: how long after the experiment's first window start process k's
        window began (0 for all when omitted). Flags are OR-ed, the temperature is the max,
        intervals are shifted onto the common origin, and the duration is the length of their
        union. A process stored without intervals (schema < 1.2) can only be bounded from
        below: its duration enters as a maximum.
        """
        infos = list(infos)
        offsets = list(offsets_sec) if offsets_sec is not None else [0.0] * len(infos)
        if len(offsets) != len(infos):
            raise ValueError(f"{len(offsets)} offsets for {len(infos)} throttle infos")
        temperatures = [i.max_temperature_c for i in infos if i.max_temperature_c is not None]
        intervals = merge_throttle_intervals(
            iv.shifted(off)
            for info, off in zip(infos, offsets, strict=True)
            for iv in info.throttle_intervals
        )
        duration = union_sec((i.start_sec, i.end_sec) for i in intervals)
        legacy = [i.throttle_duration_sec for i in infos if not i.throttle_intervals]
        stamps = {
            t + off
            for info, off in zip(infos, offsets, strict=True)
            for t in info.throttle_timestamps
        }
        return cls(
            sw_thermal=any(i.sw_thermal for i in infos),
            hw_thermal=any(i.hw_thermal for i in infos),
            hw_power=any(i.hw_power for i in infos),
            thermal=any(i.thermal for i in infos),
            power=any(i.power for i in infos),
            throttle_duration_sec=max([duration, *legacy]),
            max_temperature_c=max(temperatures) if temperatures else None,
            throttle_timestamps=sorted(stamps),
            throttle_intervals=intervals,
        )


WarmupMode = Literal["cv", "fixed"]
WarmupStop = Literal["converged", "max_prompts", "n", "max_sec"]


class WarmupResult(DomainModel):
    """How warmup ended: whether request latency settled (CV below target) before measuring.

    ``converged`` always means the final CV is at or below ``target_cv``, in either mode. In
    ``fixed`` mode warmup runs ``n`` requests whatever the CV (``max_prompts`` holds n), so not
    reaching the target is not a failure there: ``describe()`` and ``warning()`` say so.
    """

    converged: bool
    final_cv: float = Field(ge=0, description="Coefficient of variation of the last window.")
    iterations_completed: int = Field(ge=0)
    target_cv: float = Field(gt=0)
    max_prompts: int = Field(ge=0, description="Most requests (cv mode), or n (fixed mode).")
    latencies_ms: list[float] = Field(default_factory=list)
    window_size: int = Field(
        default=5, ge=2, description="Requests per CV window (to redraw the warmup curve)."
    )
    mode: WarmupMode = Field(
        default="cv", description="cv: until the CV target; fixed: n requests."
    )
    max_sec: float | None = Field(
        default=None, gt=0, description="Time limit in effect (None: none, or an older file)."
    )
    elapsed_sec: float | None = Field(default=None, ge=0, description="Time warmup took.")
    stopped_by: WarmupStop | None = Field(
        default=None,
        description="What ended warmup: the CV target, max_prompts, n (fixed mode) or max_sec.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> WarmupResult:
        if self.converged and self.final_cv > self.target_cv:
            raise ValueError(
                f"converged=True but final_cv {self.final_cv:.4g} > target_cv {self.target_cv:.4g}"
            )
        if self.iterations_completed > self.max_prompts:
            raise ValueError(
                f"iterations_completed {self.iterations_completed} exceeds "
                f"max_prompts {self.max_prompts}"
            )
        return self

    def cv_curve(self) -> list[float]:
        """CV of the trailing window after each iteration (from the first full window on)."""
        w = self.window_size
        lat = self.latencies_ms
        return [coefficient_of_variation(lat[i - w : i]) for i in range(w, len(lat) + 1)]

    def _time_limit_text(self) -> str:
        limit = f"{self.max_sec:g} s" if self.max_sec is not None else "its time"
        return f"time limit {limit} reached"

    def describe(self) -> str:
        """One line on how warmup ended, e.g. 'fixed: 5 requests (CV 0.081)'."""
        n, cv = self.iterations_completed, f"CV {self.final_cv:.3f}"
        if self.mode == "fixed":
            text = f"fixed: {n} requests ({cv})"
            if self.stopped_by == "max_sec":
                text += f", {self._time_limit_text()} before n={self.max_prompts}"
            return text
        if self.converged:
            return f"converged: {cv} <= target {self.target_cv:g} after {n} requests"
        text = f"not converged: {cv} > target {self.target_cv:g} after {n} requests"
        if self.stopped_by == "max_sec":
            text += f" ({self._time_limit_text()})"
        elif self.stopped_by == "max_prompts":
            text += f" (max_prompts {self.max_prompts} reached)"
        return text

    def warning(self) -> str | None:
        """The warning a reader needs, or None: a cv warmup that did not reach its target, or a
        fixed warmup cut short by its time limit. A fixed warmup that ran its n is no failure."""
        if self.mode == "cv" and not self.converged:
            return f"warmup did not converge: {self.describe().removeprefix('not converged: ')}"
        if self.mode == "fixed" and self.stopped_by == "max_sec":
            return f"warmup ran fewer requests than asked: {self.describe()}"
        return None

    @property
    def status(self) -> str:
        """A short status: 'converged', 'not converged' or 'fixed'."""
        if self.mode == "fixed":
            return "fixed"
        return "converged" if self.converged else "not converged"
