"""`llem report`: one self-contained HTML page for an experiment or a study directory.

Plots are PNGs embedded as data URIs and the style is inline; a Content-Security-Policy meta tag
forbids the page from loading anything else, so the file can be mailed, archived or opened
offline and shows exactly what it showed when written.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from llenergymeasure import __version__
from llenergymeasure.domain.study import NO_OUTPUT_RULE, MetricSummary
from llenergymeasure.errors import ResultFileError
from llenergymeasure.results import plots
from llenergymeasure.results.collection import ResultSet, load_results
from llenergymeasure.results.groups import CI_LEVEL, ConfigGroup, group_by_config
from llenergymeasure.results.io import atomic_write_text
from llenergymeasure.results.serving_report import section_html
from llenergymeasure.results.telemetry import load_telemetry
from llenergymeasure.results.views import (
    NO_SPREAD,
    energy_by_kind_text,
    fmt,
    spread_texts,
    throttle_causes,
    throttle_text,
    useful_share_text,
)

#: (id, heading) of every section, in page order; tests check each is present.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("energy-throughput", "Energy per output token and throughput per configuration"),
    ("latency", "Request latency per configuration"),
    ("batch-size", "Energy per output token against batch size"),
    ("energy-quality", "Energy against quality"),
    ("serving", "Serving: energy and latency against request rate"),
    ("telemetry", "Power and temperature over time"),
    ("warmup", "Warmup convergence"),
    ("carbon-cost", "Carbon and cost per output token"),
    ("provenance", "Provenance"),
    ("warnings", "Warnings"),
)

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

_STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2rem auto;
       max-width: 1180px; color: #222; line-height: 1.45; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.25rem; border-bottom: 2px solid #ddd; padding-bottom: 0.2rem;
     margin-top: 2.2rem; }
.meta { color: #555; font-size: 0.9rem; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.88rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f2f4f7; }
td:first-child { white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; display: block; margin: 0.6rem 0; }
.note { color: #7a5a00; background: #fff8e1; padding: 0.3rem 0.6rem;
        border-left: 3px solid #f0b400; }
.bad { color: #b00020; font-weight: 600; }
ul.warnings li { margin: 0.2rem 0; }
"""


@dataclass
class Report:
    """A written report: the page, and the warnings it lists."""

    html: str
    warnings: list[str] = field(default_factory=list)
    results: int = 0
    configurations: int = 0


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{_e(c)}</td>' if i in numeric else f"<td>{_e(c)}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _energy_throughput(groups: Sequence[ConfigGroup]) -> str:
    rows = []
    for g in groups:
        _, _, e_ci, e_text = spread_texts(g.energy_per_token)
        adjusted_text = spread_texts(g.stats.adjusted_energy_per_output_token_j)[3]
        _, t_std, _, t_text = spread_texts(g.tokens_per_second)
        n = str(g.energy_per_token.n)
        rows.append((g.label, n, e_text, e_ci, adjusted_text, t_text, t_std))
    headers = (
        "configuration",
        "n",
        "J/out tok (raw)",
        f"{CI_LEVEL:.0%} CI",
        "J/out tok (idle-adjusted)",
        "tok/s",
        "tok/s std",
    )
    caption = (
        "J per output token: raw energy of all measured devices / generated tokens (the plot); "
        "the idle-adjusted figure subtracts each device's idle power over the window. "
        f"Bars: mean over the configuration's results; whiskers: {CI_LEVEL:.0%} "
        "Student-t confidence interval of the mean (it needs n ≥ 2; with one run the spread "
        f"reads {NO_SPREAD}); dots: single results. Rule: {NO_OUTPUT_RULE}."
    )
    return (
        _img(plots.energy_throughput_png(groups), "J per output token and tokens per second")
        + f"<p>{_e(caption)}</p>"
        + _table(headers, rows, numeric={1, 2, 3, 4, 5, 6})
    )


