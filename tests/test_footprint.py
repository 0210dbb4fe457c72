"""Carbon and cost: hand computations, the intensity lookup order, recomputation, the schema."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llenergymeasure.config.experiment import ExperimentConfig
from llenergymeasure.domain.footprint import (
    CarbonSettings,
    CostSettings,
    carbon_estimate,
    cost_estimate,
    user_intensity,
)
from llenergymeasure.domain.results import ExperimentResult
from llenergymeasure.errors import ConfigError, LlemError
from llenergymeasure.results import intensity
from llenergymeasure.results.footprint import (
    FootprintOverrides,
    carbon_of,
    cost_of,
    footprint,
    recompute,
)
from llenergymeasure.results.records import FOOTPRINT_COLUMNS, result_record
from tests import factories as f

CARBON_COLUMNS = {c.name for c in FOOTPRINT_COLUMNS if not c.name.startswith(("cost", "usd"))}
COST_COLUMNS = {c.name for c in FOOTPRINT_COLUMNS} - CARBON_COLUMNS

# The factory result: 100 J raw on one GPU over a 10 s window, 640 output tokens.
ENERGY_J, TOKENS, WINDOW_SEC = 100.0, 640, 10.0
LB_PER_MWH_TO_G_PER_KWH = 0.45359237  # 1 lb = 453.59237 g; per MWh -> per kWh: / 1000


def _result(config: dict | None = None) -> ExperimentResult:
    base = {"model": "builtin:tiny-llama", "batch_size": 4}
    return footprint(f.experiment_result(config={**base, **(config or {})}))


@pytest.fixture(params=["codecarbon", "llem"])
def table(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with CodeCarbon's shipped tables, and again as if CodeCarbon were absent."""
    if request.param == "codecarbon":
        if intensity.codecarbon_data_dir() is None:
            pytest.skip("codecarbon is not installed")
    else:
        monkeypatch.setattr(intensity, "codecarbon_data_dir", lambda: None)
    return request.param


# ---- hand computations ----------------------------------------------------------------------

# (region as given, intensity in gCO2e/kWh as in the source file, year, source words)
HAND = [
    ("FR", 56.039, 2023, "global_energy_mix.json"),  # France
    ("DEU", 380.95, 2023, "global_energy_mix.json"),  # Germany
    ("US-CA", 394.769 * LB_PER_MWH_TO_G_PER_KWH, 2023, "eGRID2023"),  # California, 394.769 lb/MWh
]


@pytest.mark.parametrize(("region", "g_per_kwh", "year", "source"), HAND)
def test_carbon_against_hand_computation(
    table: str, region: str, g_per_kwh: float, year: int, source: str
) -> None:
    result = _result({"carbon": {"region": region, "pue": 1.2}})
    carbon = result.carbon
    assert carbon is not None
    # llem's table keeps 3 decimals of the converted eGRID figure
    assert carbon.intensity.value_g_per_kwh == pytest.approx(g_per_kwh, abs=5e-4)
    hand_g = ENERGY_J / 3.6e6 * 1.2 * g_per_kwh  # kWh x PUE x g/kWh
    assert carbon.co2e_g == pytest.approx(hand_g, rel=1e-5)
    assert carbon.co2e_per_output_token_g == pytest.approx(hand_g / TOKENS, rel=1e-5)
    assert carbon.energy_kwh == pytest.approx(ENERGY_J / 3.6e6)
    i = carbon.intensity
    assert (i.year, i.unit, i.confidence) == (year, "gCO2e/kWh", "medium")
    assert i.method == ("codecarbon_table" if table == "codecarbon" else "llem_table")
    assert source in i.source and (table != "llem" or i.source.startswith("llem"))
    assert carbon.energy_basis == "raw" and carbon.pue == 1.2
    assert carbon.confidence == "medium"  # energy high (NVML), intensity medium


