"""Per-request latency figures from what the client saw, and goodput against SLOs.

Definitions are those of vLLM's serving benchmark, so figures compare: TTFT = first token -
send; ITL = gaps between consecutive tokens of one request; TPOT = (finish - first token) /
(output tokens - 1); E2E = finish - send.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from llenergymeasure.serving.client import StreamedRequest


@dataclass(frozen=True)
class Slo:
    """Latency limits a request must meet to count as good (None: no limit)."""

    ttft_ms: float | None = None
    tpot_ms: float | None = None
    e2e_ms: float | None = None


def ttft_ms(r: StreamedRequest) -> float | None:
    return None if r.first_token_sec is None else (r.first_token_sec - r.sent_sec) * 1e3


def e2e_ms(r: StreamedRequest) -> float | None:
    return None if r.finish_sec is None else (r.finish_sec - r.sent_sec) * 1e3


def tpot_ms(r: StreamedRequest) -> float | None:
    if r.finish_sec is None or r.first_token_sec is None or r.output_tokens < 2:
        return None
    return (r.finish_sec - r.first_token_sec) * 1e3 / (r.output_tokens - 1)


def itl_ms(r: StreamedRequest) -> list[float]:
    t = r.token_times_sec
    return [(b - a) * 1e3 for a, b in itertools.pairwise(t)]


def meets(r: StreamedRequest, slo: Slo) -> bool:
    """A successful request within every limit of ``slo``."""
    if not r.ok:
        return False
    checks = ((slo.ttft_ms, ttft_ms(r)), (slo.tpot_ms, tpot_ms(r)), (slo.e2e_ms, e2e_ms(r)))
    return all(limit is None or (value is not None and value <= limit) for limit, value in checks)


def goodput(records: list[StreamedRequest], slo: Slo, span_sec: float) -> tuple[int, float]:
    """Requests meeting the SLOs, and that count per second over ``span_sec``."""
    good = sum(meets(r, slo) for r in records)
    return good, good / span_sec if span_sec > 0 else 0.0
