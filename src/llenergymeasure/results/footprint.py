"""Carbon and cost of a result, from its stored energy and time; recomputed for other factors.

``footprint`` is what aggregation stores in result.json; ``recompute`` is what
`llem results show/compare/export` and `llem report` use with ``--region`` and friends: it
returns a copy of the result whose carbon (or cost) fields alone differ, never touching the
measured figures or the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from pydantic import ValidationError

from llenergymeasure.domain.footprint import (
    CarbonEstimate,
    CarbonSettings,
    CostEstimate,
    CostSettings,
    EnergyBasis,
    carbon_estimate,
    cost_estimate,
)
from llenergymeasure.domain.results import ExperimentResult
from llenergymeasure.errors import ConfigError, LlemError
from llenergymeasure.results.collection import LoadedResult, ResultSet
from llenergymeasure.results.intensity import resolve_intensity, world_average


def _section(config: Mapping[str, Any], key: str, model: type[Any]) -> Any:
    """The config's ``carbon``/``cost`` section as settings; defaults when absent or invalid."""
    data = config.get(key)
    if not isinstance(data, Mapping):
        return model()
    try:
        return model.model_validate(dict(data))
    except ValidationError:
        return model()


def carbon_settings(config: Mapping[str, Any]) -> CarbonSettings:
    """The carbon settings a result's config holds (defaults for results without them)."""
    return _section(config, "carbon", CarbonSettings)


def cost_settings(config: Mapping[str, Any]) -> CostSettings:
    """The cost settings a result's config holds (defaults for results without them)."""
    return _section(config, "cost", CostSettings)


def carbon_of(result: ExperimentResult, settings: CarbonSettings) -> CarbonEstimate:
    """gCO2e of the result's window under ``settings`` (ConfigError for an unknown region)."""
    energy = result.energy
    notes: list[str] = []
    basis: EnergyBasis = settings.energy_basis
    energy_j = energy.total_energy_j
    if basis == "idle_adjusted":
        if energy.adjusted_energy_j is None:
            basis = "raw"
            notes.append("idle-adjusted energy asked for but no idle baseline was measured: raw")
        else:
            energy_j = energy.adjusted_energy_j
    intensity = resolve_intensity(settings)
    if intensity.method == "world_average" and not settings.region:
        notes.append("no carbon.region or intensity given: world average (low confidence)")
    return carbon_estimate(
        energy_j,
        result.inference.output_tokens,
        intensity=intensity,
        pue=settings.pue,
        energy_basis=basis,
        energy_confidence=energy.confidence,
        notes=notes,
    )


def cost_of(result: ExperimentResult, settings: CostSettings) -> CostEstimate | None:
    """Hardware cost of the result's window, or None when no price is set."""
    if not settings.priced:
        return None
    metered = len({d.uid for d in result.energy.devices if d.kind == "gpu"})
    notes: list[str] = []
    if settings.gpu_count is not None:
        gpus, source = settings.gpu_count, "configured"
    else:
        gpus, source = metered, "metered"
        if gpus == 0 and settings.usd_per_gpu_hour is not None:
            notes.append("no GPU was metered: usd_per_gpu_hour prices 0 GPUs (set cost.gpu_count)")
    hosts = {p.hostname for p in result.process_results} or {result.environment.hostname}
    return cost_estimate(
        result.inference.inference_time_sec,
        result.inference.output_tokens,
        gpu_count=gpus,
        node_count=len(hosts),
        usd_per_gpu_hour=settings.usd_per_gpu_hour,
        usd_per_node_hour=settings.usd_per_node_hour,
        gpu_count_source=source,  # type: ignore[arg-type]
        notes=notes,
    )


def footprint(result: ExperimentResult) -> ExperimentResult:
    """The result with carbon and cost computed from its own config (what aggregation stores).

    Measurement is never lost to a carbon factor: a region no table knows (checked before the
    run, so only possible when re-aggregating) gives the world average and a warning.
    """
    settings = carbon_settings(result.config)
    warnings = list(result.warnings)
    try:
        carbon = carbon_of(result, settings)
    except ConfigError as exc:
        warnings.append(f"{exc}; carbon uses the world average")
        carbon = carbon_estimate(
            result.energy.total_energy_j,
            result.inference.output_tokens,
            intensity=world_average(),
            pue=settings.pue,
            energy_confidence=result.energy.confidence,
            notes=[f"region {settings.region!r} unknown: world average"],
        )
    return result.model_copy(
        update={
            "carbon": carbon,
            "cost": cost_of(result, cost_settings(result.config)),
            "warnings": warnings,
        }
    )


_CARBON_FACTORS = ("region", "intensity_g_per_kwh", "pue", "energy_basis")
_COST_FACTORS = ("usd_per_gpu_hour", "usd_per_node_hour", "gpu_count")


