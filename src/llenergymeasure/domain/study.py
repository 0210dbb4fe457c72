"""Study records: each run's status (the manifest) and statistics across cycles."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator

from llenergymeasure.domain.base import DomainModel
from llenergymeasure.domain.quality import QualityMetrics, TaskAccuracy
from llenergymeasure.domain.results import ExperimentResult
from llenergymeasure.domain.stats import confidence_interval, mean, stdev

RunStatus = Literal["pending", "submitted", "running", "completed", "failed"]

#: 1.1 added where each run executed (executor, job id, host, GPUs) and the execution summary.
#: 1.2: a metric over fewer than two runs has no std/interval (None); runs without output
#: tokens are counted in ``without_output_tokens``. 1.3: each run record keeps the SHA-256 of
#: the result.json the parent validated (``result_sha256``). 1.4: each configuration's summary
#: carries its lm-eval task accuracy (``task_accuracy``). Older files still load.
STUDY_SCHEMA_VERSION = "1.4"


class RunRecord(DomainModel):
    """One run of a study and what became of it."""

    run_id: str
    config_index: int = Field(ge=0)
    cycle: int = Field(ge=0)
    config_hash: str
    overrides: dict[str, Any] = Field(default_factory=dict)
    status: RunStatus = "pending"
    attempts: int = Field(default=0, ge=0, description="Times the run was started.")
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    executor: str | None = Field(default=None, description="local, slurm or ray.")
    job_id: str | None = Field(
        default=None, description="Slurm job id or Ray actor name of the latest attempt."
    )
    submitted_at: datetime | None = None
    host: str | None = Field(default=None, description="Host the run's process ran on.")
    gpus: str | None = Field(
        default=None, description="CUDA_VISIBLE_DEVICES the run saw (None: not set)."
    )
    result_sha256: str | None = Field(
        default=None,
        description="SHA-256 of the run's result.json when the parent last validated it in "
        "full (schema and config hash); a resumed study trusts a file with these exact bytes "
        "without parsing it again, and validates any other file in full.",
    )
    result_schema_version: str | None = Field(
        default=None,
        description="The result schema version of the code that validated ``result_sha256``'s "
        "file; a file validated under another version is validated again.",
    )


class StudyManifest(DomainModel):
    """The study's state on disk, rewritten atomically at every change of a run's status."""

    schema_version: str = STUDY_SCHEMA_VERSION
    name: str
    study_hash: str
    study_config: dict[str, Any]
    created_at: datetime
    runs: list[RunRecord]


class MetricSummary(DomainModel):
    """Mean, sample standard deviation and 95% t confidence interval over cycles.

    The spread and the interval need at least two values: with one they are None (shown as
    "n/a (1 run)"), never a standard deviation of 0 or an interval of zero width, which would
    claim a certainty one run cannot give. With no values the mean is None too.
    """

    n: int = Field(ge=0)
    mean: float | None = Field(description="Arithmetic mean; None without values.")
    std: float | None = Field(
        default=None, ge=0, description="Sample standard deviation (n - 1); None for n < 2."
    )
    ci95_low: float | None = Field(default=None, description="95% t interval; None for n < 2.")
    ci95_high: float | None = Field(default=None, description="95% t interval; None for n < 2.")

    @model_validator(mode="before")
    @classmethod
    def _no_spread_below_two(cls, data: object) -> object:
        """Files of schema 1.0 stored std 0 and [mean, mean] for one run: read them as None."""
        if isinstance(data, dict) and isinstance(data.get("n"), int) and data["n"] < 2:
            data = {**data, "std": None, "ci95_low": None, "ci95_high": None}
            if data["n"] == 0:
                data["mean"] = None
        return data

    @model_validator(mode="after")
    def _spread_from_two_values(self) -> MetricSummary:
        if self.n >= 2 and None in (self.mean, self.std, self.ci95_low, self.ci95_high):
            raise ValueError(f"n={self.n}: mean, std, ci95_low and ci95_high are required")
        return self

    @classmethod
    def of(cls, values: Sequence[float]) -> MetricSummary:
        """Summary of the values (no spread or interval for fewer than two)."""
        n = len(values)
        if n < 2:
            return cls(n=n, mean=mean(values) if values else None)
        low, high = confidence_interval(values, 0.95)
        return cls(n=n, mean=mean(values), std=stdev(values), ci95_low=low, ci95_high=high)

    @property
    def half_width(self) -> float | None:
        """Half the interval's width (the x of ``mean +- x``); None for n < 2."""
        if self.ci95_low is None or self.ci95_high is None:
            return None
        return (self.ci95_high - self.ci95_low) / 2.0


