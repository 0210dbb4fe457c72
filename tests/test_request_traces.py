"""Latency statistics from request traces equal hand computation (vLLM serving definitions)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llenergymeasure.domain.inference import InferenceMetrics
from llenergymeasure.domain.requests import RequestTrace, with_arrival

gap = st.floats(min_value=0.0, max_value=0.5, allow_nan=False)


@st.composite
def streamed_trace(draw: st.DrawFn) -> RequestTrace:
    """A request with every token's time: arrival, a wait, then token gaps."""
    arrival = draw(st.floats(min_value=0.0, max_value=100.0, allow_nan=False))
    wait = draw(gap)
    gaps = draw(st.lists(gap, min_size=0, max_size=12))
    times = [arrival + wait]
    for g in gaps:
        times.append(times[-1] + g)
    return RequestTrace(
        arrival_sec=arrival,
        first_token_sec=times[0],
        finish_sec=times[-1],
        token_times_sec=times,
        input_tokens=draw(st.integers(1, 64)),
        output_tokens=len(times),
    )


def _strip_tokens(t: RequestTrace) -> RequestTrace:
    return t.model_copy(update={"token_times_sec": []})


def _np_stats(samples: list[float]) -> tuple[float, ...]:
    a = np.asarray(samples)
    return (a.mean(), *(np.percentile(a, q) for q in (50, 90, 95, 99)), a.min(), a.max())


def _stats(s) -> tuple[float, ...]:  # type: ignore[no-untyped-def]
    return (s.mean_ms, s.p50_ms, s.p90_ms, s.p95_ms, s.p99_ms, s.min_ms, s.max_ms)


@given(st.lists(streamed_trace(), min_size=1, max_size=20))
def test_streamed_figures_equal_hand_computation(traces: list[RequestTrace]) -> None:
    inf = InferenceMetrics.from_traces(
        traces, inference_time_sec=10.0, arrival_model="closed", latency_method="test"
    )
    ttft = [(t.token_times_sec[0] - t.arrival_sec) * 1e3 for t in traces]
    e2e = [(t.token_times_sec[-1] - t.arrival_sec) * 1e3 for t in traces]
    itl = [(b - a) * 1e3 for t in traces for a, b in itertools.pairwise(t.token_times_sec)]
    tpot = [
        (t.token_times_sec[-1] - t.token_times_sec[0]) * 1e3 / (len(t.token_times_sec) - 1)
        for t in traces
        if len(t.token_times_sec) > 1
    ]
    # one sample per request (TTFT, E2E, TPOT) or per token gap (ITL): no per-sequence copies
    assert (inf.ttft.n, inf.request_latency.n) == (len(traces), len(traces))
    assert inf.itl.n == sum(t.output_tokens - 1 for t in traces)
    assert inf.tpot.n == len(tpot)
    for stats, hand in (
        (inf.ttft, ttft),
        (inf.request_latency, e2e),
        (inf.itl, itl),
        (inf.tpot, tpot),
    ):
        if hand:
            assert _stats(stats) == pytest.approx(_np_stats(hand), rel=1e-9, abs=1e-9)
            assert stats.method == "token_timestamps"
        else:
            assert stats.n == 0 and stats.method == "not_reported"
    assert inf.output_tokens == sum(t.output_tokens for t in traces)
    assert inf.tokens_per_second == pytest.approx(inf.output_tokens / 10.0)


@given(st.lists(streamed_trace(), min_size=1, max_size=20))
def test_first_last_only_reports_no_itl_but_the_same_ttft_tpot_e2e(
    traces: list[RequestTrace],
) -> None:
    kwargs = {"inference_time_sec": 5.0, "arrival_model": "all_at_once", "latency_method": "x"}
    full = InferenceMetrics.from_traces(traces, **kwargs)  # type: ignore[arg-type]
    coarse = InferenceMetrics.from_traces([_strip_tokens(t) for t in traces], **kwargs)  # type: ignore[arg-type]
    multi = any(t.output_tokens > 1 for t in traces)
    assert coarse.itl.method == "not_reported" if multi else coarse.itl.n == 0
    assert coarse.itl.n == 0
    for name in ("ttft", "tpot", "request_latency"):
        a, b = getattr(full, name), getattr(coarse, name)
        assert a.samples_ms == pytest.approx(b.samples_ms)
        if b.n and multi:
            assert b.method == "first_last_token"