def test_world_average_fallback_is_low_confidence(table: str) -> None:
    carbon = _result().carbon  # no carbon section at all
    assert carbon is not None
    assert carbon.intensity.value_g_per_kwh == 475
    assert carbon.co2e_g == pytest.approx(ENERGY_J / 3.6e6 * 1.0 * 475)
    assert (carbon.intensity.method, carbon.intensity.confidence) == ("world_average", "low")
    assert carbon.confidence == "low" and "IEA" in carbon.intensity.source
    assert any("world average" in n for n in carbon.notes)


def test_user_intensity_outranks_region() -> None:
    carbon = _result({"carbon": {"region": "FR", "intensity_g_per_kwh": 100.0}}).carbon
    assert carbon is not None
    assert carbon.intensity.value_g_per_kwh == 100.0 and carbon.intensity.method == "user"
    assert carbon.intensity.region == "FRA"
    assert carbon.co2e_g == pytest.approx(ENERGY_J / 3.6e6 * 100.0)


def test_idle_adjusted_basis_uses_adjusted_energy_or_says_raw() -> None:
    device = f.device_energy(energy_j=100.0, baseline_power_w=4.0)  # 100 - 4 W x 10 s = 60 J
    proc = f.process_result(energy=f.energy([device], duration_sec=10.0))
    config = {"carbon": {"intensity_g_per_kwh": 300.0, "energy_basis": "idle_adjusted"}}
    adjusted = footprint(f.experiment_result(process=proc, config=config)).carbon
    assert adjusted is not None and adjusted.energy_basis == "idle_adjusted"
    assert adjusted.co2e_g == pytest.approx(60.0 / 3.6e6 * 300.0)
    raw = _result(config).carbon  # the factory result has no baseline
    assert raw is not None and raw.energy_basis == "raw" and raw.energy_j == 100.0
    assert any("no idle baseline" in n for n in raw.notes)


def test_cost_against_hand_computation() -> None:
    cost = _result({"cost": {"usd_per_gpu_hour": 2.5, "usd_per_node_hour": 0.5}}).cost
    assert cost is not None
    hand_usd = (2.5 * 1 + 0.5 * 1) * WINDOW_SEC / 3600  # one metered GPU, one host
    assert cost.cost_usd == pytest.approx(hand_usd)
    assert cost.cost_per_million_output_tokens_usd == pytest.approx(hand_usd / TOKENS * 1e6)
    assert (cost.gpu_count, cost.gpu_count_source, cost.node_count) == (1, "metered", 1)
    configured = _result({"cost": {"usd_per_gpu_hour": 2.0, "gpu_count": 8}}).cost
    assert configured is not None and configured.gpu_count_source == "configured"
    assert configured.cost_usd == pytest.approx(2.0 * 8 * WINDOW_SEC / 3600)
    assert _result().cost is None  # no price, no cost figure


def test_regions_in_every_form() -> None:
    assert intensity.normalise_region(" fr ") == "FRA"
    assert intensity.lookup_region("us_tx").region == "US-TX"
    # the shipped llem table agrees with CodeCarbon's data wherever both have the region
    if intensity.codecarbon_data_dir() is None:
        pytest.skip("codecarbon is not installed")
    for code, row in intensity.llem_table().items():
        assert intensity.lookup_region(code).value_g_per_kwh == pytest.approx(
            row.value_g_per_kwh, abs=5e-4
        ), code
    assert intensity.lookup_region("CN-BJ").unit == "gCO2/kWh"  # China's factors: CO2 only
    assert 0 < intensity.lookup_region("CA-QC").value_g_per_kwh < 10  # hydro
    assert intensity.lookup_region("SE3").year == 2025


def test_unknown_region_is_one_clear_error(table: str) -> None:
    with pytest.raises(ConfigError, match=r"carbon.region: 'ZZ' is not in .*allowed: an ISO"):
        intensity.lookup_region("ZZ")
    with pytest.raises(ConfigError):
        intensity.check_region(CarbonSettings(region="Atlantis"))
    intensity.check_region(CarbonSettings(region="Atlantis", intensity_g_per_kwh=10.0))  # given


