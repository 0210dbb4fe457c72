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
from llenergymeasure.errors import ResultFileError
from llenergymeasure.results import plots
from llenergymeasure.results.collection import ResultSet, load_results
from llenergymeasure.results.groups import CI_LEVEL, ConfigGroup, MetricSummary, group_by_config
from llenergymeasure.results.io import atomic_write_text
from llenergymeasure.results.serving_report import section_html
from llenergymeasure.results.telemetry import load_telemetry
from llenergymeasure.results.views import fmt, throttle_causes, throttle_text

#: (id, heading) of every section, in page order; tests check each is present.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("energy-throughput", "Energy per output token and throughput per configuration"),
    ("batch-size", "Energy per output token against batch size"),
    ("serving", "Serving: energy and latency against request rate"),
    ("telemetry", "Power and temperature over time"),
    ("warmup", "Warmup convergence"),
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


def _ci(summary: MetricSummary) -> str:
    if summary.n < 2:
        return fmt(summary.mean)
    return f"{fmt(summary.mean)} ± {fmt(summary.half_width)}"


def _energy_throughput(groups: Sequence[ConfigGroup]) -> str:
    rows = []
    for g in groups:
        e, t = g.energy_per_token, g.tokens_per_second
        rows.append(
            (
                g.label,
                str(e.n),
                _ci(e),
                f"[{fmt(e.ci95_low)}, {fmt(e.ci95_high)}]",
                _ci(t),
                fmt(t.std),
            )
        )
    headers = ("configuration", "n", "J/out tok", f"{CI_LEVEL:.0%} CI", "tok/s", "tok/s std")
    caption = (
        "J per output token: raw energy of all measured devices (not idle-adjusted) / generated "
        f"tokens. Bars: mean over the configuration's results; whiskers: {CI_LEVEL:.0%} "
        "Student-t confidence interval of the mean (shown when n ≥ 2); dots: single results."
    )
    return (
        _img(plots.energy_throughput_png(groups), "J per output token and tokens per second")
        + f"<p>{_e(caption)}</p>"
        + _table(headers, rows, numeric={1, 2, 3, 4, 5})
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
    converged = sum(1 for r in with_warmup if r.warmup_converged)
    text = _img(png, "warmup CV per iteration against the target")
    text += (
        f"<p>Warmup converged (latency CV below the target) in {converged} of "
        f"{len(with_warmup)} result(s) with warmup.</p>"
    )
    return text


def _provenance(groups: Sequence[ConfigGroup]) -> str:
    headers = (
        "experiment",
        "configuration",
        "energy method",
        "energy confidence",
        "idle baseline",
        "FLOPs method",
        "FLOPs confidence",
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
                    r.energy.baseline_method,
                    r.compute.flops.method,
                    r.compute.flops.confidence,
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
        if r.warmup_converged is False:
            lines.append(f"{r.experiment_id}: warmup did not converge")
        if r.inference.output_tokens == 0:
            lines.append(f"{r.experiment_id}: generated no tokens; left out of J per token")
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
        "batch-size": _batch_size(groups),
        "serving": section_html(found.results),
        "telemetry": _telemetry(groups, max_telemetry, notes),
        "warmup": _warmup(groups),
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
