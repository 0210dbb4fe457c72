"""Builders of valid result objects (and hypothesis strategies for them) shared by the tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
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
    NormalisedMetrics,
    PrecisionMetadata,
    RawProcessResult,
    ThermalThrottleInfo,
    WarmupResult,
)

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
    return InferenceMetrics.build(
        num_requests=8,
        input_tokens=256,
        output_tokens=output_tokens,
        inference_time_sec=time_sec,
        ttft_ms=ttft if ttft is not None else [10.0, 12.0, 11.0, 15.0],
        itl_ms=[2.0, 2.5, 3.0],
        request_latency_ms=[100.0, 110.0],
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
