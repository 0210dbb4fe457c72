"""What `llem results list / show / compare` print, as plain tables of text (no rich here).

Each view returns a ``Table`` (title, headers, rows of strings) so the CLI only renders it and
the tests can read the same cells the user sees.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from llenergymeasure.domain.compute import ComputeMetrics
from llenergymeasure.domain.energy import EnergyMetrics
from llenergymeasure.domain.inference import LatencyStats
from llenergymeasure.domain.metrics import WarmupResult
from llenergymeasure.domain.results import ExperimentResult
from llenergymeasure.domain.study import MetricSummary
from llenergymeasure.results.collection import LoadedResult
from llenergymeasure.results.footprint import footprint_rows
from llenergymeasure.results.quality_view import (
    TASK_HEADERS,
    quality_rows,
    task_compare_rows,
    task_rows,
)
from llenergymeasure.results.records import result_record

MISSING = "-"


@dataclass
class Table:
    """A titled table of text cells."""

    title: str
    headers: tuple[str, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)


def fmt(value: Any) -> str:
    """A value as the views show it: 4 significant digits, '-' for missing, yes/no for booleans."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return MISSING
        if value == 0:
            return "0"
        magnitude = math.floor(math.log10(abs(value)))
        if magnitude >= 7 or magnitude < -4:
            return f"{value:.3e}"
        return f"{value:,.{max(0, 3 - magnitude)}f}"
    return str(value)


#: What a spread or interval shows when it needs two runs and there is one.
NO_SPREAD = "n/a (1 run)"


def spread_texts(summary: MetricSummary) -> tuple[str, str, str, str]:
    """(mean, std, 95% interval, mean ± half width) as text; '-' without values,
    ``NO_SPREAD`` for the spread of a single value (never a std of 0)."""
    if summary.n == 0 or summary.mean is None:
        return (MISSING, MISSING, MISSING, MISSING)
    mean_text = fmt(summary.mean)
    if summary.n < 2 or summary.std is None or summary.half_width is None:
        return (mean_text, NO_SPREAD, NO_SPREAD, f"{mean_text} ({NO_SPREAD})")
    interval = f"[{fmt(summary.ci95_low)}, {fmt(summary.ci95_high)}]"
    return (mean_text, fmt(summary.std), interval, f"{mean_text} ± {fmt(summary.half_width)}")


def throttle_causes(result: ExperimentResult) -> list[str]:
    """The kinds of throttling the result detected: 'thermal', 'power' (empty when none)."""
    return [name for name in ("thermal", "power") if getattr(result.thermal, name)]


def throttle_text(result: ExperimentResult) -> str:
    """'no', or 'yes' with the causes, e.g. 'yes: thermal, power'."""
    if not result.thermal.detected:
        return "no"
    causes = throttle_causes(result)
    return "yes: " + ", ".join(causes) if causes else "yes"


def warmup_status(result: ExperimentResult) -> str:
    """'converged', 'not converged', 'fixed' (a fixed-count warmup is no failure), or '-'."""
    statuses = list(dict.fromkeys(w.status for w in result.warmup))
    return ", ".join(statuses) if statuses else MISSING


def energy_by_kind_text(energy: EnergyMetrics) -> str:
    """Where the joules came from, e.g. 'GPU 120 J (60%), CPU 30 J (15%), RAM 50 J (25%,
    estimated)'; the one wording the run summary, `results show` and the report use."""
    parts = []
    for k in energy.by_kind():
        note = f"{k.share:.0%}, estimated" if k.estimated else f"{k.share:.0%}"
        parts.append(f"{k.kind.upper()} {fmt(k.energy_j)} J ({note})")
    return ", ".join(parts) or MISSING


def useful_share_text(compute: ComputeMetrics) -> str:
    """Useful FLOPs as a share of executed FLOPs, or '-' when not recorded."""
    useful = compute.useful_flops
    if useful is None or compute.flops.value <= 0:
        return MISSING
    return f"{useful.value / compute.flops.value:.1%}"


# ---- list ---------------------------------------------------------------------------------

