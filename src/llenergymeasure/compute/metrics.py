"""ComputeMetrics of one measured generation: FLOPs split, precision, achieved rate and MFU."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from llenergymeasure.compute.peaks import utilisation
from llenergymeasure.domain.compute import ComputeMetrics
from llenergymeasure.domain.metrics import FlopsResult, PrecisionMetadata

if TYPE_CHECKING:
    from llenergymeasure.compute.flops import FlopsBreakdown


def build_compute_metrics(
    breakdown: FlopsBreakdown,
    precision: PrecisionMetadata,
    *,
    output_tokens: int,
    wall_time_sec: float,
    device_names: Sequence[str],
    peak_memory_mb: float | None = None,
    model_memory_mb: float | None = None,
    useful: FlopsResult | None = None,
) -> ComputeMetrics:
    """ComputeMetrics: FLOPs per output token, achieved FLOP/s, MFU where the peak is known.

    ``breakdown`` is the executed work; ``useful`` the work for the tokens kept. MFU is the
    useful rate over the peak (the executed rate when no useful count is given). The peak is
    looked up at the FLOPs result's compute precision for every device (summed); MFU stays
    None when any device is missing from the peak table.
    """
    total = breakdown.result.value
    precision_name = breakdown.result.precision
    executed = utilisation(total, wall_time_sec, device_names, precision_name)
    basis = useful.value if useful is not None else total
    rate = utilisation(basis, wall_time_sec, device_names, precision_name)
    return ComputeMetrics(
        flops=breakdown.result,
        useful_flops=useful,
        flops_per_output_token=total / output_tokens if output_tokens > 0 else 0.0,
        prefill_flops=breakdown.prefill_flops,
        decode_flops=breakdown.decode_flops,
        precision=precision,
        peak_memory_mb=peak_memory_mb,
        model_memory_mb=model_memory_mb,
        achieved_flops_per_sec=executed.achieved_flops_per_sec,
        useful_flops_per_sec=rate.achieved_flops_per_sec if useful is not None else None,
        peak_flops_per_sec=rate.peak_flops_per_sec,
        peak_flops_source=rate.peak_flops_source,
        mfu=rate.mfu,
    )
