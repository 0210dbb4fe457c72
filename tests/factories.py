"""Builders of valid result objects (and hypothesis strategies for them) shared by the tests."""

from __future__ import annotations

import hashlib
import json
import math
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from llenergymeasure.domain import (
    ComputeMetrics,
    DeviceEnergy,
    DeviceInfo,
    EnergyMetrics,
    EnvironmentSnapshot,
    ExperimentResult,
    FlopsResult,
    InferenceMetrics,
    LatencyStats,
    NormalisedMetrics,
    PrecisionMetadata,
    RawProcessResult,
    ThermalThrottleInfo,
    WarmupResult,
)
from llenergymeasure.domain import timeseries as col
from llenergymeasure.domain.metrics import REASON_HW_THERMAL_SLOWDOWN
from llenergymeasure.results.io import save_result

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def device_energy(
    uid: str = "GPU-0000", kind: str = "gpu", energy_j: float = 100.0, **kw: Any
) -> DeviceEnergy:
    return DeviceEnergy(
        uid=uid,
        label=kw.pop("label", f"{kind}:{uid}"),
        kind=kind,  # type: ignore[arg-type]
        energy_j=energy_j,
        method=kw.pop("method", "nvml_energy_counter"),
        confidence=kw.pop("confidence", "high"),
        **kw,
    )


def energy(devices: list[DeviceEnergy] | None = None, duration_sec: float = 10.0) -> EnergyMetrics:
    return EnergyMetrics.from_devices(devices or [device_energy()], duration_sec)


def inference(
    output_tokens: int = 640, time_sec: float = 10.0, ttft: list[float] | None = None
) -> InferenceMetrics:
    return InferenceMetrics(
        num_requests=8,
        input_tokens=256,
        output_tokens=output_tokens,
        inference_time_sec=time_sec,
        tokens_per_second=output_tokens / time_sec,
        arrival_model="closed",
        ttft=LatencyStats.from_samples(ttft if ttft is not None else [10.0, 12.0, 11.0, 15.0]),
        itl=LatencyStats.from_samples([2.0, 2.5, 3.0]),
        tpot=LatencyStats.from_samples([2.4, 2.6]),
        request_latency=LatencyStats.from_samples([100.0, 110.0]),
    )


def compute(flops: float = 1e12, output_tokens: int = 640) -> ComputeMetrics:
    return ComputeMetrics(
        flops=FlopsResult(value=flops, method="architecture", precision="fp16"),
        flops_per_output_token=flops / output_tokens,
        prefill_flops=flops * 0.25,
        decode_flops=flops * 0.75,
        precision=PrecisionMetadata(compute="fp16"),
    )


def warmup() -> WarmupResult:
    return WarmupResult(
        converged=True,
        final_cv=0.03,
        iterations_completed=7,
        target_cv=0.05,
        max_prompts=50,
        latencies_ms=[30.0, 12.0, 11.0, 11.5, 11.2, 11.1, 11.3],
    )


def process_result(index: int = 0, world: int = 1, **kw: Any) -> RawProcessResult:
    start = kw.pop("start_time", T0)
    return RawProcessResult(
        experiment_id=kw.pop("experiment_id", "exp-test"),
        config_hash=kw.pop("config_hash", "abc123"),
        process_index=index,
        world_size=world,
        hostname="testhost",
        device_ids=kw.pop("device_ids", [f"GPU-{index:04d}"]),
        start_time=start,
        end_time=kw.pop("end_time", start + timedelta(seconds=10)),
        energy=kw.pop("energy", energy([device_energy(uid=f"GPU-{index:04d}")])),
        inference=kw.pop("inference", inference()),
        compute=kw.pop("compute", compute()),
        warmup=kw.pop("warmup", warmup()),
        thermal=kw.pop("thermal", ThermalThrottleInfo()),
        **kw,
    )


def environment() -> EnvironmentSnapshot:
    return EnvironmentSnapshot(
        llenergymeasure_version="0.1.0",
        python_version="3.11.7",
        platform="Linux-x86_64",
        hostname="testhost",
        cpu_model="Test CPU",
        cpu_count=2,
        packages={"torch": "2.13.0"},
        devices=[DeviceInfo(index=0, kind="gpu", name="Fake GPU", uuid="GPU-0000")],
        driver_version="560.0",
    )