@given(st.lists(streamed_trace(), min_size=2, max_size=20), st.data())
def test_pooling_processes_equals_all_traces_at_once(
    traces: list[RequestTrace], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(1, len(traces) - 1))
    kwargs = {"inference_time_sec": 4.0, "arrival_model": "closed", "latency_method": "x"}
    parts = [
        InferenceMetrics.from_traces(traces[:cut], **kwargs),  # type: ignore[arg-type]
        InferenceMetrics.from_traces(traces[cut:], **kwargs),  # type: ignore[arg-type]
    ]
    pooled = InferenceMetrics.combine(parts, wall_time_sec=4.0)
    whole = InferenceMetrics.from_traces(traces, **kwargs)  # type: ignore[arg-type]
    for name in ("ttft", "itl", "tpot", "request_latency"):
        assert _stats(getattr(pooled, name)) == pytest.approx(_stats(getattr(whole, name)))
        assert getattr(pooled, name).method == getattr(whole, name).method


def test_all_at_once_counts_the_wait_behind_earlier_batches() -> None:
    """Two static batches of one request: closed vs all_at_once, by hand."""
    first = RequestTrace(
        arrival_sec=0.0,
        first_token_sec=0.1,
        finish_sec=0.3,
        input_tokens=4,
        output_tokens=3,
        token_times_sec=[0.1, 0.2, 0.3],
    )
    second = RequestTrace(
        arrival_sec=0.3,
        first_token_sec=0.4,
        finish_sec=0.6,
        input_tokens=4,
        output_tokens=3,
        token_times_sec=[0.4, 0.5, 0.6],
    )
    closed = InferenceMetrics.from_traces(
        [first, second], inference_time_sec=0.6, arrival_model="closed", latency_method="x"
    )
    at_once = InferenceMetrics.from_traces(
        with_arrival([first, second], 0.0),
        inference_time_sec=0.6,
        arrival_model="all_at_once",
        latency_method="x",
    )
    assert closed.ttft.samples_ms == pytest.approx([100.0, 100.0])
    assert at_once.ttft.samples_ms == pytest.approx([100.0, 400.0])
    assert at_once.request_latency.samples_ms == pytest.approx([300.0, 600.0])
    assert closed.tpot.samples_ms == at_once.tpot.samples_ms == pytest.approx([100.0, 100.0])
    assert closed.itl.samples_ms == pytest.approx([100.0] * 4)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"first_token_sec": None}, "needs first_token_sec"),
        ({"first_token_sec": -1.0}, "before arrival_sec"),
        ({"finish_sec": 0.05}, "finish_sec is before first_token_sec"),
        ({"token_times_sec": [0.1, 0.2]}, "2 times for 3 tokens"),
        ({"token_times_sec": [0.1, 0.3, 0.2]}, "must not decrease"),
    ],
)
def test_inconsistent_traces_are_rejected(fields: dict, message: str) -> None:
    base = {
        "arrival_sec": 0.0,
        "first_token_sec": 0.1,
        "finish_sec": 0.3,
        "input_tokens": 4,
        "output_tokens": 3,
    }
    with pytest.raises(ValueError, match=message):
        RequestTrace(**{**base, **fields})


def test_mixed_arrival_models_do_not_combine() -> None:
    t = RequestTrace(
        arrival_sec=0.0, first_token_sec=0.1, finish_sec=0.1, input_tokens=1, output_tokens=1
    )
    a = InferenceMetrics.from_traces(
        [t], inference_time_sec=1, arrival_model="closed", latency_method="x"
    )
    b = a.model_copy(update={"arrival_model": "all_at_once"})
    with pytest.raises(ValueError, match="cannot combine arrival models"):
        InferenceMetrics.combine([a, b], wall_time_sec=1.0)
