"""Inference figures: token counts, throughput, and latency statistics with their raw samples."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import Field

from llenergymeasure.domain.base import DomainModel
from llenergymeasure.domain.metrics import Confidence, lowest_confidence
from llenergymeasure.domain.stats import mean, percentile


class LatencyStats(DomainModel):
    """Summary of latency samples; the samples are kept so processes can be pooled exactly."""

    n: int = Field(ge=0)
    mean_ms: float = Field(ge=0)
    p50_ms: float = Field(ge=0)
    p90_ms: float = Field(ge=0)
    p95_ms: float = Field(ge=0)
    p99_ms: float = Field(ge=0)
    min_ms: float = Field(ge=0)
    max_ms: float = Field(ge=0)
    samples_ms: list[float] = Field(default_factory=list)

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float]) -> LatencyStats:
        """Statistics of the samples (all zero for none)."""
        samples = [float(s) for s in samples_ms]
        if any(s < 0 for s in samples):
            raise ValueError("latency samples must be >= 0")
        return cls(
            n=len(samples),
            mean_ms=mean(samples),
            p50_ms=percentile(samples, 50),
            p90_ms=percentile(samples, 90),
            p95_ms=percentile(samples, 95),
            p99_ms=percentile(samples, 99),
            min_ms=min(samples, default=0.0),
            max_ms=max(samples, default=0.0),
            samples_ms=samples,
        )

    @classmethod
    def pool(cls, parts: Iterable[LatencyStats]) -> LatencyStats:
        """Statistics of all parts' samples together (never an average of percentiles)."""
        return cls.from_samples([s for p in parts for s in p.samples_ms])


class InferenceMetrics(DomainModel):
    """What was generated over the measurement window, how fast, and with what latency."""

    num_requests: int = Field(ge=0, description="Prompts processed in the window.")
    input_tokens: int = Field(ge=0, description="Prompt tokens, padding excluded.")
    output_tokens: int = Field(
        ge=0, description="Generated tokens up to and including EOS; never padding."
    )
    inference_time_sec: float = Field(ge=0, description="Wall time of the measurement window.")
    tokens_per_second: float = Field(ge=0, description="output_tokens / inference_time_sec")
    ttft: LatencyStats = Field(description="Time to first token, per request.")
    itl: LatencyStats = Field(
        description="Inter-token latency, per generated token after the first."
    )
    request_latency: LatencyStats = Field(description="End-to-end latency, per request.")
    latency_method: str = Field(
        default="decode_step_timestamps",
        description="How token times were taken, e.g. a timestamp at every decode step.",
    )
    latency_confidence: Confidence = "high"

    @classmethod
    def build(
        cls,
        *,
        num_requests: int,
        input_tokens: int,
        output_tokens: int,
        inference_time_sec: float,
        ttft_ms: Sequence[float],
        itl_ms: Sequence[float],
        request_latency_ms: Sequence[float],
        latency_method: str = "decode_step_timestamps",
        latency_confidence: Confidence = "high",
    ) -> InferenceMetrics:
        """Build from counts and raw latency samples; throughput follows from them."""
        return cls(
            num_requests=num_requests,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            inference_time_sec=inference_time_sec,
            tokens_per_second=output_tokens / inference_time_sec if inference_time_sec > 0 else 0.0,
            ttft=LatencyStats.from_samples(ttft_ms),
            itl=LatencyStats.from_samples(itl_ms),
            request_latency=LatencyStats.from_samples(request_latency_ms),
            latency_method=latency_method,
            latency_confidence=latency_confidence,
        )

    @classmethod
    def combine(cls, parts: Iterable[InferenceMetrics], wall_time_sec: float) -> InferenceMetrics:
        """Several processes: counts summed, throughput over wall time, latencies pooled."""
        parts = list(parts)
        if not parts:
            raise ValueError("nothing to combine")
        methods = list(dict.fromkeys(p.latency_method for p in parts))
        return cls(
            num_requests=sum(p.num_requests for p in parts),
            input_tokens=sum(p.input_tokens for p in parts),
            output_tokens=sum(p.output_tokens for p in parts),
            inference_time_sec=wall_time_sec,
            tokens_per_second=(
                sum(p.output_tokens for p in parts) / wall_time_sec if wall_time_sec > 0 else 0.0
            ),
            ttft=LatencyStats.pool(p.ttft for p in parts),
            itl=LatencyStats.pool(p.itl for p in parts),
            request_latency=LatencyStats.pool(p.request_latency for p in parts),
            latency_method="+".join(methods),
            latency_confidence=lowest_confidence(*(p.latency_confidence for p in parts)),
        )
