"""Executed and useful FLOPs (issue 11, item 15): padding and the steps after EOS are work the
device did, not work for the tokens kept; MFU is from the useful FLOPs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llenergymeasure.compute.flops import FlopsBreakdown, estimate_flops
from llenergymeasure.compute.metrics import build_compute_metrics
from llenergymeasure.domain.compute import ComputeMetrics
from llenergymeasure.domain.metrics import FlopsResult, PrecisionMetadata
from llenergymeasure.engines.base import BatchOutput, static_batch_traces
from llenergymeasure.measure.flops import batch_shapes, compute_metrics, kept_shapes
from tests import factories as f

H100 = "NVIDIA H100 80GB HBM3"


def _config():  # type: ignore[no-untyped-def]
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=1000,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
    )


def _batch(prompts: list[int], kept: list[int], steps: int) -> BatchOutput:
    """A padded static batch: every request shares the batch's step times."""
    times = [0.01 * (i + 1) for i in range(steps)]
    traces = static_batch_traces(
        prompts, kept, [n < steps for n in kept], start_sec=0.0, step_times_sec=times
    )
    return BatchOutput(traces, 0.0, times[-1], times, padded=True)


def test_kept_shapes_drop_padding_and_steps_after_eos() -> None:
    # prompts of 5 and 3 tokens (padded to 5); the second stopped at EOS after 2 of 8 steps
    out = _batch([5, 3], [8, 2], steps=8)
    assert batch_shapes([out]) == {(2, 5, 8): 1}  # executed: 2 x (5 + 8 steps)
    assert kept_shapes([out]) == {(5, 8): 1, (3, 2): 1}  # useful: each sequence as it was


def test_useful_flops_are_the_kept_tokens_and_mfu_uses_them() -> None:
    config = _config()
    outputs = [_batch([5, 3], [8, 2], steps=8), _batch([4, 4], [8, 8], steps=8)]
    inference = f.inference(output_tokens=26, time_sec=0.5)
    compute, _ = compute_metrics(
        config, outputs, "architecture", PrecisionMetadata(compute="bf16"), inference,
        None, None, device_names=[H100],
    )  # fmt: skip

    def flops(batch: int, prompt: int, new: int) -> float:
        return estimate_flops(
            config, batch_size=batch, input_tokens=prompt, output_tokens=new, method="architecture"
        ).value

    executed = flops(2, 5, 8) + flops(2, 4, 8)
    useful = flops(1, 5, 8) + flops(1, 3, 2) + flops(2, 4, 8)
    assert compute.flops.value == pytest.approx(executed)
    assert compute.useful_flops is not None
    assert compute.useful_flops.value == pytest.approx(useful) and useful < executed
    assert compute.useful_flops.method == "architecture"
    assert compute.achieved_flops_per_sec == pytest.approx(executed / 0.5)
    assert compute.useful_flops_per_sec == pytest.approx(useful / 0.5)
    assert compute.mfu == pytest.approx(useful / 0.5 / 989.5e12)


def test_without_padding_or_eos_useful_equals_executed() -> None:
    config = _config()
    outputs = [_batch([6, 6, 6], [4, 4, 4], steps=4)]
    compute, _ = compute_metrics(
        config, outputs, "architecture", PrecisionMetadata(compute="fp32"), f.inference(12, 1.0),
        None, None, device_names=[],
    )  # fmt: skip
    assert compute.useful_flops is not None
    assert compute.useful_flops.value == pytest.approx(compute.flops.value)
    assert compute.mfu is None  # no known device, no MFU


def test_build_compute_metrics_mfu_from_useful() -> None:
    executed = FlopsResult(value=4e12, method="architecture", precision="bf16")
    useful = FlopsResult(value=3e12, method="architecture", precision="bf16")
    metrics = build_compute_metrics(
        FlopsBreakdown(result=executed, prefill_flops=1e12, decode_flops=3e12),
        PrecisionMetadata(compute="bf16"),
        output_tokens=1000,
        wall_time_sec=2.0,
        device_names=[H100],
        useful=useful,
    )
    assert metrics.achieved_flops_per_sec == 2e12 and metrics.useful_flops_per_sec == 1.5e12
    assert metrics.mfu == pytest.approx(1.5e12 / 989.5e12)
    assert ComputeMetrics.model_validate_json(metrics.model_dump_json()) == metrics


@given(st.lists(st.floats(1e6, 1e15), min_size=1, max_size=4), st.floats(0.1, 100.0))
def test_combined_processes_sum_useful_flops(usefuls: list[float], seconds: float) -> None:
    parts = [
        f.compute(flops=2 * u).model_copy(
            update={"useful_flops": FlopsResult(value=u, method="architecture", precision="fp16")}
        )
        for u in usefuls
    ]
    combined = ComputeMetrics.combine(parts, seconds, output_tokens=100)
    assert combined.useful_flops is not None
    assert combined.useful_flops.value == pytest.approx(sum(usefuls))
    assert combined.useful_flops_per_sec == pytest.approx(sum(usefuls) / seconds)
    assert combined.flops.value == pytest.approx(2 * sum(usefuls))


def test_old_compute_metrics_load_without_useful_flops() -> None:
    data = f.compute().model_dump()
    data.pop("useful_flops")
    data.pop("useful_flops_per_sec")
    loaded = ComputeMetrics.model_validate(data)
    assert loaded.useful_flops is None and loaded.useful_flops_per_sec is None
