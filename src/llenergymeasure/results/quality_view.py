"""How the quality section shows: its `results show` table and its rows in `compare`.

The export columns live with every other column in ``records.COLUMNS`` (one definition).
"""

from __future__ import annotations

from llenergymeasure.domain.quality import Interval, QualityMetrics


def interval_text(value: float, ci: Interval, percent: bool = False) -> str:
    """'194.2 [190.1, 198.6]' or, as a share, '3.1% [2.5%, 3.8%]'."""
    if percent:
        return f"{value:.2%} [{ci.low:.2%}, {ci.high:.2%}]"
    return f"{value:.4g} [{ci.low:.4g}, {ci.high:.4g}]"


def quality_rows(q: QualityMetrics) -> list[tuple[str, str, str]]:
    """(figure, value [95% interval], how) rows of the quality section."""
    text = f"{q.text.source}:{q.text.name} sha256 {q.text.sha256[:12]}"
    ref = f"reference {q.reference.dtype}" + (" (cached)" if q.reference.cached else "")
    boot = f"block bootstrap, {q.block_tokens}-token blocks x {q.bootstrap_samples}"
    kl_how = (
        "exact, whole vocabulary"
        if q.kl_method == "exact"
        else f"top-{q.kl_top_k} + tail bucket (lower bound; tail mass {q.reference_tail_mass:.3g})"
    )
    return [
        ("text", text, q.text.revision or ""),
        (
            "tokens evaluated",
            str(q.tokens_evaluated),
            f"{q.windows} windows of {q.window_tokens}, stride {q.stride_tokens}",
        ),
        ("perplexity", interval_text(q.perplexity, q.perplexity_ci), boot),
        (
            "reference perplexity",
            interval_text(q.reference_perplexity, q.reference_perplexity_ci),
            ref,
        ),
        (
            "perplexity degradation",
            interval_text(q.perplexity_degradation, q.perplexity_degradation_ci, percent=True),
            "paired bootstrap" + (" (this is the reference)" if q.is_reference else ""),
        ),
        ("mean KL per token (nats)", interval_text(q.mean_kl_nats, q.mean_kl_ci), kl_how),
        (
            "top-1 agreement",
            interval_text(q.top1_agreement, q.top1_agreement_ci, percent=True),
            "argmax equals the reference's",
        ),
        ("evaluation (s)", f"{q.eval_time_sec:.3g}", f"{q.tokens_per_sec:.4g} tokens/s; {q.note}"),
    ]
