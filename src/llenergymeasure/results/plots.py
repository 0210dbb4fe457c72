"""The report's plots, drawn with matplotlib's Agg canvas and returned as PNG bytes.

matplotlib (a core dependency, so `llem report` works after the plain install) is imported here
only, on first use.
No pyplot: each figure is its own ``Figure`` on an Agg canvas, so no global state or display
backend is touched.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

from llenergymeasure.errors import LlemError
from llenergymeasure.results.groups import ConfigGroup, MetricSummary
from llenergymeasure.results.telemetry import Telemetry

THROTTLE_COLOUR = "#d62728"
_DPI = 100


class ReportDependencyError(LlemError):
    """matplotlib, needed to draw the report, is not installed."""


def _new_figure(width_in: float, height_in: float) -> Any:
    """A Figure on an Agg canvas; a clear error when matplotlib is missing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ReportDependencyError(
            "llem report draws its plots with matplotlib, a dependency of llenergymeasure "
            "that is missing here: pip install 'matplotlib>=3.7' (or reinstall with "
            "pip install 'llenergymeasure[report]')"
        ) from None
    figure = Figure(figsize=(width_in, height_in), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return buffer.getvalue()


def _mean(summary: MetricSummary) -> float:
    """The mean to draw; NaN (nothing drawn) without values."""
    return summary.mean if summary.mean is not None else math.nan


def _whiskers(summaries: Sequence[MetricSummary]) -> list[list[float]]:
    """Asymmetric error bars (mean - low, high - mean); none drawn below two results."""
    low = [_mean(s) - s.ci95_low if s.ci95_low is not None else math.nan for s in summaries]
    high = [s.ci95_high - _mean(s) if s.ci95_high is not None else math.nan for s in summaries]
    return [low, high]


def energy_throughput_png(groups: Sequence[ConfigGroup]) -> bytes:
    """J per output token and tokens/s per configuration: bars at the mean, 95% CI whiskers,
    one dot per result (cycle)."""
    figure = _new_figure(11.0, 1.6 + 0.45 * len(groups))
    axes = figure.subplots(1, 2, sharey=True)
    labels = [g.label for g in groups]
    positions = list(range(len(groups)))
    panels = (
        (
            axes[0],
            [g.energy_per_token for g in groups],
            "J per output token",
            "#1f77b4",
            lambda r: r.energy_per_output_token_j,
        ),
        (
            axes[1],
            [g.tokens_per_second for g in groups],
            "output tokens per second",
            "#2ca02c",
            lambda r: r.inference.tokens_per_second,
        ),
    )
    for ax, summaries, title, colour, metric in panels:
        ax.barh(positions, [_mean(s) for s in summaries], color=colour, alpha=0.75, height=0.6)
        ax.errorbar(
            [_mean(s) for s in summaries],
            positions,
            xerr=_whiskers(summaries),
            fmt="none",
            ecolor="black",
            capsize=4,
            linewidth=1.2,
        )
        for y, group in zip(positions, groups, strict=True):
            points = [metric(m.result) for m in group.members]
            ax.plot(points, [y] * len(points), "o", color="black", markersize=3, alpha=0.6)
        ax.set_xlabel(title)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(positions, labels)
    axes[0].set_ylim(len(groups) - 0.5, -0.5)  # first configuration on top, no empty margin
    return _png(figure)


def batch_size_png(groups: Sequence[ConfigGroup]) -> bytes | None:
    """J per output token against batch size, one line per model/engine/dtype; None without
    batch sizes."""
    by_series: dict[str, list[ConfigGroup]] = {}
    for group in groups:
        if group.batch_size is not None:
            by_series.setdefault(group.series, []).append(group)
    if not by_series:
        return None
    figure = _new_figure(8.0, 4.5)
    ax = figure.subplots()
    batches = sorted({g.batch_size for gs in by_series.values() for g in gs if g.batch_size})
    for series, members in sorted(by_series.items()):
        members.sort(key=lambda g: g.batch_size or 0)
        summaries = [g.energy_per_token for g in members]
        ax.errorbar(
            [g.batch_size for g in members],
            [_mean(s) for s in summaries],
            yerr=_whiskers(summaries),
            marker="o",
            capsize=4,
            label=series,
        )
    if len(batches) > 2 and batches[0] > 0:
        ax.set_xscale("log", base=2)
    ax.set_xticks(batches, [str(b) for b in batches])
    ax.set_xlabel("batch size")
    ax.set_ylabel("J per output token")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _png(figure)


def telemetry_png(telemetry: Telemetry, title: str) -> bytes | None:
    """Power and temperature per device over the window, throttled intervals shaded; None when
    neither quantity has a reading."""
    quantities = [
        (name, label)
        for name, label in (("power_w", "power (W)"), ("temperature_c", "temperature (C)"))
        if telemetry.has(name)
    ]
    if not quantities:
        return None
    figure = _new_figure(11.0, 0.9 + 1.7 * len(quantities))
    axes = figure.subplots(len(quantities), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (name, label) in zip(axes, quantities, strict=True):
        for start, end in telemetry.throttled:
            ax.axvspan(start, end, color=THROTTLE_COLOUR, alpha=0.18, linewidth=0)
        for trace in telemetry.traces:
            # a tick that did not read this quantity (slow fields are read every ~0.5 s) is
            # a missing value: left out, not drawn as a break in the line
            points = [
                (t, v)
                for t, v in zip(trace.time_sec, getattr(trace, name), strict=True)
                if not math.isnan(v)
            ]
            if points:
                times, values = zip(*points, strict=True)
                ax.plot(times, values, linewidth=1.2, label=trace.device)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("seconds from the start of the measurement window")
    if telemetry.throttled:
        from matplotlib.patches import Patch

        handles, _ = axes[0].get_legend_handles_labels()
        shaded = Patch(color=THROTTLE_COLOUR, alpha=0.18, label="throttled")
        axes[0].legend(handles=[*handles, shaded], fontsize="small", loc="upper right")
    else:
        axes[0].legend(fontsize="small", loc="upper right")
    figure.suptitle(title, fontsize="medium")
    return _png(figure)


def warmup_png(groups: Sequence[ConfigGroup]) -> bytes | None:
    """CV of request latency after each warmup iteration, one colour per configuration, with
    the target CV; None without warmup latencies."""
    curves = [
        (index, w)
        for index, group in enumerate(groups)
        for member in group.members
        for w in member.result.warmup
        if w.cv_curve()
    ]
    if not curves:
        return None
    figure = _new_figure(8.0, 4.5)
    ax = figure.subplots()
    colours = [f"C{i % 10}" for i in range(len(groups))]
    labelled: set[int] = set()
    values: list[float] = []
    for index, warmup in curves:
        cv = warmup.cv_curve()
        values += cv
        x = list(range(warmup.window_size, warmup.window_size + len(cv)))
        label = groups[index].label if index not in labelled else None
        labelled.add(index)
        ax.plot(x, cv, marker=".", color=colours[index], alpha=0.8, label=label)
    for target in sorted({w.target_cv for _, w in curves}):
        ax.axhline(target, color="black", linestyle="--", linewidth=1)
        ax.annotate(
            f"target CV {target:g}",
            (1.0, target),
            xycoords=("axes fraction", "data"),
            ha="right",
            va="bottom",
            fontsize="small",
        )
    positive = [v for v in values if v > 0]
    if positive and max(positive) / min(positive) > 20 and len(positive) == len(values):
        ax.set_yscale("log")
    ax.set_xlabel("warmup iteration")
    ax.set_ylabel("CV of request latency (trailing window)")
    ax.grid(alpha=0.3)
    if len(groups) <= 12:
        ax.legend(fontsize="small")
    return _png(figure)
