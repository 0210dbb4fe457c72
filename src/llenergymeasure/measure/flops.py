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


def kept_shapes(outputs: list[BatchOutput]) -> dict[tuple[int, int], int]:
    """Distinct (unpadded prompt length, tokens kept) of the sequences, and how many of each.

    The useful work: each prompt without its padding, and decode up to the sequence's last
    kept token (its EOS when it stopped early); a sequence that kept nothing adds nothing.
    """
    shapes: dict[tuple[int, int], int] = {}
    for out in outputs:
        for prompt, kept in zip(out.input_tokens, out.output_tokens, strict=True):
            if prompt > 0 and kept > 0:
                shapes[(prompt, kept)] = shapes.get((prompt, kept), 0) + 1
    return shapes


def _useful_flops(
    model: Any, outputs: list[BatchOutput], method: str, precision: str
) -> FlopsResult | None:
    """FLOPs for the tokens kept, counted like the executed FLOPs.

    One exception: when calflops counted the executed FLOPs, the useful ones come from the
    architecture formula where it covers the model (calflops would run one generation per
    distinct prompt length, minutes on a busy CPU; the formula matches the counter exactly on
    the supported families and the executed count is cross-checked against it). The result's
    ``method`` says which was used.
    """
    from llenergymeasure.compute.flops import estimate_flops

    def count(chosen: str) -> list[FlopsResult]:
        return [
            estimate_flops(
                model,
                batch_size=n,
                input_tokens=prompt,
                output_tokens=kept,
                method=chosen,
                precision=precision,
            )
            for (prompt, kept), n in sorted(kept_shapes(outputs).items())
        ]

    parts = count("architecture") if method == "calflops" else count(method)
    if method == "calflops" and any(r.method != "architecture" for r in parts):
        parts = count("calflops")
    if not parts:
        return None
    notes = list(dict.fromkeys(r.notes for r in parts if r.notes))
    if method == "calflops" and parts[0].method == "architecture":
        notes.insert(0, "useful FLOPs by the architecture formula (executed: calflops)")
    return FlopsResult(
        value=sum(r.value for r in parts),
        method=weakest_flops_method(r.method for r in parts),
        precision=parts[0].precision,
        notes="; ".join(notes) or None,
    )


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
    """Executed FLOPs over every measured batch (one estimate per distinct shape), the useful
    FLOPs of the tokens kept, rates, and MFU (from the useful FLOPs)."""
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
    # The useful count uses the method the executed count ended with (see _useful_flops).
    useful = _useful_flops(model, outputs, weakest, precision.compute)
    compute = build_compute_metrics(
        total,
        precision,
        useful=useful,
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