def test_unknown_region_in_a_stored_config_keeps_the_result() -> None:
    result = _result({"carbon": {"region": "ZZ"}})  # e.g. re-aggregated from an edited config
    assert result.carbon is not None and result.carbon.intensity.method == "world_average"
    assert any("'ZZ'" in w for w in result.warnings)


# ---- maths ----------------------------------------------------------------------------------

finite = st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False)


@given(
    energy_j=finite,
    tokens=st.integers(0, 10**9),
    pue=st.floats(min_value=1.0, max_value=3.0),
    g_per_kwh=st.floats(min_value=0, max_value=2000),
)
def test_carbon_is_the_product_of_its_factors(
    energy_j: float, tokens: int, pue: float, g_per_kwh: float
) -> None:
    c = carbon_estimate(energy_j, tokens, intensity=user_intensity(g_per_kwh), pue=pue)
    assert c.co2e_g == pytest.approx(energy_j / 3.6e6 * pue * g_per_kwh, rel=1e-12, abs=1e-300)
    assert c.co2e_per_output_token_g * tokens == pytest.approx(c.co2e_g if tokens else 0.0)
    double = carbon_estimate(2 * energy_j, tokens, intensity=user_intensity(g_per_kwh), pue=pue)
    assert double.co2e_g == pytest.approx(2 * c.co2e_g)
    assert ExperimentResult.model_fields["carbon"].annotation  # stored on the result


@given(
    sec=st.floats(min_value=0, max_value=1e6),
    tokens=st.integers(0, 10**9),
    gpus=st.integers(0, 64),
    price=st.floats(min_value=0, max_value=100),
)
def test_cost_is_price_times_hardware_times_hours(
    sec: float, tokens: int, gpus: int, price: float
) -> None:
    c = cost_estimate(sec, tokens, gpu_count=gpus, usd_per_gpu_hour=price)
    assert c.cost_usd == pytest.approx(price * gpus * sec / 3600)
    expected = c.cost_usd / tokens * 1e6 if tokens else 0.0
    assert c.cost_per_million_output_tokens_usd == pytest.approx(expected)


def test_bad_factors_are_rejected() -> None:
    with pytest.raises(ValueError, match="pue"):
        carbon_estimate(1.0, 1, intensity=user_intensity(1.0), pue=0.9)
    with pytest.raises(ValueError, match="energy_j"):
        carbon_estimate(math.inf, 1, intensity=user_intensity(1.0))
    with pytest.raises(ValueError, match="usd_per"):
        cost_estimate(1.0, 1, gpu_count=1)
    with pytest.raises(ValueError):
        ExperimentConfig(carbon={"pue": 0.5})


# ---- recomputation --------------------------------------------------------------------------


def _changed(a: ExperimentResult, b: ExperimentResult) -> set[str]:
    ra, rb = result_record(a), result_record(b)
    return {k for k in ra if ra[k] != rb[k]}


def test_recompute_for_another_region_changes_only_carbon_fields() -> None:
    stored = _result({"carbon": {"region": "DE", "pue": 1.1}, "cost": {"usd_per_gpu_hour": 2.0}})
    again = recompute(stored, FootprintOverrides(region="FR"))
    changed = _changed(stored, again)
    assert changed and changed <= CARBON_COLUMNS, changed
    assert again.carbon is not None and again.carbon.pue == 1.1  # factors not given are kept
    assert again.carbon.co2e_g == pytest.approx(ENERGY_J / 3.6e6 * 1.1 * 56.039)
    # everything but the carbon estimate is the stored result, unchanged
    assert again.model_dump(exclude={"carbon"}) == stored.model_dump(exclude={"carbon"})
    priced = recompute(stored, FootprintOverrides(usd_per_gpu_hour=4.0))
    assert _changed(stored, priced) <= COST_COLUMNS and priced.carbon == stored.carbon
    assert priced.cost is not None and stored.cost is not None
    assert priced.cost.cost_usd == pytest.approx(2 * stored.cost.cost_usd)
    assert recompute(stored, FootprintOverrides()) is stored


