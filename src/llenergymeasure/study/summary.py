"""Statistics across cycles, per configuration of a study (computed by ConfigurationStats)."""

from __future__ import annotations

from collections.abc import Sequence

from llenergymeasure.domain.results import ExperimentResult
from llenergymeasure.domain.study import ConfigurationStats, ConfigurationSummary, RunRecord


def summarise(
    records: Sequence[RunRecord], results: dict[str, ExperimentResult]
) -> list[ConfigurationSummary]:
    """One summary per configuration, over the cycles that completed."""
    summaries = []
    for index in sorted({r.config_index for r in records}):
        mine = [r for r in records if r.config_index == index]
        done = [results[r.run_id] for r in mine if r.run_id in results]
        stats = ConfigurationStats.of(done)
        summaries.append(
            ConfigurationSummary(
                config_index=index,
                config_hash=mine[0].config_hash,
                overrides=mine[0].overrides,
                completed=len(done),
                failed=sum(r.status == "failed" for r in mine),
                **dict(stats),
            )
        )
    return summaries
