"""Where the joules came from (issue 11, item 14): energy by kind with its estimated parts, and
normalised figures on raw and on idle-adjusted energy."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llenergymeasure.domain.energy import EnergyMetrics, is_estimated
from llenergymeasure.domain.metrics import NormalisedMetrics
from llenergymeasure.results.views import energy_by_kind_text
from tests import factories as f


def _cpu_only_host() -> EnergyMetrics:
    """A CPU-only host as `auto` meters it without RAPL: both parts estimated, RAM the most."""
    return EnergyMetrics.from_devices(
        [
            f.device_energy("h:cpu", "cpu", 30.0, method="estimate", confidence="low",
                            baseline_power_w=1.0),
            f.device_energy("h:ram", "ram", 95.0, method="estimate", confidence="low",
                            baseline_power_w=9.5),
        ],
        10.0,
        baseline_method="measured",
    )  # fmt: skip


def test_by_kind_gives_shares_methods_and_estimated_parts() -> None:
    gpu = f.device_energy("GPU-a", "gpu", 300.0, baseline_power_w=10.0)
    cpu = f.device_energy("h:pkg", "cpu", 60.0, method="rapl", baseline_power_w=2.0)
    ram = f.device_energy("h:ram", "ram", 40.0, method="estimate", confidence="low",
                          baseline_power_w=4.0)  # fmt: skip
    energy = EnergyMetrics.from_devices([gpu, cpu, ram], 5.0, baseline_method="measured")
    kinds = {k.kind: k for k in energy.by_kind()}
    assert [k.kind for k in energy.by_kind()] == ["gpu", "cpu", "ram"]
    assert kinds["gpu"].share == pytest.approx(0.75) and not kinds["gpu"].estimated
    assert kinds["cpu"].methods == ("rapl",) and not kinds["cpu"].estimated
    assert kinds["ram"].estimated and kinds["ram"].confidence == "low"
    assert kinds["ram"].adjusted_energy_j == pytest.approx(40.0 - 4.0 * 5.0)
    assert (
        energy_by_kind_text(energy)
        == "GPU 300.0 J (75%), CPU 60.00 J (15%), RAM 40.00 J (10%, estimated)"
    )


def test_cpu_only_host_shows_the_ram_estimate_is_most_of_the_total() -> None:
    text = energy_by_kind_text(_cpu_only_host())
    assert text == "CPU 30.00 J (24%, estimated), RAM 95.00 J (76%, estimated)"


def test_codecarbon_without_rapl_is_estimated_with_it_is_not() -> None:
    low = f.device_energy("c", "cpu", 1.0, method="codecarbon", confidence="low")
    medium = f.device_energy("c", "cpu", 1.0, method="codecarbon", confidence="medium")
    assert is_estimated(low) and not is_estimated(medium)


@given(
    st.lists(st.tuples(st.sampled_from(["gpu", "cpu", "ram"]), st.floats(0, 1e6)), min_size=1,
             max_size=6),
)  # fmt: skip
def test_kinds_sum_to_the_total(parts: list[tuple[str, float]]) -> None:
    devices = [f.device_energy(f"d{i}", kind, j) for i, (kind, j) in enumerate(parts)]
    energy = EnergyMetrics.from_devices(devices, 1.0)
    kinds = energy.by_kind()
    assert math.fsum(k.energy_j for k in kinds) == pytest.approx(energy.total_energy_j)
    if energy.total_energy_j > 0:
        assert math.fsum(k.share for k in kinds) == pytest.approx(1.0)


@given(
    tokens=st.integers(1, 10**6),
    energy_j=st.floats(1e-3, 1e6),
    seconds=st.floats(1e-3, 1e4),
    idle_share=st.floats(0, 1),
)
def test_normalised_on_raw_and_adjusted_energy(
    tokens: int, energy_j: float, seconds: float, idle_share: float
) -> None:
    adjusted = energy_j * (1 - idle_share)
    n = NormalisedMetrics.from_metrics(
        tokens, energy_j, energy_j / seconds, seconds, 1e12, adjusted_energy_j=adjusted
    )
    assert n.tokens_per_joule == pytest.approx(tokens / energy_j)
    # with the window's mean power, tokens/s/W is tokens per joule: documented as such
    assert n.tokens_per_second_per_watt == pytest.approx(n.tokens_per_joule)
    expected = tokens / adjusted if adjusted > 0 else 0.0
    assert n.adjusted_tokens_per_joule == pytest.approx(expected)
    assert (
        NormalisedMetrics.from_metrics(tokens, energy_j, 1.0, 1.0, 1.0).adjusted_tokens_per_joule
        is None
    )


def test_tokens_per_second_per_watt_is_documented_for_what_it_is() -> None:
    description = NormalisedMetrics.model_fields["tokens_per_second_per_watt"].description or ""
    assert "equal to tokens_per_joule" in description


def test_result_carries_adjusted_energy_per_token() -> None:
    proc = f.process_result(energy=_cpu_only_host())
    result = f.experiment_result(process=proc)
    assert result.adjusted_energy_per_output_token_j == pytest.approx(
        result.energy.adjusted_energy_j / result.inference.output_tokens
    )
    no_baseline = f.experiment_result()
    assert no_baseline.adjusted_energy_per_output_token_j is None
