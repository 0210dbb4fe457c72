"""Study records: each run's status (the manifest) and statistics across cycles."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from llenergymeasure.domain.base import DomainModel
from llenergymeasure.domain.quality import QualityMetrics
from llenergymeasure.domain.stats import confidence_interval, mean, stdev

RunStatus = Literal["pending", "running", "completed", "failed"]

STUDY_SCHEMA_VERSION = "1.0"


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


class StudyManifest(DomainModel):
    """The study's state on disk, rewritten atomically at every change of a run's status."""

    schema_version: str = STUDY_SCHEMA_VERSION
    name: str
    study_hash: str
    study_config: dict[str, Any]
    created_at: datetime
    runs: list[RunRecord]


class MetricSummary(DomainModel):
    """Mean, sample standard deviation and 95% t confidence interval over cycles."""

    n: int = Field(ge=0)
    mean: float
    std: float = Field(ge=0)
    ci95_low: float
    ci95_high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> MetricSummary:
        """Summary of the values (a single value has a zero-width interval)."""
        low, high = confidence_interval(values, 0.95) if values else (0.0, 0.0)
        return cls(
            n=len(values), mean=mean(values), std=stdev(values), ci95_low=low, ci95_high=high
        )

    @property
    def half_width(self) -> float:
        """Half the interval's width (the x of ``mean +- x``)."""
        return (self.ci95_high - self.ci95_low) / 2.0


class ConfigurationSummary(DomainModel):
    """Statistics of one configuration across its completed cycles."""

    config_index: int = Field(ge=0)
    config_hash: str
    overrides: dict[str, Any] = Field(default_factory=dict)
    completed: int = Field(ge=0)
    failed: int = Field(ge=0)
    energy_per_output_token_j: MetricSummary
    tokens_per_second: MetricSummary
    ttft_p50_ms: MetricSummary
    quality: QualityMetrics | None = Field(
        default=None,
        description="Quality of the configuration (its first completed run that measured it); "
        "the intervals are the run's block-bootstrap intervals.",
    )


class StudyResult(DomainModel):
    """What a study produced: every run's record and per-configuration statistics."""

    schema_version: str = STUDY_SCHEMA_VERSION
    name: str
    study_hash: str
    directory: str
    runs: list[RunRecord]
    summaries: list[ConfigurationSummary]

    @property
    def completed(self) -> int:
        return sum(r.status == "completed" for r in self.runs)

    @property
    def failed(self) -> int:
        return sum(r.status == "failed" for r in self.runs)
