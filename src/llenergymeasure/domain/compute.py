"""Compute figures: FLOPs with provenance, their prefill/decode split, precision, memory, MFU."""

from __future__ import annotations

import math
from collections.abc import Iterable

from pydantic import Field

from llenergymeasure.domain.base import DomainModel
from llenergymeasure.domain.metrics import FlopsResult, PrecisionMetadata, weakest_flops_method


class ComputeMetrics(DomainModel):
    """FLOPs of the measured generation and what the hardware achieved against its peak."""

    flops: FlopsResult
    flops_per_output_token: float = Field(ge=0)
    prefill_flops: float = Field(ge=0)
    decode_flops: float = Field(ge=0)
    precision: PrecisionMetadata
    peak_memory_mb: float | None = Field(default=None, ge=0, description="Peak device memory.")
    model_memory_mb: float | None = Field(default=None, ge=0, description="Weights in memory.")
    achieved_flops_per_sec: float | None = Field(default=None, ge=0)
    peak_flops_per_sec: float | None = Field(
        default=None, ge=0, description="Device's dense peak at the compute precision, if known."
    )
    peak_flops_source: str | None = Field(default=None, description="Where the peak comes from.")
    mfu: float | None = Field(
        default=None, ge=0, description="Model FLOPs utilisation: achieved / peak."
    )

    @classmethod
    def combine(
        cls, parts: Iterable[ComputeMetrics], wall_time_sec: float, output_tokens: int
    ) -> ComputeMetrics:
        """Several processes: FLOPs summed; rate over wall time; peak summed over devices."""
        parts = list(parts)
        if not parts:
            raise ValueError("nothing to combine")
        first = parts[0]
        total = math.fsum(p.flops.value for p in parts)
        notes = sorted({p.flops.notes for p in parts if p.flops.notes})
        flops = FlopsResult(
            value=total,
            method=weakest_flops_method(p.flops.method for p in parts),
            precision=first.flops.precision,
            notes="; ".join(notes) or None,
        )
        achieved = total / wall_time_sec if wall_time_sec > 0 else 0.0
        peaks = [p.peak_flops_per_sec for p in parts]
        peak = math.fsum(peaks) if all(p is not None for p in peaks) else None  # type: ignore[misc]
        memories = [p.peak_memory_mb for p in parts if p.peak_memory_mb is not None]
        return cls(
            flops=flops,
            flops_per_output_token=total / output_tokens if output_tokens > 0 else 0.0,
            prefill_flops=math.fsum(p.prefill_flops for p in parts),
            decode_flops=math.fsum(p.decode_flops for p in parts),
            precision=first.precision,
            peak_memory_mb=max(memories) if memories else None,
            model_memory_mb=first.model_memory_mb,
            achieved_flops_per_sec=achieved,
            peak_flops_per_sec=peak,
            peak_flops_source=first.peak_flops_source,
            mfu=achieved / peak if peak else None,
        )
