"""FLOPs and compute figures of the measured batches (after the window, never inside it)."""

from __future__ import annotations

from typing import Any

from llenergymeasure.domain.compute import ComputeMetrics
from llenergymeasure.domain.inference import InferenceMetrics
from llenergymeasure.domain.metrics import FlopsResult, PrecisionMetadata, weakest_flops_method
from llenergymeasure.engines.base import BatchOutput


def batch_shapes(outputs: list[BatchOutput]) -> dict[tuple[int, int, int], int]:
    """Distinct (batch size, prompt length, decode steps) shapes and how often each ran.

    This is the work the device actually did. A static (padded) batch computes every sequence
    over the padded prompt and every step, including the steps a finished sequence idles
    through; an engine without padding (continuous batching) computes each request over its
    own prompt and its own tokens, so each request is a shape of batch size 1.
    """
    shapes: dict[tuple[int, int, int], int] = {}
    for out in outputs:
        if out.padded:
            steps = max(len(out.step_times_sec), max(out.output_tokens, default=0))
            keys = [(len(out.requests), max(out.input_tokens, default=0), steps)]
        else:
            keys = [
                (1, r.input_tokens, r.output_tokens)
                for r in out.requests
                if r.output_tokens > 0 and r.input_tokens > 0
            ]
        for key in keys:
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
    from llenergymeasure.compute.flops import FlopsBreakdown, estimate_flops_breakdown
    from llenergymeasure.compute.metrics import build_compute_metrics

    prefill = decode = 0.0
    parts: list[FlopsResult] = []
    for (batch_size, input_len, steps), count in batch_shapes(outputs).items():
        part = estimate_flops_breakdown(
            model,
            batch_size=batch_size,
            input_tokens=input_len,
            output_tokens=steps,
            method=method,
            precision=precision.compute,
        )
        prefill += part.prefill_flops * count
        decode += part.decode_flops * count
        parts.append(part.result)
    weakest = weakest_flops_method(r.method for r in parts)
    notes = list(dict.fromkeys(r.notes for r in parts if r.notes))
    total = FlopsBreakdown(
        result=FlopsResult(
            value=prefill + decode,
            method=weakest,
            precision=parts[0].precision,  # every part was counted at precision.compute
            notes="; ".join(notes) or None,
        ),
        prefill_flops=prefill,
        decode_flops=decode,
    )
    compute = build_compute_metrics(
        total,
        precision,
        output_tokens=inference.output_tokens,
        wall_time_sec=inference.inference_time_sec,
        device_names=device_names,
        peak_memory_mb=peak_memory_mb,
        model_memory_mb=model_memory_mb,
    )
    warnings = []
    if device_names and compute.mfu is None:
        warnings.append(
            f"no dense peak FLOP/s known for {', '.join(device_names)} at "
            f"{precision.compute}; MFU not reported"
        )
    return compute, warnings