LIST_HEADERS = (
    "id",
    "model",
    "engine",
    "dtype",
    "batch",
    "J/out tok",
    "tok/s",
    "throttled",
    "warmup",
    "energy method",
)


def list_table(items: Sequence[LoadedResult], title: str = "results") -> Table:
    """One row per result: what it ran and its headline figures."""
    table = Table(title=title, headers=LIST_HEADERS)
    for item in items:
        r = result_record(item.result)
        table.rows.append(
            (
                r["experiment_id"],
                fmt(r["model"]),
                fmt(r["engine"]),
                fmt(r["dtype"]),
                fmt(r["batch_size"]),
                fmt(r["energy_per_output_token_j"]),
                fmt(r["tokens_per_second"]),
                throttle_text(item.result),
                warmup_status(item.result),
                r["energy_method"],
            )
        )
    return table


# ---- show ---------------------------------------------------------------------------------


def _with(method: str | None, confidence: str | None = None) -> str:
    if method is None:
        return ""
    return f"{method} ({confidence} confidence)" if confidence else method


def _figures(title: str, rows: list[tuple[str, Any, str]]) -> Table:
    return Table(
        title=title,
        headers=("figure", "value", "provenance"),
        rows=[(name, fmt(value), how) for name, value, how in rows],
    )


def _latency_row(name: str, stats: LatencyStats) -> tuple[str, ...]:
    if stats.method == "not_reported":
        return (name, fmt(stats.n), *([MISSING] * 6), stats.method)
    values = (stats.mean_ms, stats.p50_ms, stats.p90_ms, stats.p95_ms, stats.p99_ms, stats.max_ms)
    return (name, fmt(stats.n), *(fmt(v) for v in values), stats.method)