def _latency(groups: Sequence[ConfigGroup]) -> str:
    """TTFT, TPOT, ITL and E2E medians per configuration (mean over its results), with how."""
    figures = (
        ("TTFT", lambda r: r.inference.ttft),
        ("TPOT", lambda r: r.inference.tpot),
        ("ITL", lambda r: r.inference.itl),
        ("E2E", lambda r: r.inference.request_latency),
    )
    rows = []
    for g in groups:
        first = g.first.inference
        cells = []
        for _, stats_of in figures:
            if stats_of(g.first).method == "not_reported":
                cells.append("-")
            else:
                medians = [stats_of(m.result).p50_ms for m in g.members]
                cells.append(spread_texts(MetricSummary.of(medians))[3])
        methods = f"TTFT/TPOT/E2E {first.ttft.method}, ITL {first.itl.method}"
        rows.append((g.label, first.arrival_model, str(len(g.members)), *cells, methods))
    headers = (
        "configuration",
        "arrivals",
        "n",
        *(f"{name} p50 (ms)" for name, _ in figures),
        "method",
    )
    caption = (
        "Medians over each result's requests (ITL: over token gaps), then the mean over the "
        f"configuration's results ± half the {CI_LEVEL:.0%} interval. TTFT = first token - "
        "arrival; TPOT = (finish - first token) / (output tokens - 1); E2E = finish - arrival. "
        "closed: a batch arrives when the previous one finished; all_at_once: every request at "
        "the window start. '-': not reported (no per-token times)."
    )
    return f"<p>{_e(caption)}</p>" + _table(headers, rows, numeric={2, 3, 4, 5, 6})


def _energy_quality(groups: Sequence[ConfigGroup]) -> str:
    from llenergymeasure.results import quality_report as qr

    pairs = qr.quality_groups(groups)
    if not pairs:
        return _note("No result measured quality (enable the experiment's quality section).")
    return (
        _img(qr.energy_quality_png(pairs), "J per output token against perplexity degradation")
        + f"<p>{_e(qr.quality_caption(pairs))}</p>"
        + _table(qr.QUALITY_HEADERS, qr.quality_rows(pairs), numeric={1, 2, 3, 4, 5})
    )


def _batch_size(groups: Sequence[ConfigGroup]) -> str:
    png = plots.batch_size_png(groups)
    if png is None:
        return _note("No result has a batch_size in its config: nothing to draw.")
    missing = sum(1 for g in groups if g.batch_size is None)
    text = _img(png, "J per output token against batch size")
    if missing:
        text += _note(f"{missing} configuration(s) without a batch_size are not drawn.")
    return text


def _telemetry(groups: Sequence[ConfigGroup], limit: int, notes: list[str]) -> str:
    """Power/temperature plots, throttled runs first, at most ``limit``; problems to ``notes``."""
    labels = {m.path: g.label for g in groups for m in g.members}
    items = [m for g in groups for m in g.members]
    parts: list[str] = []
    drawn = skipped = without = 0
    for item in sorted(items, key=lambda m: not m.result.thermal.detected):  # stable sort
        experiment_id = item.result.experiment_id
        telemetry = load_telemetry(item)
        if telemetry is None:
            without += 1
            continue
        notes += [f"{experiment_id}: {n}" for n in telemetry.notes]
        if not (telemetry.has("power_w") or telemetry.has("temperature_c")):
            if telemetry.traces:
                notes.append(f"{experiment_id}: telemetry has no power or temperature readings")
            continue
        if drawn >= limit:
            skipped += 1
            continue
        title = f"{experiment_id} ({labels[item.path]}) — {throttle_text(item.result)}"
        png = plots.telemetry_png(telemetry, title)
        if png is None:
            continue
        drawn += 1
        parts.append(_img(png, f"power and temperature of {experiment_id}"))
        if telemetry.throttled:
            parts.append(
                f"<p>Shaded: throttled ({len(telemetry.throttled)} interval(s), "
                f"{fmt(telemetry.throttled_sec)} s in total).</p>"
            )
    if skipped:
        parts.append(
            _note(
                f"{skipped} more result(s) have telemetry not drawn here "
                "(raise --max-telemetry to draw them)."
            )
        )
    if without:
        parts.append(_note(f"{without} result(s) have no telemetry time series."))
    return "".join(parts)


