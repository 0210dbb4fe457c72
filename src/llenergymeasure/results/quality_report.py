"""The report's energy-against-quality section: J per output token vs perplexity degradation.

One point per configuration that measured quality; the Pareto front (no other configuration is
both cheaper per token and less degraded) is marked, so the cheapest configuration that is good
enough can be read off.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llenergymeasure.domain.quality import QualityMetrics
from llenergymeasure.results.groups import ConfigGroup


def pareto_front(points: Sequence[tuple[float, float]]) -> set[int]:
    """Indices of the points no other point dominates (lower-or-equal in both, lower in one)."""
    front = set()
    for i, (x, y) in enumerate(points):
        dominated = any(
            (ox <= x and oy <= y) and (ox < x or oy < y)
            for j, (ox, oy) in enumerate(points)
            if j != i
        )
        if not dominated:
            front.add(i)
    return front


def group_quality(group: ConfigGroup) -> QualityMetrics | None:
    """The configuration's quality (from its first result that measured it)."""
    return next((m.result.quality for m in group.members if m.result.quality is not None), None)


def quality_groups(groups: Sequence[ConfigGroup]) -> list[tuple[ConfigGroup, QualityMetrics]]:
    """The configurations that measured quality, with their quality."""
    found = [(g, group_quality(g)) for g in groups]
    return [(g, q) for g, q in found if q is not None]


def energy_quality_png(pairs: Sequence[tuple[ConfigGroup, QualityMetrics]]) -> bytes:
    """J/token (mean, 95% CI) against perplexity degradation (95% bootstrap CI), front marked."""
    from llenergymeasure.results.plots import _new_figure, _png

    figure = _new_figure(8.0, 5.0)
    ax = figure.subplots()
    xs = [q.perplexity_degradation * 100 for _, q in pairs]
    energy = [g.energy_per_token for g, _ in pairs]
    ys = [e.mean for e in energy]
    front = pareto_front(list(zip(xs, ys, strict=True)))
    for i, ((group, q), x, y, e) in enumerate(zip(pairs, xs, ys, energy, strict=True)):
        on_front = i in front
        ax.errorbar(
            [x],
            [y],
            xerr=[
                [x - q.perplexity_degradation_ci.low * 100],
                [q.perplexity_degradation_ci.high * 100 - x],
            ],
            yerr=_yerr(y, e),
            fmt="o",
            color="#d62728" if on_front else "#1f77b4",
            markersize=8 if on_front else 6,
            capsize=3,
        )
        ax.annotate(group.label, (x, y), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ordered = sorted((xs[i], ys[i]) for i in front)
    if len(ordered) > 1:
        ax.step(
            [p[0] for p in ordered],
            [p[1] for p in ordered],
            where="post",
            color="#d62728",
            linestyle="--",
            linewidth=1,
            label="Pareto front",
        )
        ax.legend(loc="best", fontsize=8)
    ax.axvline(0.0, color="grey", linewidth=0.8, alpha=0.6)
    ax.set_xlabel("perplexity degradation vs reference (%)")
    ax.set_ylabel("J per output token")
    ax.grid(alpha=0.3)
    ax.set_title("energy against quality (red: Pareto front)", fontsize=10)
    return _png(figure)


def _yerr(y: float, e: Any) -> list[list[float]]:
    """Whiskers of the J/token interval; none when it is unknown (a single result)."""
    if e.ci95_low is None or e.ci95_high is None:
        return [[0.0], [0.0]]
    return [[y - e.ci95_low], [e.ci95_high - y]]


def _energy_text(e: Any) -> str:
    if e.ci95_low is None or e.ci95_high is None:
        return f"{e.mean:.4g} (n={e.n}, no interval)"
    return f"{e.mean:.4g} [{e.ci95_low:.4g}, {e.ci95_high:.4g}]"


def quality_rows(pairs: Sequence[tuple[ConfigGroup, QualityMetrics]]) -> list[tuple[str, ...]]:
    """Table rows: configuration, J/token, perplexity, degradation, KL, top-1, on the front."""
    from llenergymeasure.results.quality_view import interval_text

    xs = [(q.perplexity_degradation, g.energy_per_token.mean) for g, q in pairs]
    front = pareto_front(xs)
    rows = []
    for i, (g, q) in enumerate(pairs):
        e = g.energy_per_token
        rows.append(
            (
                g.label,
                _energy_text(e),
                interval_text(q.perplexity, q.perplexity_ci),
                interval_text(q.perplexity_degradation, q.perplexity_degradation_ci, True),
                interval_text(q.mean_kl_nats, q.mean_kl_ci),
                interval_text(q.top1_agreement, q.top1_agreement_ci, True),
                "yes" if i in front else "",
            )
        )
    return rows


QUALITY_HEADERS = (
    "configuration",
    "J/out tok [95% CI]",
    "perplexity",
    "degradation",
    "mean KL (nats)",
    "top-1 agreement",
    "Pareto",
)


def quality_caption(pairs: Sequence[tuple[ConfigGroup, QualityMetrics]]) -> str:
    """How the figures were obtained, from the first configuration's quality record."""
    q = pairs[0][1]
    return (
        f"Quality on {q.text.source}:{q.text.name} (sha256 {q.text.sha256[:12]}), "
        f"{q.tokens_evaluated} tokens, windows of {q.window_tokens} with stride "
        f"{q.stride_tokens}, against the reference {q.reference.dtype}; measured outside the "
        "energy window. Quality intervals: 95% block bootstrap "
        f"({q.block_tokens}-token blocks); J/token: mean over the configuration's results with "
        "its 95% Student-t interval. A configuration is on the Pareto front when no other is "
        "both cheaper per token and less degraded."
    )
