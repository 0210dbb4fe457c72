"""Carbon and cost: views on the stored energy and time, recomputable with other factors.

Carbon: gCO2e = energy (kWh) x PUE x grid carbon intensity (gCO2e/kWh).
Cost: USD = (price per GPU-hour x GPUs + price per node-hour x nodes) x window hours.

Everything here is pure; where an intensity comes from (a user value, a lookup table, the world
average) is decided in ``results/intensity.py`` and travels in ``CarbonIntensity``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import Field, computed_field

from llenergymeasure.domain.base import DomainModel
from llenergymeasure.domain.metrics import Confidence, lowest_confidence

EnergyBasis = Literal["raw", "idle_adjusted"]
IntensityMethod = Literal["user", "codecarbon_table", "llem_table", "world_average"]

#: Joules in one kilowatt-hour.
J_PER_KWH = 3.6e6
#: Seconds in one hour.
SEC_PER_HOUR = 3600.0
#: Tokens in the "per million tokens" figures.
TOKENS_PER_MILLION = 1_000_000

#: Confidence each way of obtaining an intensity implies: a value the user states for their own
#: grid is taken as given; a table holds annual averages for a country or region (not the hour,
#: not the marginal plant); the world average says nothing about where the run happened.
INTENSITY_CONFIDENCE: dict[str, Confidence] = {
    "user": "high",
    "codecarbon_table": "medium",
    "llem_table": "medium",
    "world_average": "low",
}


class CarbonSettings(DomainModel):
    """The `carbon:` config section: how to turn energy into gCO2e (not part of the hash)."""

    region: str | None = Field(
        default=None,
        description="Grid region: ISO 3166 country code (FR, FRA), US-XX state, CA-XX "
        "province, CN-XX province, SE1-SE4 / NO1-NO5 zone, or WORLD.",
    )
    intensity_g_per_kwh: float | None = Field(
        default=None, ge=0, description="Grid carbon intensity you know; outranks region."
    )
    pue: float = Field(
        default=1.0, ge=1.0, description="Power usage effectiveness of the facility (>= 1)."
    )
    energy_basis: EnergyBasis = Field(
        default="raw", description="raw: all energy in the window; idle_adjusted: minus idle."
    )


class CostSettings(DomainModel):
    """The `cost:` config section: prices of the hardware (not part of the hash)."""

    usd_per_gpu_hour: float | None = Field(default=None, ge=0)
    usd_per_node_hour: float | None = Field(default=None, ge=0)
    gpu_count: int | None = Field(
        default=None, ge=0, description="GPUs to price; default: the GPUs the result metered."
    )

    @property
    def priced(self) -> bool:
        """True when some price is set (without one there is no cost figure)."""
        return self.usd_per_gpu_hour is not None or self.usd_per_node_hour is not None


class CarbonIntensity(DomainModel):
    """A grid carbon intensity and where it came from."""

    value_g_per_kwh: float = Field(ge=0)
    unit: str = Field(default="gCO2e/kWh", description="What the value counts, per kWh.")
    method: IntensityMethod
    confidence: Confidence
    source: str = Field(description="The dataset (and file) the value was taken from.")
    year: int | None = Field(default=None, description="Year the value describes.")
    region: str | None = Field(default=None, description="Region code as looked up, e.g. 'FRA'.")
    region_name: str | None = None


def user_intensity(value_g_per_kwh: float, region: str | None = None) -> CarbonIntensity:
    """An intensity the user gave (config or flag)."""
    return CarbonIntensity(
        value_g_per_kwh=value_g_per_kwh,
        method="user",
        confidence=INTENSITY_CONFIDENCE["user"],
        source="user-supplied intensity_g_per_kwh",
        region=region,
    )


class CarbonEstimate(DomainModel):
    """gCO2e of the measurement window, with every factor it was computed from."""

    co2e_g: float = Field(ge=0, description="energy_kwh x pue x intensity.")
    co2e_per_output_token_g: float = Field(ge=0, description="0.0 when nothing was generated.")
    energy_j: float = Field(ge=0, description="The energy the figure is computed from.")
    energy_basis: EnergyBasis
    pue: float = Field(ge=1.0)
    intensity: CarbonIntensity
    output_tokens: int = Field(ge=0)
    confidence: Confidence = Field(description="The lower of the energy's and the intensity's.")
    notes: list[str] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def energy_kwh(self) -> float:
        """energy_j in kilowatt-hours."""
        return self.energy_j / J_PER_KWH


def _finite_non_negative(**values: float) -> None:
    for name, value in values.items():
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def carbon_estimate(
    energy_j: float,
    output_tokens: int,
    *,
    intensity: CarbonIntensity,
    pue: float = 1.0,
    energy_basis: EnergyBasis = "raw",
    energy_confidence: Confidence = "high",
    notes: Sequence[str] = (),
) -> CarbonEstimate:
    """gCO2e = energy_j / 3.6e6 x pue x intensity; per token over ``output_tokens``."""
    _finite_non_negative(energy_j=energy_j, output_tokens=output_tokens)
    if not math.isfinite(pue) or pue < 1.0:
        raise ValueError(f"pue must be a finite number >= 1, got {pue!r}")
    co2e_g = energy_j / J_PER_KWH * pue * intensity.value_g_per_kwh
    return CarbonEstimate(
        co2e_g=co2e_g,
        co2e_per_output_token_g=co2e_g / output_tokens if output_tokens else 0.0,
        energy_j=energy_j,
        energy_basis=energy_basis,
        pue=pue,
        intensity=intensity,
        output_tokens=output_tokens,
        confidence=lowest_confidence(energy_confidence, intensity.confidence),
        notes=list(notes),
    )


class CostEstimate(DomainModel):
    """Money spent on the hardware during the measurement window, with its inputs."""

    cost_usd: float = Field(ge=0)
    cost_per_million_output_tokens_usd: float = Field(
        ge=0, description="cost_usd / output_tokens x 1e6; 0.0 when nothing was generated."
    )
    usd_per_gpu_hour: float | None = Field(default=None, ge=0)
    usd_per_node_hour: float | None = Field(default=None, ge=0)
    gpu_count: int = Field(ge=0)
    gpu_count_source: Literal["metered", "configured"]
    node_count: int = Field(ge=1)
    duration_sec: float = Field(ge=0, description="The window the hardware is charged for.")
    output_tokens: int = Field(ge=0)
    notes: list[str] = Field(default_factory=list)


def cost_estimate(
    duration_sec: float,
    output_tokens: int,
    *,
    gpu_count: int,
    node_count: int = 1,
    usd_per_gpu_hour: float | None = None,
    usd_per_node_hour: float | None = None,
    gpu_count_source: Literal["metered", "configured"] = "metered",
    notes: Sequence[str] = (),
) -> CostEstimate:
    """USD = (usd_per_gpu_hour x gpu_count + usd_per_node_hour x node_count) x hours."""
    _finite_non_negative(duration_sec=duration_sec, output_tokens=output_tokens)
    if usd_per_gpu_hour is None and usd_per_node_hour is None:
        raise ValueError("a cost needs usd_per_gpu_hour or usd_per_node_hour")
    hourly = (usd_per_gpu_hour or 0.0) * gpu_count + (usd_per_node_hour or 0.0) * node_count
    cost_usd = hourly * duration_sec / SEC_PER_HOUR
    per_million = cost_usd / output_tokens * TOKENS_PER_MILLION if output_tokens else 0.0
    return CostEstimate(
        cost_usd=cost_usd,
        cost_per_million_output_tokens_usd=per_million,
        usd_per_gpu_hour=usd_per_gpu_hour,
        usd_per_node_hour=usd_per_node_hour,
        gpu_count=gpu_count,
        gpu_count_source=gpu_count_source,
        node_count=node_count,
        duration_sec=duration_sec,
        output_tokens=output_tokens,
        notes=list(notes),
    )