def show_tables(item: LoadedResult) -> list[Table]:
    """Every figure of one result, grouped, each with how it was obtained."""
    r = item.result
    e, inf, c, n = r.energy, r.inference, r.compute, r.normalised
    useful = c.useful_flops
    useful_how = _with(useful.method, useful.confidence) if useful else "not recorded"
    energy_how = _with(e.method, e.confidence)
    flops_how = _with(c.flops.method, c.flops.confidence)
    tokens_how = "output tokens / idle-adjusted energy"
    return [
        Table(
            "experiment",
            ("field", "value"),
            [
                ("experiment id", r.experiment_id),
                ("result file", str(item.path)),
                ("config hash", r.config_hash),
                ("window", f"{r.start_time.isoformat()} .. {r.end_time.isoformat()}"),
                *((f"config.{k}", fmt(v)) for k, v in r.config.items()),
            ],
        ),
        _figures(
            "energy",
            [
                ("energy per output token (J)", r.energy_per_output_token_j, energy_how),
                (
                    "idle-adjusted energy per output token (J)",
                    r.adjusted_energy_per_output_token_j,
                    f"baseline {e.baseline_method}",
                ),
                ("total energy (J)", e.total_energy_j, energy_how),
                ("by kind", energy_by_kind_text(e), "share of the raw total"),
                ("idle-adjusted energy (J)", e.adjusted_energy_j, f"baseline {e.baseline_method}"),
                (
                    "idle baseline power (W)",
                    e.baseline_power_w,
                    f"baseline {e.baseline.describe() if e.baseline else e.baseline_method}",
                ),
                ("mean power (W)", e.mean_power_w, "total energy / duration"),
                ("duration (s)", e.duration_sec, ""),
            ],
        ),
        Table(
            "energy by kind",
            ("kind", "energy (J)", "share", "adjusted (J)", "instrument", "estimated"),
            [
                (
                    k.kind.upper(),
                    fmt(k.energy_j),
                    f"{k.share:.1%}",
                    fmt(k.adjusted_energy_j),
                    _with("+".join(k.methods) or None, k.confidence),
                    "yes" if k.estimated else "no",
                )
                for k in e.by_kind()
            ],
        ),
        Table(
            "energy per device",
            ("device", "kind", "name", "energy (J)", "adjusted (J)", "baseline (W)", "provenance"),
            [
                (
                    d.label,
                    d.kind,
                    fmt(d.name),
                    fmt(d.energy_j),
                    fmt(d.adjusted_energy_j),
                    fmt(d.baseline_power_w),
                    _with(d.method, d.confidence),
                )
                for d in e.devices
            ],
        ),
        _figures(
            "inference",
            [
                ("requests", inf.num_requests, ""),
                ("input tokens", inf.input_tokens, "padding excluded"),
                ("output tokens", inf.output_tokens, "up to and including EOS"),
                ("window (s)", inf.inference_time_sec, "wall time"),
                ("tokens per second", inf.tokens_per_second, "output tokens / window"),
            ],
        ),
        Table(
            f"latency (ms) — {inf.arrival_model} arrivals, "
            f"{_with(inf.latency_method, inf.latency_confidence)}",
            ("latency", "n", "mean", "p50", "p90", "p95", "p99", "max", "method"),
            [
                _latency_row("time to first token (per request)", inf.ttft),
                _latency_row("inter-token (per token gap)", inf.itl),
                _latency_row("time per output token (per request)", inf.tpot),
                _latency_row("end-to-end (per request)", inf.request_latency),
            ],
        ),
        _figures(
            "compute",
            [
                ("FLOPs executed", c.flops.value, flops_how),
                ("FLOPs useful (tokens kept)", useful.value if useful else None, useful_how),
                ("useful share of executed", useful_share_text(c), "rest: padding, after EOS"),
                ("FLOPs per output token", c.flops_per_output_token, f"executed; {flops_how}"),
                ("prefill / decode FLOPs share", _share(c.prefill_flops, c.flops.value), ""),
                ("FLOPs notes", c.flops.notes, ""),
                ("compute precision", c.precision.compute, f"weights {c.precision.weights}"),
                ("precision factor", c.precision.precision_factor, ""),
                ("quantization", c.precision.quantization_method, ""),
                ("peak memory (MB)", c.peak_memory_mb, ""),
                ("executed FLOPs per second", c.achieved_flops_per_sec, "FLOPs / window"),
                ("useful FLOPs per second", c.useful_flops_per_sec, "useful FLOPs / window"),
                ("MFU", c.mfu, _mfu_how(c)),
            ],
        ),
        _figures(
            "normalised",
            [
                ("tokens per joule (raw)", n.tokens_per_joule, energy_how),
                ("tokens per joule (idle-adjusted)", n.adjusted_tokens_per_joule, tokens_how),
                (
                    "tokens per effective PFLOP",
                    n.tokens_per_effective_pflop,
                    f"executed; {flops_how}",
                ),
                (
                    "tokens per second per watt",
                    n.tokens_per_second_per_watt,
                    "tokens/s / mean power = tokens per raw joule",
                ),
            ],
        ),
        _figures("carbon and cost", footprint_rows(r)),
        _figures(
            "thermal",
            [
                ("throttled", throttle_text(r), "NVML clock-event reasons"),
                ("throttled time (s)", r.thermal.throttle_duration_sec, ""),
                ("max temperature (C)", r.thermal.max_temperature_c, ""),
            ],
        ),
        Table(
            "warmup",
            ("process", "how it ended", "final CV", "target CV", "requests", "time (s)", "limit"),
            [
                (
                    str(i),
                    w.describe(),
                    fmt(w.final_cv),
                    fmt(w.target_cv),
                    fmt(w.iterations_completed),
                    fmt(w.elapsed_sec),
                    _warmup_limit(w),
                )
                for i, w in enumerate(r.warmup)
            ],
        ),
        *_quality_tables(r),
        Table("warnings", ("warning",), [(w,) for w in r.warnings]),
    ]


def _quality_tables(r: ExperimentResult) -> list[Table]:
    tables = []
    if r.quality is not None:
        tables.append(
            Table("quality (95% intervals)", ("figure", "value", "how"), quality_rows(r.quality))
        )
    if r.task_accuracy is not None:
        title = f"task accuracy (lm-eval; {r.task_accuracy.note})"
        tables.append(Table(title, TASK_HEADERS, task_rows(r.task_accuracy)))
    return tables


