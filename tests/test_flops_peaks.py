"""The dense peak table, device-name matching, MFU, and the ComputeMetrics builder."""

from __future__ import annotations

from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llenergymeasure.compute.flops import FlopsBreakdown
from llenergymeasure.compute.metrics import build_compute_metrics
from llenergymeasure.compute.peaks import GPU_PEAKS, find_gpu, peak_flops_per_sec, utilisation
from llenergymeasure.domain.compute import ComputeMetrics
from llenergymeasure.domain.metrics import ComputePrecision, FlopsResult, PrecisionMetadata

# Device names as NVML reports them -> (table entry, bf16 or fp16 dense TFLOPS).
NVML_NAMES = [
    ("NVIDIA H100 80GB HBM3", "H100 SXM", "bf16", 989.5),
    ("NVIDIA H100 PCIe", "H100 PCIe", "bf16", 756.5),
    ("NVIDIA H100 NVL", "H100 NVL", "bf16", 835.5),
    ("NVIDIA H200", "H200 SXM", "bf16", 989.5),
    ("NVIDIA H200 NVL", "H200 NVL", "fp8", 1670.5),
    ("NVIDIA A100-SXM4-80GB", "A100", "bf16", 312),
    ("NVIDIA A100-PCIE-40GB", "A100", "fp16", 312),
    ("NVIDIA A100 80GB PCIe", "A100", "tf32", 156),
    ("NVIDIA L4", "L4", "bf16", 121),
    ("NVIDIA L40S", "L40S", "bf16", 366.5),
    ("NVIDIA L40", "L40", "fp16", 181.05),
    ("NVIDIA A10", "A10", "bf16", 125),
    ("NVIDIA A40", "A40", "bf16", 149.7),
    ("NVIDIA GeForce RTX 4090", "GeForce RTX 4090", "bf16", 165.2),
    ("Tesla V100-SXM2-16GB", "V100 SXM2", "fp16", 125),
    ("Tesla V100-PCIE-32GB", "V100 PCIe", "fp16", 112),
    ("Tesla V100S-PCIE-32GB", "V100S PCIe", "fp16", 130),
    ("Tesla T4", "T4", "fp16", 65),
]


@pytest.mark.parametrize("device,entry,precision,tflops", NVML_NAMES)
def test_nvml_names_find_their_datasheet_peak(
    device: str, entry: str, precision: str, tflops: float
) -> None:
    gpu = find_gpu(device)
    assert gpu is not None and gpu.name == entry
    peak = peak_flops_per_sec(device, precision)
    assert peak is not None
    assert peak[0] == pytest.approx(tflops * 1e12)
    assert peak[1].startswith(f"{entry}: NVIDIA")
    assert "datasheet" in peak[1] or "whitepaper" in peak[1]


@pytest.mark.parametrize(
    "device",
    [
        "NVIDIA A10G",  # no public NVIDIA datasheet: left out rather than guessed
        "NVIDIA GeForce RTX 4090 D",
        "NVIDIA GeForce RTX 4090 Laptop GPU",
        "NVIDIA GH200 480GB",
        "NVIDIA T400",
        "Tesla V100-SXM3-32GB",
        "AMD Instinct MI300X",
        "",
    ],
)
def test_unknown_devices_have_no_peak(device: str) -> None:
    assert peak_flops_per_sec(device, "bf16") is None


def test_precisions_a_gpu_lacks_have_no_peak() -> None:
    assert peak_flops_per_sec("Tesla V100-SXM2-16GB", "bf16") is None  # no bf16 tensor cores
    assert peak_flops_per_sec("NVIDIA A100-SXM4-80GB", "fp8") is None  # no fp8 tensor cores
    assert peak_flops_per_sec("NVIDIA H100 80GB HBM3", "int4") is None


@pytest.mark.parametrize("gpu", GPU_PEAKS, ids=lambda g: g.name)
def test_table_entries_are_consistent(gpu) -> None:  # type: ignore[no-untyped-def]
    """Guards against typos: tensor rates above fp32; bf16 = fp16; fp8 and int8 = 2 x 16-bit."""
    assert set(gpu.tflops) <= set(get_args(ComputePrecision))
    assert gpu.source
    sixteen = gpu.tflops["fp16"]
    assert sixteen > gpu.tflops["fp32"]
    if "bf16" in gpu.tflops:
        assert gpu.tflops["bf16"] == sixteen
    if "tf32" in gpu.tflops:
        assert gpu.tflops["fp32"] <= gpu.tflops["tf32"] <= sixteen
    if "fp8" in gpu.tflops:
        assert gpu.tflops["fp8"] == pytest.approx(2 * sixteen, rel=0.005)  # datasheet rounding
    if "int8" in gpu.tflops:
        assert gpu.tflops["int8"] >= 2 * sixteen * 0.995


@given(
    flops=st.floats(0, 1e18, allow_nan=False),
    seconds=st.floats(1e-3, 1e4, allow_nan=False),
    devices=st.integers(1, 8),
)
def test_mfu_is_achieved_over_summed_peak(flops: float, seconds: float, devices: int) -> None:
    rate = utilisation(flops, seconds, ["NVIDIA H100 80GB HBM3"] * devices, "bf16")
    assert rate.achieved_flops_per_sec == pytest.approx(flops / seconds)
    assert rate.peak_flops_per_sec == pytest.approx(devices * 989.5e12)
    assert rate.mfu == pytest.approx(flops / seconds / (devices * 989.5e12))


def test_mfu_unknown_when_any_device_is_unknown() -> None:
    rate = utilisation(1e15, 2.0, ["NVIDIA H100 80GB HBM3", "NVIDIA A10G"], "bf16")
    assert rate.achieved_flops_per_sec == 5e14
    assert (rate.peak_flops_per_sec, rate.peak_flops_source, rate.mfu) == (None, None, None)
    assert utilisation(1e15, 2.0, [], "bf16").mfu is None


def test_build_compute_metrics_fills_every_figure() -> None:
    result = FlopsResult(value=4e12, method="architecture", precision="bf16")
    split = FlopsBreakdown(result=result, prefill_flops=1e12, decode_flops=3e12)
    metrics = build_compute_metrics(
        split,
        PrecisionMetadata(compute="bf16"),
        output_tokens=1000,
        wall_time_sec=2.0,
        device_names=["NVIDIA A100-SXM4-80GB"],
        peak_memory_mb=1234.0,
    )
    assert metrics.flops_per_output_token == 4e9
    assert (metrics.prefill_flops, metrics.decode_flops) == (1e12, 3e12)
    assert metrics.achieved_flops_per_sec == 2e12
    assert metrics.peak_flops_per_sec == 312e12
    assert metrics.mfu == pytest.approx(2e12 / 312e12)
    assert "A100" in metrics.peak_flops_source
    assert ComputeMetrics.model_validate_json(metrics.model_dump_json()) == metrics
