"""FLOPs and compute figures of the measured batches (after the window, never inside it)."""

from __future__ import annotations

import math
from typing import Any

from llenergymeasure.domain.compute import ComputeMetrics
from llenergymeasure.domain.inference import InferenceMetrics
from llenergymeasure.domain.metrics import FlopsResult, PrecisionMetadata
from llenergymeasure.engines.base import BatchOutput


def batch_shapes(outputs: list[BatchOutput]) -> dict[tuple[int, int, int], int]:
    """Distinct (batch size, padded prompt length, decode steps) shapes and how often each ran.

    This is the work the device actually did: padded positions and the steps a finished
    sequence idles through (emitting padding) are computed like any other.
    """
    shapes: dict[tuple[int, int, int], int] = {}
    for out in outputs:
        steps = max(len(out.step_times_sec), max(out.output_tokens, default=0))
        key = (len(out.input_tokens), max(out.input_tokens, default=0), steps)
        shapes[key] = shapes.get(key, 0) + 1
    return shapes


def compute_metrics(
    model: Any,
    outputs: list[BatchOutput],
    method: str,
    precision: PrecisionMetadata,
    inference: InferenceMetrics,
    peak_memory_mb: float | None,
    model_memory_mb: float | None,
    device_names: list[str],
) -> tuple[ComputeMetrics, list[str]]:
    """FLOPs over every measured batch (one estimate per distinct shape), rate and MFU."""
    from llenergymeasure.compute.flops import estimate_flops_breakdown
    from llenergymeasure.compute.peaks import peak_flops_per_sec

    warnings: list[str] = []
    prefill = decode = 0.0
    results: list[FlopsResult] = []
    for (batch_size, input_len, steps), count in batch_shapes(outputs).items():
        breakdown = estimate_flops_breakdown(
            model,
            batch_size=batch_size,
            input_tokens=input_len,
            output_tokens=steps,
            method=method,
            precision=precision.compute,
        )
        prefill += breakdown.prefill_flops * count
        decode += breakdown.decode_flops * count
        results.append(breakdown.result)
    total = prefill + decode
    weakest = min(results, key=lambda r: ["low", "medium", "high"].index(r.confidence))
    notes = sorted({r.notes for r in results if r.notes})
    flops = FlopsResult(
        value=total,
        method=weakest.method,
        precision=precision.compute,
        notes="; ".join(notes) or None,
    )
    window = inference.inference_time_sec
    achieved = total / window if window > 0 else 0.0
    peak, source = None, None
    if device_names:
        peaks = [peak_flops_per_sec(name, precision.compute) for name in device_names]
        if all(p is not None for p in peaks):
            peak = math.fsum(p[0] for p in peaks)  # type: ignore[index]
            source = "; ".join(sorted({p[1] for p in peaks}))  # type: ignore[index]
        else:
            warnings.append(
                f"no dense peak FLOP/s known for {', '.join(device_names)} at "
                f"{precision.compute}; MFU not reported"
            )
    compute = ComputeMetrics(
        flops=flops,
        flops_per_output_token=total / inference.output_tokens if inference.output_tokens else 0.0,
        prefill_flops=prefill,
        decode_flops=decode,
        precision=precision,
        peak_memory_mb=peak_memory_mb,
        model_memory_mb=model_memory_mb,
        achieved_flops_per_sec=achieved,
        peak_flops_per_sec=peak,
        peak_flops_source=source,
        mfu=achieved / peak if peak else None,
    )
    return compute, warnings
