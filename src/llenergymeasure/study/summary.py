"""Statistics across cycles, per configuration of a study."""

from __future__ import annotations

from collections.abc import Sequence

from llenergymeasure.domain.results import ExperimentResult
from llenergymeasure.domain.study import ConfigurationSummary, MetricSummary, RunRecord


def summarise(
    records: Sequence[RunRecord], results: dict[str, ExperimentResult]
) -> list[ConfigurationSummary]:
    """One summary per configuration, over the cycles that completed."""
    summaries = []
    for index in sorted({r.config_index for r in records}):
        mine = [r for r in records if r.config_index == index]
        done = [results[r.run_id] for r in mine if r.run_id in results]
        summaries.append(
            ConfigurationSummary(
                config_index=index,
                config_hash=mine[0].config_hash,
                overrides=mine[0].overrides,
                completed=len(done),
                failed=sum(r.status == "failed" for r in mine),
                energy_per_output_token_j=MetricSummary.of(
                    [r.energy_per_output_token_j for r in done]
                ),
                tokens_per_second=MetricSummary.of([r.inference.tokens_per_second for r in done]),
                ttft_p50_ms=MetricSummary.of([r.inference.ttft.p50_ms for r in done]),
                quality=next((r.quality for r in done if r.quality is not None), None),
            )
        )
    return summaries
