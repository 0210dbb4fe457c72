"""From what the client saw to request traces, and goodput against SLOs.

A successful streamed request becomes a ``RequestTrace`` whose arrival is when it was sent to
the server, so TTFT, ITL, TPOT and E2E follow the shared definitions of ``domain.requests``.
"""

from __future__ import annotations

from dataclasses import dataclass

from llenergymeasure.domain.requests import RequestTrace
from llenergymeasure.serving.client import StreamedRequest


@dataclass(frozen=True)
class Slo:
    """Latency limits a request must meet to count as good (None: no limit)."""

    ttft_ms: float | None = None
    tpot_ms: float | None = None
    e2e_ms: float | None = None


def to_trace(r: StreamedRequest) -> RequestTrace | None:
    """The request's trace, or None for a failed one.

    Token times are kept when there is one per output token (one streamed chunk per token);
    a server that packs several tokens in a chunk gives only the first and last times.
    """
    if not r.ok or r.finish_sec is None:
        return None
    times = r.token_times_sec if len(r.token_times_sec) == r.output_tokens else []
    last = r.token_times_sec[-1] if r.token_times_sec else r.finish_sec
    return RequestTrace(
        arrival_sec=r.sent_sec,
        first_token_sec=r.first_token_sec if r.output_tokens else None,
        finish_sec=last if r.output_tokens else r.finish_sec,
        token_times_sec=list(times),
        input_tokens=r.input_tokens or 0,
        output_tokens=r.output_tokens,
    )


def meets(r: StreamedRequest, slo: Slo) -> bool:
    """A successful request within every limit of ``slo``."""
    trace = to_trace(r)
    if trace is None:
        return False
    checks = (
        (slo.ttft_ms, trace.ttft_ms()),
        (slo.tpot_ms, trace.tpot_ms()),
        (slo.e2e_ms, trace.e2e_ms()),
    )
    return all(limit is None or (value is not None and value <= limit) for limit, value in checks)


def goodput(records: list[StreamedRequest], slo: Slo, span_sec: float) -> tuple[int, float]:
    """Requests meeting the SLOs, and that count per second over ``span_sec``."""
    good = sum(meets(r, slo) for r in records)
    return good, good / span_sec if span_sec > 0 else 0.0
