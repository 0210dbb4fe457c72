"""Inference figures: token counts, throughput, and latency statistics with their raw samples.

Every latency figure is computed from per-request traces (``domain.requests``); percentiles are
over requests (TTFT, TPOT, E2E) or over tokens (ITL), and each figure says how it was obtained.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import Field

from llenergymeasure.domain.base import DomainModel
from llenergymeasure.domain.metrics import Confidence, lowest_confidence
from llenergymeasure.domain.requests import (
    ArrivalModel,
    LatencyMethod,
    RequestTrace,
    itl_method,
    timing_method,
)
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
    method: LatencyMethod = Field(
        default="token_timestamps",
        description="token_timestamps (every token's time), first_last_token (only the first "
        "and last token's time) or not_reported.",
    )

    @classmethod
    def from_samples(
        cls, samples_ms: Sequence[float], method: LatencyMethod = "token_timestamps"
    ) -> LatencyStats:
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
            method=method if samples else "not_reported",
        )

    @classmethod
    def pool(cls, parts: Iterable[LatencyStats]) -> LatencyStats:
        """Statistics of all parts' samples together (never an average of percentiles)."""
        parts = list(parts)
        methods = {p.method for p in parts if p.n > 0}
        method: LatencyMethod = (
            methods.pop()
            if len(methods) == 1
            else "first_last_token"
            if methods
            else "not_reported"
        )
        return cls.from_samples([s for p in parts for s in p.samples_ms], method)


class InferenceMetrics(DomainModel):
    """What was generated over the measurement window, how fast, and with what latency."""

    num_requests: int = Field(ge=0, description="Prompts processed in the window.")
    input_tokens: int = Field(ge=0, description="Prompt tokens, padding excluded.")
    output_tokens: int = Field(
        ge=0, description="Generated tokens up to and including EOS; never padding."
    )
    inference_time_sec: float = Field(ge=0, description="Wall time of the measurement window.")
    tokens_per_second: float = Field(ge=0, description="output_tokens / inference_time_sec")
    arrival_model: ArrivalModel = Field(
        description="closed: a batch arrives when the previous one finished; all_at_once: "
        "every request arrives at the start of the window."
    )
    ttft: LatencyStats = Field(
        description="Time to first token (first token - arrival), per request."
    )
    itl: LatencyStats = Field(
        description="Inter-token latency: gaps between consecutive tokens of a request, per gap."
    )
    tpot: LatencyStats = Field(
        description="Time per output token, (finish - first token) / (output tokens - 1), per "
        "request with two tokens or more."
    )
    request_latency: LatencyStats = Field(
        description="End-to-end latency (finish - arrival), per request."
    )
    latency_method: str = Field(
        default="decode_step_timestamps",
        description="Where the request times came from, e.g. a timestamp at every decode step "
        "of a static batch, or vLLM's per-request metrics.",
    )
    latency_confidence: Confidence = "high"

    @classmethod
    def from_traces(
        cls,
        traces: Sequence[RequestTrace],
        *,
        inference_time_sec: float,
        arrival_model: ArrivalModel,
        latency_method: str,
        latency_confidence: Confidence = "high",
    ) -> InferenceMetrics:
        """Every count, throughput and latency figure from the requests' traces alone."""
        timing = timing_method(traces)
        output_tokens = sum(t.output_tokens for t in traces)
        return cls(
            num_requests=len(traces),
            input_tokens=sum(t.input_tokens for t in traces),
            output_tokens=output_tokens,
            inference_time_sec=inference_time_sec,
            tokens_per_second=output_tokens / inference_time_sec if inference_time_sec > 0 else 0.0,
            arrival_model=arrival_model,
            ttft=LatencyStats.from_samples(
                [x for t in traces if (x := t.ttft_ms()) is not None], timing
            ),
            itl=(
                LatencyStats.from_samples([x for t in traces for x in t.itl_ms()])
                if itl_method(traces) == "token_timestamps"
                else LatencyStats.from_samples([], "not_reported")
            ),
            tpot=LatencyStats.from_samples(
                [x for t in traces if (x := t.tpot_ms()) is not None], timing
            ),
            request_latency=LatencyStats.from_samples([t.e2e_ms() for t in traces], timing),
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
        arrivals = {p.arrival_model for p in parts}
        if len(arrivals) > 1:
            raise ValueError(f"cannot combine arrival models {sorted(arrivals)}")
        return cls(
            num_requests=sum(p.num_requests for p in parts),
            input_tokens=sum(p.input_tokens for p in parts),
            output_tokens=sum(p.output_tokens for p in parts),
            inference_time_sec=wall_time_sec,
            tokens_per_second=(
                sum(p.output_tokens for p in parts) / wall_time_sec if wall_time_sec > 0 else 0.0
            ),
            arrival_model=parts[0].arrival_model,
            ttft=LatencyStats.pool(p.ttft for p in parts),
            itl=LatencyStats.pool(p.itl for p in parts),
            tpot=LatencyStats.pool(p.tpot for p in parts),
            request_latency=LatencyStats.pool(p.request_latency for p in parts),
            latency_method="+".join(methods),
            latency_confidence=lowest_confidence(*(p.latency_confidence for p in parts)),
        )