def _warmup(groups: Sequence[ConfigGroup]) -> str:
    results = [m.result for g in groups for m in g.members]
    with_warmup = [r for r in results if r.warmup]
    png = plots.warmup_png(groups)
    if png is None:
        return _note("No result records warmup latencies: no warmup curve to draw.")
    warmups = [w for r in with_warmup for w in r.warmup]
    cv_mode = [w for w in warmups if w.mode == "cv"]
    converged = sum(1 for w in cv_mode if w.converged)
    fixed = len(warmups) - len(cv_mode)
    text = _img(png, "warmup CV per iteration against the target")
    parts = []
    if cv_mode:
        parts.append(
            f"Warmup until the latency CV reached its target converged in {converged} of "
            f"{len(cv_mode)} process warmup(s)."
        )
    if fixed:
        parts.append(
            f"{fixed} process warmup(s) ran a fixed number of requests (no convergence sought; "
            "the CV they reached is drawn)."
        )
    return text + f"<p>{_e(' '.join(parts))}</p>"


def _carbon_cost(groups: Sequence[ConfigGroup]) -> str:
    """One row per result: gCO2e and USD per token, with every factor and its source."""
    headers = (
        "experiment",
        "configuration",
        "gCO2e/out tok",
        "gCO2e",
        "intensity",
        "region",
        "intensity source",
        "PUE",
        "energy",
        "confidence",
        "USD/1M out tok",
        "prices",
    )
    rows: list[tuple[str, ...]] = []
    world = 0
    recomputed: set[str] = set()
    for g in groups:
        for m in g.members:
            r, c, cost = m.result, m.result.carbon, m.result.cost
            if c is None:
                rows.append((r.experiment_id, g.label, *(["-"] * 10)))
                continue
            i = c.intensity
            world += i.method == "world_average"
            recomputed.update(
                n for n in c.notes + (cost.notes if cost else []) if "recomputed" in n
            )
            prices = (
                [
                    f"{p:g} USD/{unit}-h x {n} {unit}"
                    for p, unit, n in (
                        (cost.usd_per_gpu_hour, "GPU", cost.gpu_count),
                        (cost.usd_per_node_hour, "node", cost.node_count),
                    )
                    if p is not None
                ]
                if cost is not None
                else []
            )
            rows.append(
                (
                    r.experiment_id,
                    g.label,
                    fmt(c.co2e_per_output_token_g),
                    fmt(c.co2e_g),
                    f"{fmt(i.value_g_per_kwh)} {i.unit}",
                    fmt(i.region),
                    f"{i.source} ({i.year if i.year is not None else 'year unknown'}; {i.method})",
                    fmt(c.pue),
                    c.energy_basis,
                    c.confidence,
                    fmt(cost.cost_per_million_output_tokens_usd) if cost else "-",
                    " + ".join(prices) or "-",
                )
            )
    caption = (
        "gCO2e = energy (kWh) x PUE x grid carbon intensity; USD = price per hour x hardware "
        "x window hours. Both are views on the stored energy and time: `llem report DIR "
        "--region FR` (or --intensity, --pue, --usd-per-gpu-hour) redraws them without rerunning."
    )
    text = f"<p>{_e(caption)}</p>" + _table(headers, rows, numeric={2, 3, 7, 10})
    for note in sorted(recomputed):
        text += _note(f"For this report: {note}; the result files hold the run's own figures.")
    if world:
        text += _note(
            f"{world} result(s) use the world-average intensity (no region given): low confidence."
        )
    return text


