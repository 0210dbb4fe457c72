"""The result schema: consistency rules, aggregation helpers, and a lossless JSON round trip."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from llenergymeasure.domain import (
    ComputeMetrics,
    EnergyMetrics,
    ExperimentResult,
    InferenceMetrics,
    LatencyStats,
)
from llenergymeasure.domain.energy import idle_adjusted
from tests import factories as f


@given(f.experiment_results())
def test_experiment_result_json_round_trip_is_lossless(result: ExperimentResult) -> None:
    text = result.model_dump_json()
    again = ExperimentResult.model_validate_json(text)
    assert again == result
    assert again.model_dump_json() == text
    # plain json.loads -> validate also works (what load_result does)
    assert ExperimentResult.model_validate(json.loads(text)) == result


def test_computed_fields_written_and_ignored_on_input() -> None:
    result = f.experiment_result()
    data = json.loads(result.model_dump_json())
    assert data["energy_per_output_token_j"] == pytest.approx(100.0 / 640)
    assert data["warmup_converged"] is True
    assert data["compute"]["precision"]["precision_factor"] == 1.0
    assert data["energy"]["per_device_energy_j"] == {"gpu:GPU-0000": 100.0}
    data["energy_per_output_token_j"] = 999.0  # a stale derived figure is recomputed, not trusted
    assert ExperimentResult.model_validate(data).energy_per_output_token_j == pytest.approx(
        100.0 / 640
    )


def test_unknown_field_and_nan_rejected() -> None:
    data = json.loads(f.experiment_result().model_dump_json())
    with pytest.raises(ValidationError, match="extra"):
        ExperimentResult.model_validate({**data, "surprise": 1})
    data["energy"]["mean_power_w"] = float("nan")
    with pytest.raises(ValidationError):
        ExperimentResult.model_validate(data)


def test_energy_from_devices_sums_and_provenance() -> None:
    devices = [
        f.device_energy("GPU-a", "gpu", 300.0, baseline_power_w=50.0),
        f.device_energy("GPU-b", "gpu", 200.0, baseline_power_w=50.0),
        f.device_energy(
            "host:pkg0", "cpu", 80.0, baseline_power_w=10.0, method="rapl", confidence="medium"
        ),
        f.device_energy(
            "host:dram", "ram", 20.0, baseline_power_w=1.0, method="rapl", confidence="medium"
        ),
    ]
    e = EnergyMetrics.from_devices(devices, 4.0, baseline_method="measured")
    assert (e.gpu_energy_j, e.cpu_energy_j, e.ram_energy_j, e.total_energy_j) == (
        500.0, 80.0, 20.0, 600.0,
    )  # fmt: skip
    assert e.mean_power_w == 150.0
    assert e.method == "nvml_energy_counter+rapl"
    assert e.confidence == "medium"
    assert e.baseline_power_w == 111.0
    # per device: 300-200, 200-200, 80-40, 20-4
    assert e.adjusted_energy_j == pytest.approx(100.0 + 0.0 + 40.0 + 16.0)
    assert e.baseline_method == "measured"


def test_energy_without_full_baseline_has_no_adjusted_figure() -> None:
    e = EnergyMetrics.from_devices(
        [f.device_energy("a", baseline_power_w=5.0), f.device_energy("b")],
        1.0,
        baseline_method="measured",
    )
    assert e.adjusted_energy_j is None and e.baseline_power_w is None
    assert e.baseline_method == "none"


def test_energy_rejects_duplicates_and_inconsistent_sums() -> None:
    with pytest.raises(ValueError, match="counted twice"):
        EnergyMetrics.from_devices([f.device_energy("x"), f.device_energy("x")], 1.0)
    good = f.energy()
    with pytest.raises(ValidationError, match="gpu_energy_j does not equal"):
        EnergyMetrics.model_validate({**good.model_dump(), "gpu_energy_j": 1.0})


@given(st.floats(0, 1e6), st.floats(0, 1e4), st.floats(0, 1e4))
def test_idle_adjusted_floor(energy_j: float, baseline_w: float, duration: float) -> None:
    adjusted = idle_adjusted(energy_j, baseline_w, duration)
    assert adjusted >= 0
    assert adjusted <= energy_j
    if energy_j >= baseline_w * duration:
        assert adjusted == pytest.approx(energy_j - baseline_w * duration)


@given(st.lists(st.lists(f.small_finite, max_size=10), min_size=1, max_size=5))
def test_latency_pool_equals_stats_of_pooled_samples(groups: list[list[float]]) -> None:
    pooled = LatencyStats.pool(LatencyStats.from_samples(g) for g in groups)
    direct = LatencyStats.from_samples([x for g in groups for x in g])
    assert pooled == direct


def test_latency_stats_numbers() -> None:
    s = LatencyStats.from_samples([1.0, 2.0, 3.0, 4.0, 10.0])
    assert (s.n, s.mean_ms, s.p50_ms, s.min_ms, s.max_ms) == (5, 4.0, 3.0, 1.0, 10.0)
    assert s.p90_ms == pytest.approx(7.6)
    assert LatencyStats.from_samples([]).n == 0
    with pytest.raises(ValueError):
        LatencyStats.from_samples([-1.0])


def test_inference_combine_sums_counts_and_uses_wall_time() -> None:
    a = f.inference(output_tokens=100, time_sec=10.0, ttft=[1.0, 2.0])
    b = f.inference(output_tokens=300, time_sec=12.0, ttft=[3.0])
    c = InferenceMetrics.combine([a, b], wall_time_sec=16.0)
    assert c.output_tokens == 400 and c.num_requests == 16 and c.input_tokens == 512
    assert c.tokens_per_second == 25.0
    assert c.ttft.samples_ms == [1.0, 2.0, 3.0] and c.ttft.p50_ms == 2.0


def test_energy_combine_sums_never_averages() -> None:
    a = f.energy([f.device_energy("GPU-a", energy_j=100.0)], duration_sec=10.0)
    b = f.energy([f.device_energy("GPU-b", energy_j=300.0)], duration_sec=8.0)
    c = EnergyMetrics.combine([a, b], wall_time_sec=10.0)
    assert c.total_energy_j == 400.0 and c.mean_power_w == 40.0
    with pytest.raises(ValueError, match="counted twice"):
        EnergyMetrics.combine([a, a], wall_time_sec=10.0)


def test_compute_combine_weakest_method_and_mfu() -> None:
    a = f.compute(flops=4e12)
    b = ComputeMetrics.model_validate(
        {
            **f.compute(flops=6e12).model_dump(),
            "flops": {"value": 6e12, "method": "calflops", "precision": "fp16"},
            "peak_flops_per_sec": 1e13,
        }
    )
    c = ComputeMetrics.combine([a, b], wall_time_sec=2.0, output_tokens=1000)
    assert c.flops.value == 1e13 and c.flops.method == "architecture"
    assert c.flops.confidence == "medium"
    assert c.flops_per_output_token == 1e10
    assert c.achieved_flops_per_sec == 5e12
    assert c.mfu is None  # one process has no known peak
    assert math.isclose(c.prefill_flops, 2.5e12)


def test_times_ordered_and_process_index_in_world() -> None:
    with pytest.raises(ValidationError, match="before start_time"):
        f.process_result(end_time=f.T0 - timedelta(seconds=1))
    with pytest.raises(ValidationError, match="world_size"):
        f.process_result(index=2, world=2)