def experiment_result(**kw: Any) -> ExperimentResult:
    proc = kw.pop("process", process_result())
    normalised = NormalisedMetrics.from_metrics(
        proc.inference.output_tokens,
        proc.energy.total_energy_j,
        proc.energy.mean_power_w,
        proc.inference.inference_time_sec,
        proc.compute.flops.value,
        proc.compute.precision,
    )
    return ExperimentResult(
        experiment_id=kw.pop("experiment_id", proc.experiment_id),
        config=kw.pop("config", {"model": "builtin:tiny-llama", "batch_size": 4}),
        config_hash=proc.config_hash,
        environment=environment(),
        start_time=proc.start_time,
        end_time=proc.end_time,
        energy=proc.energy,
        inference=proc.inference,
        compute=proc.compute,
        normalised=normalised,
        thermal=proc.thermal,
        warmup=[proc.warmup] if proc.warmup else [],
        process_results=[proc],
        **kw,
    )


# ---- hypothesis strategies -------------------------------------------------------------------

finite = st.floats(min_value=0, max_value=1e15, allow_nan=False, allow_infinity=False)
small_finite = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def throttle_infos(draw: st.DrawFn) -> ThermalThrottleInfo:
    hw_power = draw(st.booleans())
    return ThermalThrottleInfo(
        sw_thermal=draw(st.booleans()),
        hw_thermal=draw(st.booleans()),
        hw_power=hw_power,
        power=hw_power or draw(st.booleans()),
        throttle_duration_sec=draw(small_finite),
        max_temperature_c=draw(st.none() | st.floats(min_value=-50, max_value=150)),
        throttle_timestamps=draw(st.lists(small_finite, max_size=8)),
    )


@st.composite
def device_energies(draw: st.DrawFn, uid: str) -> DeviceEnergy:
    baseline = draw(st.none() | small_finite)
    return device_energy(
        uid=uid,
        kind=draw(st.sampled_from(["gpu", "cpu", "ram"])),
        energy_j=draw(small_finite),
        baseline_power_w=baseline,
        method=draw(st.sampled_from(["nvml_energy_counter", "rapl", "estimate"])),
        confidence=draw(st.sampled_from(["high", "medium", "low"])),
    )


@st.composite
def experiment_results(draw: st.DrawFn) -> ExperimentResult:
    n_devices = draw(st.integers(1, 4))
    duration = draw(st.floats(min_value=0.001, max_value=1e5))
    devices = [draw(device_energies(uid=f"dev-{i}")) for i in range(n_devices)]
    ttft = draw(st.lists(small_finite, max_size=20))
    tokens = draw(st.integers(0, 10**7))
    proc = process_result(
        energy=EnergyMetrics.from_devices(devices, duration),
        inference=inference(output_tokens=tokens, time_sec=duration, ttft=ttft),
        compute=compute(flops=draw(st.floats(min_value=1, max_value=1e20)), output_tokens=1),
        thermal=draw(throttle_infos()),
        warnings=draw(st.lists(st.text(max_size=30), max_size=3)),
    )
    return experiment_result(process=proc)


# ---- studies: sweeps over batch size, cycles, throttling, warmup curves, telemetry -----------


def warmup_curve(
    n: int = 14, *, converged: bool = True, target_cv: float = 0.05, seed: str = "w"
) -> WarmupResult:
    """A warmup whose latencies settle (converged) or keep jumping (not converged)."""
    rng = random.Random(seed)
    if converged:
        latencies = [
            40.0 * (1 + 3.0 * math.exp(-i / 1.5)) + rng.uniform(-0.3, 0.3) for i in range(n)
        ]
    else:
        latencies = [40.0 * (1 + 0.5 * (i % 2)) + rng.uniform(-2, 2) for i in range(n)]
    result = WarmupResult(
        converged=False,
        final_cv=0.0,
        iterations_completed=n,
        target_cv=target_cv,
        max_prompts=max(n, 50),
        latencies_ms=latencies,
    )
    final = result.cv_curve()[-1]
    assert (final <= target_cv) == converged, f"warmup_curve({n}, converged={converged}): {final}"
    return result.model_copy(update={"converged": converged, "final_cv": final})


def throttled(
    duration_sec: float = 2.0, timestamps: list[float] | None = None
) -> ThermalThrottleInfo:
    """Hardware thermal slowdown for ``duration_sec`` at 87 C."""
    return ThermalThrottleInfo(
        hw_thermal=True,
        throttle_duration_sec=duration_sec,
        max_temperature_c=87.0,
        throttle_timestamps=timestamps or [4.0, 4.5, 5.0, 5.5],
    )