def _provenance(groups: Sequence[ConfigGroup]) -> str:
    headers = (
        "experiment",
        "configuration",
        "energy method",
        "energy confidence",
        "energy by kind",
        "idle baseline",
        "FLOPs method",
        "FLOPs confidence",
        "useful FLOPs share",
        "FLOPs notes",
        "latency method",
    )
    rows = []
    for g in groups:
        for m in g.members:
            r = m.result
            rows.append(
                (
                    r.experiment_id,
                    g.label,
                    r.energy.method,
                    r.energy.confidence,
                    energy_by_kind_text(r.energy),
                    r.energy.baseline_method,
                    r.compute.flops.method,
                    r.compute.flops.confidence,
                    useful_share_text(r.compute),
                    fmt(r.compute.flops.notes),
                    f"{r.inference.latency_method} ({r.inference.latency_confidence}), "
                    f"{r.inference.arrival_model} arrivals; TTFT/TPOT/E2E "
                    f"{r.inference.ttft.method}, ITL {r.inference.itl.method}",
                )
            )
    return _table(headers, rows, numeric=set())


def report_warnings(found: ResultSet, notes: Sequence[str]) -> list[str]:
    """Everything a reader should know before trusting the page, one line each."""
    lines = found.warnings()
    for item in found:
        r = item.result
        lines += [f"{r.experiment_id}: {w}" for w in r.warnings]
        if r.thermal.detected:
            lines.append(f"{r.experiment_id}: throttled ({', '.join(throttle_causes(r))})")
        for warmup in r.warmup:
            text = warmup.warning()
            if text is not None and not any(text in w for w in r.warnings):
                lines.append(f"{r.experiment_id}: {text}")
        if r.inference.output_tokens == 0:
            lines.append(f"{r.experiment_id}: generated no tokens ({NO_OUTPUT_RULE})")
    return lines + list(notes)


def _warnings(lines: Sequence[str]) -> str:
    if not lines:
        return "<p>No warnings.</p>"
    return '<ul class="warnings">' + "".join(f"<li>{_e(w)}</li>" for w in lines) + "</ul>"


def build_report(found: ResultSet, *, max_telemetry: int = 6, title: str | None = None) -> Report:
    """The HTML report of the loaded results (at least one)."""
    if not found.loaded:
        raise ResultFileError(found.root, "holds no readable result.json: nothing to report")
    groups = group_by_config(found)
    notes: list[str] = []
    bodies = {
        "energy-throughput": _energy_throughput(groups),
        "latency": _latency(groups),
        "batch-size": _batch_size(groups),
        "energy-quality": _energy_quality(groups),
        "serving": section_html(found.results),
        "telemetry": _telemetry(groups, max_telemetry, notes),
        "warmup": _warmup(groups),
        "carbon-cost": _carbon_cost(groups),
        "provenance": _provenance(groups),
    }
    warnings = report_warnings(found, notes)
    bodies["warnings"] = _warnings(warnings)
    sections = "".join(
        f'<section id="{sid}"><h2>{_e(heading)}</h2>{bodies[sid]}</section>'
        for sid, heading in SECTIONS
    )
    n = len(found)
    title = title or f"llenergymeasure report: {found.root.resolve().name}"
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    meta = (
        f"{n} result(s) in {len(groups)} configuration(s) from {_e(found.root)}; "
        f"{len(found.problems)} file(s) could not be read. Generated {generated} by "
        f"llenergymeasure {_e(__version__)}."
    )
    unreadable = (
        f'<p class="bad">{len(found.problems)} result file(s) could not be read: see Warnings.</p>'
        if found.problems
        else ""
    )
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>"
        f'<header><h1>{_e(title)}</h1><p class="meta">{meta}</p>{unreadable}</header>'
        f"<main>{sections}</main></body></html>\n"
    )
    return Report(html=page, warnings=warnings, results=n, configurations=len(groups))


def write_report(
    source: str | Path | ResultSet,
    output: str | Path,
    *,
    max_telemetry: int = 6,
    title: str | None = None,
) -> Report:
    """Write the report of a directory (or of results already loaded) to ``output``, atomically."""
    found = source if isinstance(source, ResultSet) else load_results(source)
    report = build_report(found, max_telemetry=max_telemetry, title=title)
    atomic_write_text(output, report.html)
    return report
