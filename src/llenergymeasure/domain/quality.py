"""Quality figures measured beside energy: perplexity, its degradation, KL and top-1 agreement.

Measured outside the energy window on a reference text, against a reference configuration of
the same model (see docs/quality.md). Every figure comes with a bootstrap 95% interval over
fixed-size blocks of tokens, and the text and windows it was computed on.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from llenergymeasure.domain.base import DomainModel

TextSource = Literal["builtin", "file", "hf"]


class Interval(DomainModel):
    """A two-sided confidence interval (``level`` 0.95 by default) around a figure."""

    low: float
    high: float
    level: float = Field(default=0.95, gt=0, lt=1)

    @model_validator(mode="after")
    def _ordered(self) -> Interval:
        if self.high < self.low:
            raise ValueError(f"interval high {self.high} is below low {self.low}")
        return self


class TextIdentity(DomainModel):
    """Which text was scored: enough to fetch exactly the same characters again."""

    source: TextSource
    name: str = Field(description="Builtin corpus name, file path, or dataset id.")
    revision: str | None = Field(
        default=None, description="Dataset revision / config and split, or the package version."
    )
    sha256: str = Field(description="SHA-256 of the UTF-8 text as scored (before tokenizing).")
    chars: int = Field(ge=0)


class QualityReference(DomainModel):
    """The configuration the measured model is compared with (same weights, another precision)."""

    dtype: str
    quantization: str = "none"
    cached: bool = Field(description="True when the reference's scores came from the cache.")
    eval_time_sec: float | None = Field(
        default=None, ge=0, description="Time to score the reference (None when cached)."
    )


class QualityMetrics(DomainModel):
    """Quality of the configured model on a reference text, against a reference configuration."""

    method: Literal["sliding_window_nll"] = "sliding_window_nll"
    text: TextIdentity
    window_tokens: int = Field(ge=2, description="Most tokens a forward pass sees.")
    stride_tokens: int = Field(ge=1, description="Start of each window after the previous one.")
    windows: int = Field(ge=1)
    tokens_evaluated: int = Field(ge=1, description="Tokens scored (each exactly once).")
    reference: QualityReference
    is_reference: bool = Field(
        description="The measured configuration is the reference itself (degradation 0)."
    )
    perplexity: float = Field(gt=0)
    perplexity_ci: Interval
    reference_perplexity: float = Field(gt=0)
    reference_perplexity_ci: Interval
    perplexity_degradation: float = Field(
        description="perplexity / reference_perplexity - 1 (0.04 = 4% worse)."
    )
    perplexity_degradation_ci: Interval
    mean_kl_nats: float = Field(ge=0, description="Mean KL(reference || measured) per token.")
    mean_kl_ci: Interval
    kl_method: Literal["exact", "top_k_tail"] = Field(
        description="exact: over the whole vocabulary; top_k_tail: the reference's top k "
        "tokens plus one bucket for the rest, a lower bound of the exact KL."
    )
    kl_top_k: int = Field(ge=1)
    reference_tail_mass: float = Field(
        ge=0, le=1, description="Mean reference probability outside the top k (0 when exact)."
    )
    top1_agreement: float = Field(
        ge=0, le=1, description="Share of tokens whose most likely next token matches."
    )
    top1_agreement_ci: Interval
    block_tokens: int = Field(ge=1, description="Bootstrap block size in tokens.")
    bootstrap_samples: int = Field(ge=1)
    eval_time_sec: float = Field(ge=0, description="Time to score the measured model.")
    tokens_per_sec: float = Field(ge=0, description="tokens_evaluated / eval_time_sec.")
    note: str = Field(
        default="measured outside the energy window; not counted in the inference figures"
    )


class TaskMetric(DomainModel):
    """One metric of one lm-eval task, as lm-eval aggregated it over the task's documents."""

    name: str = Field(description="Metric name as lm-eval reports it, e.g. 'acc', 'acc_norm'.")
    filter: str = Field(default="none", description="lm-eval's filter the metric went through.")
    value: float
    stderr: float | None = Field(
        default=None,
        ge=0,
        description="Standard error from lm-eval (None when it reports none): the standard "
        "error of the mean for mean-aggregated metrics, bootstrap otherwise.",
    )
    higher_is_better: bool | None = None


class TaskScore(DomainModel):
    """One lm-eval task's scores and the identity of exactly what was scored."""

    task: str
    version: str | None = Field(default=None, description="The task's metadata version.")
    n_samples: int = Field(ge=0, description="Documents scored (after any limit).")
    n_samples_total: int = Field(ge=0, description="Documents in the task's evaluation split.")
    num_fewshot: int = Field(ge=0)
    metrics: list[TaskMetric]
    config_sha256: str = Field(description="SHA-256 of the task's resolved lm-eval config.")
    samples_sha256: str | None = Field(
        default=None,
        description="SHA-256 over each scored document's doc, prompt and target hashes, in "
        "document order: equal hashes mean the same prompts and answers were scored.",
    )
    config_source: str | None = Field(default=None, description="The task's YAML file.")


class TaskAccuracy(DomainModel):
    """Benchmark task scores through lm-eval, on the model object llem loaded and measured."""

    method: Literal["lm_eval"] = "lm_eval"
    lm_eval_version: str
    tasks: list[TaskScore]
    limit: int | None = Field(default=None, description="Most documents per task, if limited.")
    batch_size: int = Field(ge=1)
    bootstrap_iters: int = Field(ge=0)
    seed: int
    eval_time_sec: float = Field(ge=0, description="Time to score every task.")
    note: str = Field(
        default="measured outside the energy window; not counted in the inference figures"
    )