@dataclass(frozen=True)
class FootprintOverrides:
    """Factors given on the command line; None keeps what the result was computed with."""

    region: str | None = None
    intensity_g_per_kwh: float | None = None
    pue: float | None = None
    energy_basis: EnergyBasis | None = None
    usd_per_gpu_hour: float | None = None
    usd_per_node_hour: float | None = None
    gpu_count: int | None = None

    @property
    def carbon_given(self) -> bool:
        return any(getattr(self, n) is not None for n in _CARBON_FACTORS)

    @property
    def cost_given(self) -> bool:
        return any(getattr(self, n) is not None for n in _COST_FACTORS)

    @property
    def any_given(self) -> bool:
        return self.carbon_given or self.cost_given

    def describe(self, part: str = "") -> str:
        """e.g. 'region=FR, pue=1.2': the factors given (of ``part``: 'carbon' or 'cost')."""
        names = {"carbon": _CARBON_FACTORS, "cost": _COST_FACTORS}.get(part)
        return ", ".join(
            f"{f.name}={getattr(self, f.name)}"
            for f in fields(self)
            if getattr(self, f.name) is not None and (names is None or f.name in names)
        )


def _merged(base: Any, update: dict[str, Any], flag_names: dict[str, str]) -> Any:
    try:
        return base.model_validate({**base.model_dump(), **update})
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "?"
        flag = flag_names.get(name, name)
        raise LlemError(f"{flag}: {first.get('input')!r} is invalid: {first['msg']}") from None


_FLAGS = {
    "intensity_g_per_kwh": "--intensity",
    "pue": "--pue",
    "energy_basis": "--energy-basis",
    "usd_per_gpu_hour": "--usd-per-gpu-hour",
    "usd_per_node_hour": "--usd-per-node-hour",
    "gpu_count": "--gpus",
}


def recompute(result: ExperimentResult, overrides: FootprintOverrides) -> ExperimentResult:
    """A copy of ``result`` with carbon and/or cost recomputed under the overridden factors.

    Factors not given keep the result's own (from its config). ``--region`` alone drops a
    stored user intensity (asking for a region means its table value); ``--intensity`` wins
    over any region. The measured figures, the config and the file are left as they are.
    """
    if not overrides.any_given:
        return result
    update: dict[str, Any] = {}
    if overrides.carbon_given:
        carbon_update = {k: v for k in _CARBON_FACTORS if (v := getattr(overrides, k)) is not None}
        if overrides.region is not None and overrides.intensity_g_per_kwh is None:
            carbon_update["intensity_g_per_kwh"] = None
        settings = _merged(carbon_settings(result.config), carbon_update, _FLAGS)
        carbon = carbon_of(result, settings)
        carbon.notes.append(f"recomputed from stored energy ({overrides.describe('carbon')})")
        update["carbon"] = carbon
    if overrides.cost_given:
        cost_update = {k: v for k in _COST_FACTORS if (v := getattr(overrides, k)) is not None}
        cost = cost_of(result, _merged(cost_settings(result.config), cost_update, _FLAGS))
        if cost is not None:
            cost.notes.append(f"recomputed from stored time ({overrides.describe('cost')})")
        update["cost"] = cost
    return result.model_copy(update=update)


def recompute_item(item: LoadedResult, overrides: FootprintOverrides) -> LoadedResult:
    """``recompute`` for one loaded result (same path)."""
    if not overrides.any_given:
        return item
    return LoadedResult(path=item.path, result=recompute(item.result, overrides))


def recompute_set(found: ResultSet, overrides: FootprintOverrides) -> ResultSet:
    """``recompute`` for every result of a set (the problems kept as they are)."""
    if not overrides.any_given:
        return found
    return ResultSet(
        root=found.root,
        loaded=[recompute_item(item, overrides) for item in found.loaded],
        problems=list(found.problems),
    )


def _price(usd: float | None, count: int, unit: str) -> str | None:
    return None if usd is None else f"{usd:g} USD/{unit}-h x {count} {unit}"


def footprint_rows(result: ExperimentResult) -> list[tuple[str, Any, str]]:
    """(figure, value, provenance) rows of carbon and cost, for `llem results show`."""
    rows: list[tuple[str, Any, str]] = []
    carbon, cost = result.carbon, result.cost
    if carbon is not None:
        i = carbon.intensity
        how = (
            f"{carbon.energy_basis} energy x PUE {carbon.pue:g} x {i.value_g_per_kwh:.4g} "
            f"{i.unit} ({carbon.confidence} confidence)"
        )
        where = " ".join(x for x in (i.region, f"({i.region_name})" if i.region_name else "") if x)
        year = f", {i.year}" if i.year is not None else ""
        rows += [
            ("gCO2e per output token", carbon.co2e_per_output_token_g, how),
            ("gCO2e of the window", carbon.co2e_g, how),
            (
                f"grid intensity ({i.unit})",
                i.value_g_per_kwh,
                f"{where + ': ' if where else ''}{i.source}{year}; {i.method} "
                f"({i.confidence} confidence)",
            ),
            ("PUE", carbon.pue, "carbon.pue"),
            ("energy for carbon (kWh)", carbon.energy_kwh, carbon.energy_basis),
        ]
        if carbon.notes:
            rows.append(("carbon notes", "; ".join(carbon.notes), ""))
    if cost is not None:
        prices = [
            _price(cost.usd_per_gpu_hour, cost.gpu_count, "GPU"),
            _price(cost.usd_per_node_hour, cost.node_count, "node"),
        ]
        how = (
            " + ".join(p for p in prices if p)
            + f" over the {cost.duration_sec:.4g} s window (GPUs {cost.gpu_count_source})"
        )
        rows += [
            ("USD per million output tokens", cost.cost_per_million_output_tokens_usd, how),
            ("USD of the window", cost.cost_usd, how),
        ]
        if cost.notes:
            rows.append(("cost notes", "; ".join(cost.notes), ""))
    return rows
