"""How the quality section shows: its `results show` table and its rows in `compare`.

The export columns live with every other column in ``records.COLUMNS`` (one definition).
"""

from __future__ import annotations

from collections.abc import Callable

from llenergymeasure.domain.quality import Interval, QualityMetrics, TaskAccuracy


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


#: Headers of the task accuracy table (``results show``).
TASK_HEADERS = ("task", "metric", "value ± stderr", "documents", "how")


def task_rows(t: TaskAccuracy) -> list[tuple[str, str, str, str, str]]:
    """(task, metric, value ± stderr, documents scored / in the task, how) rows."""
    rows: list[tuple[str, str, str, str, str]] = []
    for score in t.tasks:
        how = (
            f"lm-eval {t.lm_eval_version}, task v{score.version or '?'}, "
            f"{score.num_fewshot}-shot, config sha256 {score.config_sha256[:12]}"
        )
        for m in score.metrics:
            stderr = f" ± {m.stderr:.3f}" if m.stderr is not None else " (no stderr)"
            name = m.name if m.filter == "none" else f"{m.name} ({m.filter})"
            rows.append(
                (
                    score.task,
                    name,
                    f"{m.value:.4f}{stderr}",
                    f"{score.n_samples}/{score.n_samples_total}",
                    how,
                )
            )
    return rows


def task_summary(t: TaskAccuracy) -> str:
    """One cell: 'task metric=value±stderr (n=...)' per task and metric, '; '-joined."""
    parts = []
    for score in t.tasks:
        for m in score.metrics:
            stderr = f"±{m.stderr:.4f}" if m.stderr is not None else ""
            parts.append(f"{score.task} {m.name}={m.value:.4f}{stderr} (n={score.n_samples})")
    return "; ".join(parts)


def task_values(t: TaskAccuracy | None) -> dict[tuple[str, str], tuple[float, float | None]]:
    """(task, metric) -> (value, stderr) of one result's task accuracy ({} when none)."""
    if t is None:
        return {}
    return {(s.task, m.name): (m.value, m.stderr) for s in t.tasks for m in s.metrics}


def task_compare_rows(
    accuracies: list[TaskAccuracy | None], ratio: Callable[[float, float], str]
) -> list[tuple[str, ...]]:
    """Compare rows, one per (task, metric) any result has: value ± stderr (ratio to the first)."""
    per_result = [task_values(t) for t in accuracies]
    keys = list(dict.fromkeys(key for values in per_result for key in values))
    rows: list[tuple[str, ...]] = []
    for key in keys:
        first = per_result[0].get(key)
        cells = []
        for i, values in enumerate(per_result):
            if key not in values:
                cells.append("-")
                continue
            value, stderr = values[key]
            text = f"{value:.4f}" + (f" ± {stderr:.3f}" if stderr is not None else "")
            shown = ratio(value, first[0]) if i and first is not None else ""
            cells.append(f"{text} ({shown})" if shown else text)
        rows.append((f"{key[0]} {key[1]} (lm-eval)", *cells, "higher"))
    return rows