def config_hash_of(config: dict[str, Any]) -> str:
    """A stable hex hash of a config (the tests' stand-in for the real config hash)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def sweep_result(
    batch_size: int,
    cycle: int = 0,
    *,
    model: str = "tiny-llama",
    engine: str = "transformers",
    dtype: str = "fp16",
    thermal: ThermalThrottleInfo | None = None,
    warmup_converged: bool = True,
    timeseries_file: str | None = None,
    warnings: list[str] | None = None,
) -> ExperimentResult:
    """One cycle of one sweep point with plausible figures: bigger batches, fewer J per token.

    Figures vary a little by cycle (deterministically), so confidence intervals have width.
    """
    rng = random.Random(f"{model}-{engine}-{dtype}-{batch_size}-{cycle}")
    config = {"model": model, "engine": engine, "dtype": dtype, "batch_size": batch_size}
    chash = config_hash_of(config)
    duration = 10.0
    tps = 180.0 * batch_size**0.8 * (1 + rng.uniform(-0.05, 0.05))
    tokens = round(tps * duration)
    power = 120.0 + 25.0 * math.log2(batch_size) + rng.uniform(-4, 4)
    start = T0 + timedelta(minutes=batch_size * 10 + cycle)
    proc = process_result(
        experiment_id=f"{chash[:8]}-c{cycle}",
        config_hash=chash,
        start_time=start,
        end_time=start + timedelta(seconds=duration),
        energy=EnergyMetrics.from_devices(
            [
                device_energy(
                    uid="GPU-0000",
                    label="gpu:0",
                    energy_j=power * duration,
                    baseline_power_w=60.0,
                    name="Fake GPU",
                ),
                device_energy(
                    uid="host:package-0",
                    label="cpu:package-0",
                    kind="cpu",
                    energy_j=35.0 * duration,
                    baseline_power_w=20.0,
                    method="rapl",
                    confidence="medium",
                ),
            ],
            duration,
            baseline_method="measured",
        ),
        inference=inference(output_tokens=tokens, time_sec=duration),
        compute=compute(flops=2.2e9 * tokens, output_tokens=tokens),
        warmup=warmup_curve(converged=warmup_converged, seed=f"{chash}-{cycle}"),
        thermal=thermal or ThermalThrottleInfo(),
        warnings=warnings or [],
        timeseries_file=timeseries_file,
    )
    return experiment_result(
        process=proc, config={**config, "cycle": cycle}, warnings=list(proc.warnings)
    )


def telemetry_table(
    duration_sec: float = 10.0,
    period_sec: float = 0.1,
    devices: tuple[str, ...] = ("gpu:0",),
    throttle_windows: tuple[tuple[float, float], ...] = ((4.0, 6.0),),
    drop: tuple[str, ...] = (),
) -> Any:
    """A telemetry time series as a pyarrow table; throttle bits set inside the windows.

    Its columns are a subset of the writer's (``domain.timeseries``), named from the same place.
    """
    import pyarrow as pa

    rows: dict[str, list[Any]] = {
        k: []
        for k in (col.TIME_SEC, col.DEVICE, col.POWER_W, col.TEMPERATURE_C, col.CLOCK_EVENT_REASONS)
    }
    steps = round(duration_sec / period_sec)
    for d, device in enumerate(devices):
        for i in range(steps + 1):
            t = i * period_sec
            hot = any(lo <= t < hi for lo, hi in throttle_windows)
            rows[col.TIME_SEC].append(t)
            rows[col.DEVICE].append(device)
            rows[col.POWER_W].append(150.0 + 40.0 * math.sin(t) - (60.0 if hot else 0.0) + 5 * d)
            rows[col.TEMPERATURE_C].append(55.0 + 3.0 * t + (5.0 if hot else 0.0))
            rows[col.CLOCK_EVENT_REASONS].append(REASON_HW_THERMAL_SLOWDOWN if hot else 0)
    return pa.table({k: v for k, v in rows.items() if k not in drop})


def write_study(
    root: Path,
    batch_sizes: tuple[int, ...] = (1, 4, 16),
    cycles: int = 3,
    *,
    throttled_batch: int | None = 16,
    telemetry: bool = True,
) -> list[ExperimentResult]:
    """A study directory: one experiment directory per (batch size, cycle), telemetry beside it."""
    import pyarrow.parquet as pq

    written = []
    for batch in batch_sizes:
        for cycle in range(cycles):
            hot = batch == throttled_batch and cycle == 0
            result = sweep_result(
                batch,
                cycle,
                thermal=throttled() if hot else None,
                warmup_converged=not (batch == batch_sizes[0] and cycle == cycles - 1),
                timeseries_file="timeseries.parquet" if telemetry else None,
                warnings=["power limit reached during the window"] if hot else None,
            )
            directory = root / f"bs{batch}" / f"cycle_{cycle}" / result.experiment_id
            directory.mkdir(parents=True)
            save_result(result, directory / "result.json")
            if telemetry:
                windows = ((4.0, 6.0),) if hot else ()
                pq.write_table(
                    telemetry_table(throttle_windows=windows), directory / "timeseries.parquet"
                )
            written.append(result)
    return written
