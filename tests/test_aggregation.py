"""Late aggregation over processes: sums never averages, pooled percentiles, the checks."""

from __future__ import annotations

import json
import math
import random
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llenergymeasure.domain import EnergyMetrics, LatencyStats
from llenergymeasure.domain.stats import percentile
from llenergymeasure.errors import LlemError
from llenergymeasure.results.aggregation import (
    aggregate,
    aggregate_directory,
    check_processes,
    window_overlap,
)
from llenergymeasure.results.io import save_model
from llenergymeasure.results.layout import (
    CONFIG_FILENAME,
    ENVIRONMENT_FILENAME,
    done_marker,
    process_filename,
)
from tests import factories as f

CONFIG = {"model": "builtin:tiny-llama", "processes": 2}


@st.composite
def process_sets(draw: st.DrawFn):  # type: ignore[no-untyped-def]
    n = draw(st.integers(1, 4))
    procs = []
    for i in range(n):
        devices = [
            f.device_energy(
                uid=f"p{i}-d{k}",
                kind=draw(st.sampled_from(["gpu", "cpu", "ram"])),
                energy_j=draw(f.small_finite),
            )
            for k in range(draw(st.integers(1, 3)))
        ]
        start = f.T0 + timedelta(seconds=draw(st.floats(0, 2)))
        duration = draw(st.floats(1, 20))
        ttft = draw(st.lists(f.small_finite, max_size=10))
        procs.append(
            f.process_result(
                index=i,
                world=n,
                device_ids=[d.uid for d in devices],
                start_time=start,
                end_time=start + timedelta(seconds=duration),
                energy=EnergyMetrics.from_devices(devices, duration),
                inference=f.inference(
                    output_tokens=draw(st.integers(0, 10**6)), time_sec=duration, ttft=ttft
                ),
            )
        )
    return procs


@given(process_sets(), st.randoms())
def test_aggregate_properties(procs, rnd) -> None:  # type: ignore[no-untyped-def]
    result = aggregate(procs, config=CONFIG, environment=f.environment())
    # per-device energies sum to the total, and the total is the sum of the processes'
    assert math.isclose(
        result.energy.total_energy_j,
        math.fsum(d.energy_j for d in result.energy.devices),
        abs_tol=1e-6,
    )
    assert math.isclose(
        result.energy.total_energy_j,
        math.fsum(p.energy.total_energy_j for p in procs),
        rel_tol=1e-9,
        abs_tol=1e-6,
    )
    assert result.inference.output_tokens == sum(p.inference.output_tokens for p in procs)
    # latency percentiles are those of the pooled raw samples
    pooled = [x for p in procs for x in p.inference.ttft.samples_ms]
    assert sorted(result.inference.ttft.samples_ms) == sorted(pooled)
    assert result.inference.ttft.p99_ms == pytest.approx(percentile(pooled, 99))
    # process order does not matter
    shuffled = list(procs)
    rnd.shuffle(shuffled)
    again = aggregate(shuffled, config=CONFIG, environment=f.environment())
    assert again.model_dump() == result.model_dump()
    # FLOPs summed
    assert result.compute.flops.value == pytest.approx(sum(p.compute.flops.value for p in procs))


@given(process_sets())
def test_aggregating_one_process_reproduces_it(procs) -> None:  # type: ignore[no-untyped-def]
    one = procs[0].model_copy(update={"world_size": 1, "process_index": 0})
    result = aggregate([one], config=CONFIG, environment=f.environment())
    assert result.energy == one.energy
    assert result.inference == one.inference
    assert result.compute == one.compute
    assert result.thermal == one.thermal
    assert result.warmup == [one.warmup]


def test_throughput_over_wall_time() -> None:
    a = f.process_result(0, 2, inference=f.inference(output_tokens=100, time_sec=10.0))
    b = f.process_result(
        1,
        2,
        start_time=f.T0 + timedelta(seconds=2),
        end_time=f.T0 + timedelta(seconds=12),
        inference=f.inference(output_tokens=140, time_sec=10.0),
    )
    result = aggregate([a, b], config=CONFIG, environment=f.environment())
    assert result.inference.inference_time_sec == 12.0
    assert result.inference.tokens_per_second == 20.0
    assert result.energy.total_energy_j == 200.0  # summed, never averaged
    assert result.energy.mean_power_w == pytest.approx(200.0 / 12.0)
    assert result.normalised.tokens_per_joule == pytest.approx(240 / 200.0)
    assert len(result.warmup) == 2
    assert window_overlap([a, b]) == pytest.approx(8 / 12)


def test_checks() -> None:
    a = f.process_result(0, 2)
    b = f.process_result(1, 2, config_hash="other")
    late = f.process_result(
        1, 2, start_time=f.T0 + timedelta(seconds=9), end_time=f.T0 + timedelta(seconds=19)
    )
    twice = f.process_result(1, 2, energy=a.energy, device_ids=a.device_ids)
    assert check_processes([a, f.process_result(1, 2)], 2) == []
    assert any("missing" in p for p in check_processes([a], 2))
    assert any("config hash" in p for p in check_processes([a, b], 2))
    assert any("overlap by 5%" in p for p in check_processes([a, late], 2))
    assert any("more than one process: ['GPU-0000']" in p for p in check_processes([a, twice], 2))


def write_experiment_dir(tmp_path: Path, procs, done=(0, 1)) -> Path:  # type: ignore[no-untyped-def]
    directory = tmp_path / "exp-test"
    directory.mkdir()
    (directory / CONFIG_FILENAME).write_text(json.dumps(CONFIG))
    save_model(f.environment(), directory / ENVIRONMENT_FILENAME)
    for p in procs:
        save_model(p, directory / process_filename(p.process_index))
        if p.process_index in done:
            (directory / done_marker(p.process_index)).touch()
    return directory


def test_aggregate_directory(tmp_path: Path) -> None:
    procs = [f.process_result(0, 2), f.process_result(1, 2)]
    directory = write_experiment_dir(tmp_path, procs)
    result = aggregate_directory(directory)
    assert result.energy.total_energy_j == 200.0
    assert (directory / "result.json").exists()
    assert result.warnings == []


def test_missing_or_incomplete_process_is_a_clear_error(tmp_path: Path) -> None:
    directory = write_experiment_dir(tmp_path, [f.process_result(0, 2)])
    with pytest.raises(LlemError, match=r"process_1.json is missing .*--allow-partial"):
        aggregate_directory(directory)
    assert not (directory / "result.json").exists()
    partial = aggregate_directory(directory, allow_partial=True)
    assert partial.warnings and "process_1.json is missing" in partial.warnings[0]
    assert partial.energy.total_energy_j == 100.0


def test_incomplete_marker(tmp_path: Path) -> None:
    directory = write_experiment_dir(
        tmp_path, [f.process_result(0, 2), f.process_result(1, 2)], done=(0,)
    )
    with pytest.raises(LlemError, match=r"process_1.json is incomplete \(no process_1.done"):
        aggregate_directory(directory)


def test_not_an_experiment_dir(tmp_path: Path) -> None:
    with pytest.raises(LlemError, match="config.json: missing: not an experiment directory"):
        aggregate_directory(tmp_path)


def test_latency_pool_vs_average_of_percentiles() -> None:
    a = LatencyStats.from_samples([1.0] * 99 + [100.0])
    b = LatencyStats.from_samples([50.0])
    pooled = LatencyStats.pool([a, b])
    assert pooled.p50_ms == 1.0 and pooled.p50_ms != (a.p50_ms + b.p50_ms) / 2
    random.seed(0)