def test_recompute_region_drops_a_stored_user_intensity_and_intensity_wins() -> None:
    stored = _result({"carbon": {"intensity_g_per_kwh": 100.0}})
    by_region = recompute(stored, FootprintOverrides(region="DE")).carbon
    assert by_region is not None and by_region.intensity.value_g_per_kwh == pytest.approx(380.95)
    given = recompute(stored, FootprintOverrides(region="DE", intensity_g_per_kwh=20.0)).carbon
    assert given is not None and given.intensity.method == "user"
    assert given.intensity.value_g_per_kwh == 20.0


def test_recompute_bad_flag_is_one_clear_error() -> None:
    with pytest.raises(LlemError, match="--pue: 0.5 is invalid"):
        recompute(_result(), FootprintOverrides(pue=0.5))
    with pytest.raises(ConfigError, match="'XX-1'"):
        recompute(_result(), FootprintOverrides(region="XX-1"))


# ---- config and schema ----------------------------------------------------------------------


def test_carbon_and_cost_are_views_left_out_of_the_hash() -> None:
    plain = ExperimentConfig()
    priced = ExperimentConfig(
        carbon={"region": "FR", "pue": 1.4}, cost={"usd_per_gpu_hour": 3.0, "gpu_count": 2}
    )
    assert plain.config_hash() == priced.config_hash()
    assert priced.resolved()["carbon"]["region"] == "FR"
    assert ExperimentConfig(batch_size=8).config_hash() != plain.config_hash()


def test_result_with_footprint_round_trips_and_old_files_load() -> None:
    result = _result({"carbon": {"region": "US-TX"}, "cost": {"usd_per_node_hour": 1.0}})
    data = json.loads(result.model_dump_json())
    assert data["schema_version"] == "1.3"
    assert data["carbon"]["energy_kwh"] == pytest.approx(ENERGY_J / 3.6e6)
    assert ExperimentResult.model_validate(data) == result
    # a 1.0 file (no carbon, no cost) still loads; its carbon columns are empty
    old = {k: v for k, v in data.items() if k not in ("carbon", "cost")}
    old["schema_version"] = "1.0"
    loaded = ExperimentResult.model_validate(old)
    assert loaded.carbon is None and result_record(loaded)["co2e_g"] is None
    filled = recompute(loaded, FootprintOverrides(region="FR"))
    assert filled.carbon is not None and filled.carbon.intensity.region == "FRA"


def test_settings_from_results_without_sections() -> None:
    result = f.experiment_result()
    assert carbon_of(result, CarbonSettings()).intensity.method == "world_average"
    assert cost_of(result, CostSettings()) is None


@given(
    f.experiment_results(),
    st.sampled_from([None, "FR", "US-TX", "SE3", "CN-BJ", "WORLD"]),
    st.floats(min_value=1.0, max_value=3.0),
    st.one_of(st.none(), st.floats(min_value=0, max_value=100)),
)
def test_any_result_with_footprint_round_trips_losslessly(
    result: ExperimentResult, region: str | None, pue: float, price: float | None
) -> None:
    config = {"carbon": {"region": region, "pue": pue}, "cost": {"usd_per_gpu_hour": price}}
    withfp = footprint(result.model_copy(update={"config": config}))
    assert withfp.carbon is not None and (withfp.cost is None) == (price is None)
    text = withfp.model_dump_json()
    assert ExperimentResult.model_validate_json(text) == withfp
    assert ExperimentResult.model_validate(json.loads(text)).model_dump_json() == text
