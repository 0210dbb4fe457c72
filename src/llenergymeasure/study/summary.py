"""Statistics across cycles, per configuration of a study (computed by ConfigurationStats)."""

from __future__ import annotations

from collections.abc import Sequence

from llenergymeasure.domain.results import ExperimentResult
from llenergymeasure.domain.study import (
    ConfigurationStats,
    ConfigurationSummary,
    ExecutionSummary,
    RunRecord,
)


def summarise(
    records: Sequence[RunRecord], results: dict[str, ExperimentResult]
) -> list[ConfigurationSummary]:
    """One summary per configuration, over the cycles that completed."""
    by_config: dict[int, list[RunRecord]] = {}
    for r in records:
        by_config.setdefault(r.config_index, []).append(r)
    summaries = []
    for index in sorted(by_config):
        mine = by_config[index]
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
                quality=next((r.quality for r in done if r.quality is not None), None),
                task_accuracy=next(
                    (r.task_accuracy for r in done if r.task_accuracy is not None), None
                ),
            )
        )
    return summaries


def execution_summary(executor: str, records: Sequence[RunRecord]) -> ExecutionSummary:
    """How many runs executed at once, on which hosts, and which ones shared a host."""
    timed = [r for r in records if r.started_at and r.finished_at]
    events = sorted(
        [(r.started_at, 1) for r in timed] + [(r.finished_at, -1) for r in timed],
        key=lambda e: (e[0], e[1]),  # an end before a start at the same instant
    )
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    hosts: dict[str, int] = {}
    for r in records:
        if r.status == "completed" and r.host:
            hosts[r.host] = hosts.get(r.host, 0) + 1
    shared: set[str] = set()
    by_host: dict[str, list[RunRecord]] = {}
    for r in timed:
        by_host.setdefault(r.host or "?", []).append(r)
    for group in by_host.values():
        group.sort(key=lambda r: r.started_at)  # type: ignore[arg-type, return-value]
        latest: RunRecord | None = None  # the run ending last among those started so far
        for r in group:
            if latest is not None and r.started_at < latest.finished_at:  # type: ignore[operator]
                shared.update((r.run_id, latest.run_id))
            if latest is None or r.finished_at > latest.finished_at:  # type: ignore[operator]
                latest = r
    return ExecutionSummary(
        executor=executor,
        max_concurrent=peak,
        hosts=dict(sorted(hosts.items())),
        shared_host_runs=[r.run_id for r in records if r.run_id in shared],
    )
