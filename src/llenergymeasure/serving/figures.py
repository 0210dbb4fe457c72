"""The figures of one rate of a serving experiment, from its traces and the meter's window.

The steady window's share of each device's energy (from the telemetry's counter or power
samples), latencies and throughput, FLOPs per request as served, and the serving section's
headline figures (J per output token, per request, per good request, goodput, client lag).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace
from typing import Any

from llenergymeasure.config.serving import ServingConfig
from llenergymeasure.domain.inference import InferenceMetrics, LatencyStats
from llenergymeasure.domain.metrics import PrecisionMetadata
from llenergymeasure.domain.requests import RequestTrace
from llenergymeasure.domain.serving import LoadSpec, ServingMetrics, SloLimits
from llenergymeasure.serving.client import StreamedRequest
from llenergymeasure.serving.metrics import Slo, meets
from llenergymeasure.serving.steady import Window, counter_energy_j, power_energy_j

#: Client lag (actual minus scheduled send) whose p99 above this is reported as a warning.
CLIENT_LAG_WARN_MS = 10.0


def client_lag_warning(records: list[StreamedRequest]) -> str | None:
    """A warning when the client fell behind its schedule, else None.

    A late client delivers another arrival process than the one configured, and a starved one
    also reads tokens late, which adds to TTFT and ITL: say so beside the figures."""
    if not records:
        return None
    lags = sorted(max(0.0, r.lag_sec) * 1e3 for r in records)
    p99 = lags[min(len(lags) - 1, math.ceil(0.99 * len(lags)) - 1)]
    if p99 <= CLIENT_LAG_WARN_MS:
        return None
    return (
        f"the client sent late: p99 lag {p99:.1f} ms, max {lags[-1]:.1f} ms against its "
        f"schedule (over {CLIENT_LAG_WARN_MS:g} ms): this host did not keep up (other work, or a "
        "server on the same cores), so the arrivals were not the configured ones and the "
        "latencies include the client's own delays"
    )


def energy_shares(
    telemetry: Any, window: Any, steady: Window, to_monotonic: float
) -> dict[str, float]:
    """Each metered device's share of its sampled run energy that falls in the steady window.

    From the energy counter's samples where it has them, else from its power samples; a device
    the telemetry did not sample gets the window's share of time.
    """
    run0, run1 = window.start_monotonic_sec, window.end_monotonic_sec
    s0, s1 = steady.start_sec + to_monotonic, steady.end_sec + to_monotonic
    time_share = min(1.0, steady.duration_sec / max(run1 - run0, 1e-9))
    shares: dict[str, float] = {}
    for device in window.devices:
        shares[device.uid] = time_share
        try:
            times, counter = telemetry.series(device.uid, "energy_counter_j")
        except KeyError:
            continue
        if len(times) >= 2 and all(v is not None for v in counter):
            whole = counter_energy_j(times, counter, run0, run1)
            part = counter_energy_j(times, counter, s0, s1)
        else:
            times, power = telemetry.series(device.uid, "power_w")
            pairs = [(t, p) for t, p in zip(times, power, strict=True) if p is not None]
            if len(pairs) < 2:
                continue
            ts, ps = zip(*pairs, strict=True)
            whole = power_energy_j(ts, ps, run0, run1)
            part = power_energy_j(ts, ps, s0, s1)
        if whole > 0:
            shares[device.uid] = min(1.0, max(0.0, part / whole))
    return shares


def scaled(window: Any, shares: dict[str, float], duration_sec: float) -> Any:
    """The meter's window with each device's energy cut to its share of the steady window."""
    devices = [
        d.model_copy(update={"energy_j": d.energy_j * shares[d.uid]}) for d in window.devices
    ]
    return replace(
        window, devices=devices, duration_sec=duration_sec, warnings=list(window.warnings)
    )


def window_inference(
    traces: list[RequestTrace], window_tokens: float, steady: Window
) -> InferenceMetrics:
    """Latencies over every successful request; counts and throughput over the window."""
    full = InferenceMetrics.from_traces(
        traces,
        inference_time_sec=steady.duration_sec,
        arrival_model="open_loop",
        latency_method="client_stream_timestamps",
    )
    tokens = round(window_tokens)
    return full.model_copy(
        update={
            "output_tokens": tokens,
            "tokens_per_second": window_tokens / steady.duration_sec
            if steady.duration_sec
            else 0.0,
        }
    )


def window_compute(
    traces: list[RequestTrace],
    model_config: Any,
    precision: PrecisionMetadata,
    inference: InferenceMetrics,
    window_tokens: float,
    environment: Any,
    gpus: list[int] | None,
) -> tuple[Any, list[str]]:
    """FLOPs of every request as served, scaled to the steady window by its tokens."""
    from llenergymeasure.compute.flops import FlopsBreakdown, estimate_flops_breakdown
    from llenergymeasure.compute.metrics import build_compute_metrics
    from llenergymeasure.domain.metrics import FlopsResult

    shapes = Counter((t.input_tokens, t.output_tokens) for t in traces if t.output_tokens > 0)
    prefill = decode = 0.0
    result = None
    for (n_in, n_out), count in shapes.items():
        part = estimate_flops_breakdown(
            model_config,
            batch_size=1,
            input_tokens=max(n_in, 1),
            output_tokens=n_out,
            method="architecture",
            precision=precision.compute,
        )
        prefill += part.prefill_flops * count
        decode += part.decode_flops * count
        result = part.result
    run_tokens = sum(t.output_tokens for t in traces)
    scale = window_tokens / run_tokens if run_tokens else 0.0
    note = "per request as served (no padding); scaled to the steady window by its tokens"
    breakdown = FlopsBreakdown(
        result=FlopsResult(
            value=(prefill + decode) * scale,
            method=result.method if result else "architecture",
            precision=precision.compute,
            notes="; ".join(filter(None, [result.notes if result else None, note])),
        ),
        prefill_flops=prefill * scale,
        decode_flops=decode * scale,
    )
    names = [
        d.name for d in environment.devices if d.kind == "gpu" and (gpus is None or d.index in gpus)
    ]
    compute = build_compute_metrics(
        breakdown,
        precision,
        output_tokens=inference.output_tokens,
        wall_time_sec=inference.inference_time_sec,
        device_names=names,
    )
    return compute, []


def serving_metrics(
    config: ServingConfig,
    rate: float,
    burstiness: float,
    launched: bool,
    records: list[StreamedRequest],
    traces: list[RequestTrace],
    steady: Window,
    share: float,
    window: Any,
    window_tokens: float,
    steady_energy_j: float,
) -> ServingMetrics:
    """The serving section of one rate's result: load, SLOs, goodput and energy per unit."""
    slo = Slo(config.slo.ttft_ms, config.slo.tpot_ms, config.slo.e2e_ms)
    ok = [r for r in records if r.ok]
    good = sum(meets(r, slo) for r in records)
    sent = [r.sent_sec for r in records]
    sending_span = max(sent) - min(sent)
    run_sec = max(t.finish_sec for t in traces) - min(sent)
    j_per_token = steady_energy_j / window_tokens if window_tokens else 0.0
    all_tokens = sum(t.output_tokens for t in traces)
    errors = Counter((r.error or "no finish").split(":")[0] for r in records if not r.ok)
    infinite = math.isinf(rate)
    return ServingMetrics(
        server_url=config.server.url,
        launched=launched,
        load=LoadSpec(
            request_rate_per_sec=None if infinite else rate,
            arrival="all_at_once" if infinite else config.load.arrival,
            burstiness=burstiness,
            max_concurrency=config.load.max_concurrency,
            seed=config.load.seed,
        ),
        slo=SloLimits(**config.slo.model_dump()),
        requests_sent=len(records),
        requests_ok=len(ok),
        requests_failed=len(records) - len(ok),
        errors=dict(errors),
        steady_state=steady.steady,
        window_rule=steady.rule,
        window_start_offset_sec=max(0.0, steady.start_sec - min(sent)),
        window_sec=steady.duration_sec,
        run_sec=max(run_sec, 0.0),
        window_energy_share=share,
        run_energy_j=sum(d.energy_j for d in window.devices),
        window_output_tokens=window_tokens,
        achieved_request_rate_per_sec=(len(records) - 1) / sending_span if sending_span else 0.0,
        output_tokens_per_sec=window_tokens / steady.duration_sec if steady.duration_sec else 0.0,
        energy_per_output_token_j=j_per_token,
        energy_per_request_j=j_per_token * (all_tokens / len(ok)) if ok else 0.0,
        good_requests=good,
        goodput_per_sec=good / run_sec if run_sec > 0 else 0.0,
        energy_per_good_request_j=j_per_token * all_tokens / good if good else None,
        client_lag=LatencyStats.from_samples([max(0.0, r.lag_sec) * 1e3 for r in records]),
    )
