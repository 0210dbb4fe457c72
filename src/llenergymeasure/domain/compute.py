"""Compute figures: FLOPs with provenance, their prefill/decode split, precision, memory, MFU."""

from __future__ import annotations

import math
from collections.abc import Iterable

from pydantic import Field

from llenergymeasure.domain.base import DomainModel
from llenergymeasure.domain.metrics import FlopsResult, PrecisionMetadata, weakest_flops_method


class ComputeMetrics(DomainModel):
    """FLOPs of the measured generation and what the hardware achieved against its peak.

    Two counts: ``flops`` is what the device executed (padded prompt positions, and the decode
    steps a finished sequence idles through until its batch ends, included); ``useful_flops``
    is the work for the tokens kept (each prompt unpadded, each sequence's decode up to the
    tokens it kept). MFU is from the useful count, so padding never reads as utilisation.
    """

    flops: FlopsResult = Field(
        description="Executed FLOPs: what the device computed, padding and post-EOS steps included."
    )
    useful_flops: FlopsResult | None = Field(
        default=None,
        description="FLOPs for the tokens kept (unpadded prompts, decode up to each sequence's "
        "last kept token); None in files written before schema 1.3.",
    )
    flops_per_output_token: float = Field(ge=0, description="Executed FLOPs per output token.")
    prefill_flops: float = Field(ge=0)
    decode_flops: float = Field(ge=0)
    precision: PrecisionMetadata
    peak_memory_mb: float | None = Field(default=None, ge=0, description="Peak device memory.")
    model_memory_mb: float | None = Field(default=None, ge=0, description="Weights in memory.")
    achieved_flops_per_sec: float | None = Field(
        default=None, ge=0, description="Executed FLOPs / window."
    )
    useful_flops_per_sec: float | None = Field(
        default=None, ge=0, description="Useful FLOPs / window (the rate MFU is computed from)."
    )
    peak_flops_per_sec: float | None = Field(
        default=None, ge=0, description="Device's dense peak at the compute precision, if known."
    )
    peak_flops_source: str | None = Field(default=None, description="Where the peak comes from.")
    mfu: float | None = Field(
        default=None,
        ge=0,
        description="Model FLOPs utilisation: useful FLOPs per second / peak (before schema "
        "1.3: executed FLOPs per second / peak).",
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
        usefuls = [p.useful_flops for p in parts]
        useful = None
        if all(u is not None for u in usefuls):
            useful_notes = sorted({u.notes for u in usefuls if u is not None and u.notes})
            useful = FlopsResult(
                value=math.fsum(u.value for u in usefuls if u is not None),
                method=weakest_flops_method(u.method for u in usefuls if u is not None),
                precision=first.flops.precision,
                notes="; ".join(useful_notes) or None,
            )
        useful_rate = (
            useful.value / wall_time_sec if useful is not None and wall_time_sec > 0 else None
        )
        peaks = [p.peak_flops_per_sec for p in parts]
        peak = math.fsum(peaks) if all(p is not None for p in peaks) else None  # type: ignore[misc]
        memories = [p.peak_memory_mb for p in parts if p.peak_memory_mb is not None]
        return cls(
            flops=flops,
            useful_flops=useful,
            flops_per_output_token=total / output_tokens if output_tokens > 0 else 0.0,
            prefill_flops=math.fsum(p.prefill_flops for p in parts),
            decode_flops=math.fsum(p.decode_flops for p in parts),
            precision=first.precision,
            peak_memory_mb=max(memories) if memories else None,
            model_memory_mb=first.model_memory_mb,
            achieved_flops_per_sec=achieved,
            useful_flops_per_sec=useful_rate,
            peak_flops_per_sec=peak,
            peak_flops_source=first.peak_flops_source,
            mfu=useful_rate / peak if peak and useful_rate is not None else None,
        )