def _mfu_how(compute: ComputeMetrics) -> str:
    basis = "useful" if compute.useful_flops is not None else "executed"
    source = f"; peak: {compute.peak_flops_source}" if compute.peak_flops_source else ""
    return f"{basis} FLOPs/s / peak{source}" if compute.mfu is not None else ""


def _warmup_limit(w: WarmupResult) -> str:
    count = f"{w.max_prompts} requests" if w.mode == "cv" else f"n={w.max_prompts}"
    return f"{count}, {fmt(w.max_sec)} s" if w.max_sec is not None else count


def _share(part: float, total: float) -> str:
    return f"{part / total:.1%} / {1 - part / total:.1%}" if total > 0 else MISSING


# ---- compare ------------------------------------------------------------------------------

#: (record column, label, which way is better) for `llem results compare`.
COMPARED: tuple[tuple[str, str, str], ...] = (
    ("energy_per_output_token_j", "J per output token", "lower"),
    ("tokens_per_second", "tokens per second", "higher"),
    ("tokens_per_joule", "tokens per joule", "higher"),
    ("co2e_per_output_token_g", "gCO2e per output token", "lower"),
    ("cost_per_million_output_tokens_usd", "USD per 1M output tokens", "lower"),
    ("total_energy_j", "total energy (J)", ""),
    ("mean_power_w", "mean power (W)", ""),
    ("ttft_p50_ms", "TTFT p50 (ms)", "lower"),
    ("ttft_p99_ms", "TTFT p99 (ms)", "lower"),
    ("itl_p50_ms", "ITL p50 (ms)", "lower"),
    ("tpot_p50_ms", "TPOT p50 (ms)", "lower"),
    ("request_latency_p50_ms", "E2E request latency p50 (ms)", "lower"),
    ("flops_per_output_token", "FLOPs per output token", ""),
    ("mfu", "MFU", "higher"),
    ("peak_memory_mb", "peak memory (MB)", "lower"),
    ("max_temperature_c", "max temperature (C)", ""),
    ("perplexity", "perplexity", "lower"),
    ("perplexity_degradation", "perplexity degradation", "lower"),
    ("mean_kl_nats", "mean KL per token (nats)", "lower"),
    ("top1_agreement", "top-1 agreement", "higher"),
)

#: Descriptive rows shown above the figures (no ratio).
DESCRIBED: tuple[tuple[str, str], ...] = (
    ("model", "model"),
    ("engine", "engine"),
    ("engine_version", "engine version"),
    ("arrival_model", "arrival model"),
    ("dtype", "dtype"),
    ("batch_size", "batch size"),
    ("energy_method", "energy method"),
    ("flops_method", "FLOPs method"),
    ("carbon_region", "carbon region"),
    ("carbon_intensity_g_per_kwh", "grid intensity (g/kWh)"),
    ("throttled", "throttled"),
    ("warmup", "warmup"),
)


def ratio_text(value: float | None, reference: float | None) -> str:
    """'x1.23' (value / reference), or '' when either is missing or the reference is 0."""
    if value is None or reference is None or reference == 0:
        return ""
    return f"x{value / reference:.3g}"


def compare_table(items: Sequence[LoadedResult]) -> Table:
    """Results side by side; every figure after the first column carries its ratio to it."""
    records = [result_record(item.result) for item in items]
    headers = ("figure", *(r["experiment_id"] for r in records), "better")
    table = Table(title="comparison (ratios to the first result)", headers=headers)
    for key, label in DESCRIBED:
        if key == "warmup":  # converged / not converged / fixed, not a bare yes/no
            cells = [warmup_status(item.result) for item in items]
        else:
            cells = [fmt(r[key]) for r in records]
        table.rows.append((label, *cells, ""))
    first = records[0]
    for key, label, better in COMPARED:
        cells = [fmt(first[key])]
        for r in records[1:]:
            ratio = ratio_text(r[key], first[key])
            cells.append(f"{fmt(r[key])} ({ratio})" if ratio else fmt(r[key]))
        table.rows.append((label, *cells, better))
    table.rows += task_compare_rows([item.result.task_accuracy for item in items], ratio_text)
    return table