#: The rule for runs that generated no output tokens, stated once (used by the study summary,
#: the report and their warnings).
NO_OUTPUT_RULE = (
    "a run that generated no output tokens has no per-token figures: it is left out of "
    "J per output token and TTFT (and counted), and kept in tokens per second, where 0 is "
    "what it achieved"
)


class ConfigurationStats(DomainModel):
    """Statistics of one configuration over its results (cycles): the one place computing them.

    Both the study summary (``study_summary.json``, the CLI table) and the report's groups are
    built by :meth:`of`, so they never disagree. See ``NO_OUTPUT_RULE``.
    """

    energy_per_output_token_j: MetricSummary = Field(description="Raw joules per output token.")
    adjusted_energy_per_output_token_j: MetricSummary = Field(
        default_factory=lambda: MetricSummary(n=0, mean=None),
        description="Idle-adjusted joules per output token (runs with a baseline).",
    )
    tokens_per_second: MetricSummary
    ttft_p50_ms: MetricSummary
    tpot_p50_ms: MetricSummary = Field(
        default_factory=lambda: MetricSummary(n=0, mean=None),
        description="Median time per output token of each run (runs that report it).",
    )
    without_output_tokens: int = Field(
        default=0, ge=0, description="Runs that generated no tokens (left out of per-token)."
    )

    @classmethod
    def of(cls, results: Sequence[ExperimentResult]) -> ConfigurationStats:
        """The statistics of these results (one configuration, any number of cycles)."""
        producing = [r for r in results if r.inference.output_tokens > 0]
        return cls(
            energy_per_output_token_j=MetricSummary.of(
                [r.energy_per_output_token_j for r in producing]
            ),
            adjusted_energy_per_output_token_j=MetricSummary.of(
                [
                    r.adjusted_energy_per_output_token_j
                    for r in producing
                    if r.adjusted_energy_per_output_token_j is not None
                ]
            ),
            tokens_per_second=MetricSummary.of([r.inference.tokens_per_second for r in results]),
            ttft_p50_ms=MetricSummary.of([r.inference.ttft.p50_ms for r in producing]),
            tpot_p50_ms=MetricSummary.of(
                [r.inference.tpot.p50_ms for r in producing if r.inference.tpot.n > 0]
            ),
            without_output_tokens=len(results) - len(producing),
        )


class ConfigurationSummary(ConfigurationStats):
    """Statistics of one configuration across its completed cycles."""

    config_index: int = Field(ge=0)
    config_hash: str
    overrides: dict[str, Any] = Field(default_factory=dict)
    completed: int = Field(ge=0)
    failed: int = Field(ge=0)
    quality: QualityMetrics | None = Field(
        default=None,
        description="Quality of the configuration (its first completed run that measured it); "
        "the intervals are the run's block-bootstrap intervals.",
    )
    task_accuracy: TaskAccuracy | None = Field(
        default=None,
        description="lm-eval task accuracy of the configuration (its first completed run that "
        "measured it); the standard errors are lm-eval's.",
    )


class ExecutionSummary(DomainModel):
    """Where and how concurrently a study's runs executed."""

    executor: str
    max_concurrent: int = Field(ge=0, description="Most runs executing at the same moment.")
    hosts: dict[str, int] = Field(default_factory=dict, description="Completed runs per host.")
    shared_host_runs: list[str] = Field(
        default_factory=list,
        description=(
            "Runs that overlapped in time with another run on the same host: their host "
            "CPU/RAM energy includes the other run's load."
        ),
    )


class StudyResult(DomainModel):
    """What a study produced: every run's record and per-configuration statistics."""

    schema_version: str = STUDY_SCHEMA_VERSION
    name: str
    study_hash: str
    directory: str
    runs: list[RunRecord]
    summaries: list[ConfigurationSummary]
    execution: ExecutionSummary | None = None

    @property
    def completed(self) -> int:
        return sum(r.status == "completed" for r in self.runs)

    @property
    def failed(self) -> int:
        return sum(r.status == "failed" for r in self.runs)
