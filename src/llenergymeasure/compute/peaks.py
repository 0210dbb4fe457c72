"""Dense peak FLOP/s of common GPUs at each compute precision, with sources, and MFU from them.

Every figure is the vendor datasheet's dense (no 2:4 sparsity) tensor-core rate at boost
clock; where the datasheet prints the with-sparsity figure, it is halved and the source says
so. fp32 means IEEE fp32 on CUDA cores (PyTorch's default matmul precision); tf32 is the
tensor-core rate used when fp32 matmuls are allowed to run as TF32. Integer rates are ops/s.
A GPU or precision missing from the table gives None: no MFU is better than a guessed one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_TERA = 1e12


@dataclass(frozen=True)
class GpuPeaks:
    """One GPU model: how NVML names it, its dense peaks in TFLOPS, and the datasheet."""

    name: str
    pattern: re.Pattern[str]
    tflops: dict[str, float]
    source: str


def _gpu(name: str, pattern: str, source: str, **tflops: float) -> GpuPeaks:
    return GpuPeaks(name, re.compile(pattern), dict(tflops), source)


_HALVED = "tensor figures printed with sparsity, halved for dense"

#: First match wins, so specific names come before the general ones they contain.
GPU_PEAKS: tuple[GpuPeaks, ...] = (
    _gpu(
        "H200 NVL",
        r"\bh200\b.*\bnvl\b",
        f"NVIDIA H200 Tensor Core GPU datasheet, H200 NVL ({_HALVED})",
        fp32=60,
        tf32=417.5,
        bf16=835.5,
        fp16=835.5,
        fp8=1670.5,
        int8=1670.5,
    ),
    _gpu(
        "H200 SXM",
        r"\bh200\b",
        f"NVIDIA H200 Tensor Core GPU datasheet, H200 SXM ({_HALVED})",
        fp32=67,
        tf32=494.5,
        bf16=989.5,
        fp16=989.5,
        fp8=1979,
        int8=1979,
    ),
    _gpu(
        "H100 NVL",
        r"\bh100\b.*\bnvl\b",
        f"NVIDIA H100 Tensor Core GPU datasheet, H100 NVL ({_HALVED})",
        fp32=60,
        tf32=417.5,
        bf16=835.5,
        fp16=835.5,
        fp8=1670.5,
        int8=1670.5,
    ),
    _gpu(
        "H100 PCIe",
        r"\bh100\b.*\bpcie\b",
        f"NVIDIA H100 Tensor Core GPU datasheet, H100 PCIe ({_HALVED})",
        fp32=51,
        tf32=378,
        bf16=756.5,
        fp16=756.5,
        fp8=1513,
        int8=1513,
    ),
    _gpu(
        "H100 SXM",
        r"\bh100\b",
        f"NVIDIA H100 Tensor Core GPU datasheet, H100 SXM ({_HALVED})",
        fp32=67,
        tf32=494.5,
        bf16=989.5,
        fp16=989.5,
        fp8=1979,
        int8=1979,
    ),
    _gpu(
        "A100",
        r"\ba100\b",
        "NVIDIA A100 Tensor Core GPU datasheet (dense figures; SXM4 and PCIe alike)",
        fp32=19.5,
        tf32=156,
        bf16=312,
        fp16=312,
        int8=624,
    ),
    _gpu(
        "L40S",
        r"\bl40s\b",
        f"NVIDIA L40S GPU datasheet ({_HALVED})",
        fp32=91.6,
        tf32=183,
        bf16=366.5,
        fp16=366.5,
        fp8=733,
        int8=733,
    ),
    _gpu(
        "L40",
        r"\bl40\b",
        "NVIDIA L40 GPU datasheet (dense figures)",
        fp32=90.5,
        tf32=90.5,
        bf16=181.05,
        fp16=181.05,
        fp8=362,
        int8=362,
    ),
    _gpu(
        "L4",
        r"\bl4\b",
        f"NVIDIA L4 Tensor Core GPU datasheet ({_HALVED})",
        fp32=30.3,
        tf32=60,
        bf16=121,
        fp16=121,
        fp8=242.5,
        int8=242.5,
    ),
    _gpu(
        "A40",
        r"\ba40\b",
        "NVIDIA A40 GPU datasheet (dense figures)",
        fp32=37.4,
        tf32=74.8,
        bf16=149.7,
        fp16=149.7,
        int8=299.3,
    ),
    _gpu(
        "A10",
        r"\ba10\b",
        "NVIDIA A10 Tensor Core GPU datasheet (dense figures)",
        fp32=31.2,
        tf32=62.5,
        bf16=125,
        fp16=125,
        int8=250,
    ),
    _gpu(
        "GeForce RTX 4090",
        r"\brtx 4090$",
        "NVIDIA Ada Lovelace GPU architecture whitepaper, RTX 4090 (dense; fp16/bf16/fp8 "
        "with fp32 accumulate)",
        fp32=82.6,
        tf32=82.6,
        bf16=165.2,
        fp16=165.2,
        fp8=330.3,
        int8=660.6,
    ),
    _gpu(
        "V100S PCIe",
        r"\bv100s\b",
        "NVIDIA V100 Tensor Core GPU datasheet, V100S PCIe (fp16 = tensor performance)",
        fp32=16.4,
        fp16=130,
    ),
    _gpu(
        "V100 PCIe",
        r"\bv100\b.*\bpcie\b",
        "NVIDIA V100 Tensor Core GPU datasheet, V100 PCIe (fp16 = tensor performance)",
        fp32=14,
        fp16=112,
    ),
    _gpu(
        "V100 SXM2",
        r"\bv100\b.*\bsxm2\b",
        "NVIDIA V100 Tensor Core GPU datasheet, V100 SXM2 (fp16 = tensor performance)",
        fp32=15.7,
        fp16=125,
    ),
    _gpu(
        "T4",
        r"\bt4\b",
        "NVIDIA T4 Tensor Core GPU datasheet (fp16 = mixed-precision tensor performance)",
        fp32=8.1,
        fp16=65,
        int8=130,
    ),
)

#: Names deliberately left out: NVIDIA publishes no datasheet for them.
UNPUBLISHED = re.compile(r"\ba10g\b")


def normalise_device_name(device_name: str) -> str:
    """Lower case, '-' and '_' as spaces: 'NVIDIA A100-SXM4-80GB' -> 'nvidia a100 sxm4 80gb'."""
    return " ".join(re.sub(r"[-_]", " ", device_name.lower()).split())


def find_gpu(device_name: str) -> GpuPeaks | None:
    """The table entry for a device name as NVML reports it, or None."""
    name = normalise_device_name(device_name)
    if UNPUBLISHED.search(name):
        return None
    return next((gpu for gpu in GPU_PEAKS if gpu.pattern.search(name)), None)


def peak_flops_per_sec(device_name: str, compute_precision: str) -> tuple[float, str] | None:
    """(dense peak FLOP/s at this compute precision, its source), or None when not known."""
    gpu = find_gpu(device_name)
    if gpu is None or compute_precision not in gpu.tflops:
        return None
    return gpu.tflops[compute_precision] * _TERA, f"{gpu.name}: {gpu.source}"


@dataclass(frozen=True)
class Utilisation:
    """Achieved FLOP/s and, where the devices' peak is known, the model FLOPs utilisation."""

    achieved_flops_per_sec: float
    peak_flops_per_sec: float | None
    peak_flops_source: str | None
    mfu: float | None


def utilisation(
    total_flops: float,
    wall_time_sec: float,
    device_names: Sequence[str],
    compute_precision: str,
) -> Utilisation:
    """MFU of ``total_flops`` done in ``wall_time_sec`` on these devices (peaks summed).

    Unknown when any device (or the precision on it) is missing from the table.
    """
    if total_flops < 0 or wall_time_sec < 0:
        raise ValueError(f"FLOPs and time must be >= 0, got {total_flops} and {wall_time_sec}")
    achieved = total_flops / wall_time_sec if wall_time_sec > 0 else 0.0
    peaks = [peak_flops_per_sec(name, compute_precision) for name in device_names]
    if not peaks or any(p is None for p in peaks):
        return Utilisation(achieved, None, None, None)
    total_peak = sum(p[0] for p in peaks if p is not None)
    sources = "; ".join(dict.fromkeys(p[1] for p in peaks if p is not None))
    if len(device_names) > 1:
        sources = f"{len(device_names)} devices: {sources}"
    return Utilisation(achieved, total_peak, sources, achieved / total_peak)
