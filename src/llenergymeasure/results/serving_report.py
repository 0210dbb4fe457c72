"""The report's serving section: the energy-latency curve of a request-rate sweep.

One series per server and model; x is the achieved request rate, the left panel J per output
token in the steady window, the right panel TTFT and TPOT percentiles (ms, log scale).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from llenergymeasure.domain.results import ExperimentResult
from llenergymeasure.results.views import fmt


def serving_results(results: Sequence[ExperimentResult]) -> list[ExperimentResult]:
    return [r for r in results if r.serving is not None]


def _series(r: ExperimentResult) -> str:
    return f"{r.config.get('model', '?')} @ {r.serving.server_url}"  # type: ignore[union-attr]


def curve_png(results: Sequence[ExperimentResult]) -> bytes | None:
    """J/token and latency percentiles against achieved request rate; None without serving."""
    from llenergymeasure.results.plots import _new_figure, _png

    served = serving_results(results)
    if not served:
        return None
    by_series: dict[str, list[ExperimentResult]] = {}
    for r in served:
        by_series.setdefault(_series(r), []).append(r)
    figure = _new_figure(10.0, 4.2)
    energy_ax, latency_ax = figure.subplots(1, 2)
    for name, members in sorted(by_series.items()):
        members.sort(key=lambda r: r.serving.achieved_request_rate_per_sec)  # type: ignore[union-attr]
        x = [r.serving.achieved_request_rate_per_sec for r in members]  # type: ignore[union-attr]
        energy_ax.plot(
            x,
            [r.serving.energy_per_output_token_j for r in members],  # type: ignore[union-attr]
            marker="o",
            label=name,
        )
        for label, values, style in (
            ("TTFT p50", [r.inference.ttft.p50_ms for r in members], "o-"),
            ("TTFT p99", [r.inference.ttft.p99_ms for r in members], "o--"),
            ("TPOT p50", [r.inference.tpot.p50_ms for r in members], "s-"),
            ("TPOT p99", [r.inference.tpot.p99_ms for r in members], "s--"),
        ):
            latency_ax.plot(
                x, values, style, label=f"{label} ({name})" if len(by_series) > 1 else label
            )
    energy_ax.set_xlabel("achieved request rate (req/s)")
    energy_ax.set_ylabel("J per output token (steady window)")
    energy_ax.set_ylim(bottom=0)
    energy_ax.grid(alpha=0.3)
    energy_ax.legend(fontsize="small")
    latency_ax.set_xlabel("achieved request rate (req/s)")
    latency_ax.set_ylabel("latency (ms)")
    latency_ax.set_yscale("log")
    latency_ax.grid(alpha=0.3, which="both")
    latency_ax.legend(fontsize="small")
    return _png(figure)


def section_html(results: Sequence[ExperimentResult]) -> str:
    """The section's body: the curve and one table row per rate, or a note."""
    import base64

    served = sorted(
        serving_results(results),
        key=lambda r: (_series(r), r.serving.achieved_request_rate_per_sec),  # type: ignore[union-attr]
    )
    if not served:
        return '<p class="note">No serving results (llem serve-bench) here.</p>'
    png = curve_png(served)
    img = (
        f'<img alt="energy and latency against request rate" '
        f'src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        if png
        else ""
    )
    headers = (
        "series",
        "rate /s",
        "achieved /s",
        "J/out tok",
        "J/request",
        "J/good req",
        "goodput /s",
        "TTFT p50",
        "TTFT p99",
        "TPOT p50",
        "E2E p99",
        "failed",
        "window",
    )
    rows = []
    for r in served:
        s = r.serving
        assert s is not None
        rate = s.load.request_rate_per_sec
        rows.append(
            (
                _series(r),
                "inf" if rate is None else f"{rate:g}",
                fmt(s.achieved_request_rate_per_sec),
                fmt(s.energy_per_output_token_j),
                fmt(s.energy_per_request_j),
                fmt(s.energy_per_good_request_j),
                fmt(s.goodput_per_sec),
                fmt(r.inference.ttft.p50_ms),
                fmt(r.inference.ttft.p99_ms),
                fmt(r.inference.tpot.p50_ms),
                fmt(r.inference.request_latency.p99_ms),
                str(s.requests_failed),
                f"{fmt(s.window_sec)} s {'steady' if s.steady_state else '(whole run)'}",
            )
        )
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    caption = (
        "J per output token: energy of the metered devices in the steady-state window (first "
        "send + median E2E to last send) / tokens produced in it; latencies (ms) over every "
        "successful request, measured by the client from the streamed tokens."
    )
    return f"{img}<p>{html.escape(caption)}</p><table><tr>{head}</tr>{body}</table>"
