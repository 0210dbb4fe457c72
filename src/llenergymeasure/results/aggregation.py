"""Late aggregation: one ExperimentResult from the raw per-process results.

Energy is summed per device and in total, never averaged; tokens are summed; wall time runs
from the first process's start to the last one's end, and throughput is over that wall time;
latency percentiles come from the pooled raw samples; throttle flags are OR-ed; warmup results
are kept per process; FLOPs are summed; NormalisedMetrics are recomputed from the totals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llenergymeasure.domain.compute import ComputeMetrics
from llenergymeasure.domain.energy import EnergyMetrics
from llenergymeasure.domain.inference import InferenceMetrics
from llenergymeasure.domain.metrics import NormalisedMetrics, ThermalThrottleInfo
from llenergymeasure.domain.results import EnvironmentSnapshot, ExperimentResult, RawProcessResult


def aggregate(
    process_results: Sequence[RawProcessResult],
    *,
    config: dict[str, Any],
    environment: EnvironmentSnapshot,
    warnings: Sequence[str] = (),
) -> ExperimentResult:
    """Combine the processes of one experiment (order does not matter)."""
    if not process_results:
        raise ValueError("no process results to aggregate")
    procs = sorted(process_results, key=lambda p: p.process_index)
    first = procs[0]
    start = min(p.start_time for p in procs)
    end = max(p.end_time for p in procs)
    wall_sec = (end - start).total_seconds()
    if len(procs) == 1:
        # One process: its own window is the experiment's; keep its figures exactly.
        energy, inference, compute = first.energy, first.inference, first.compute
    else:
        energy = EnergyMetrics.combine((p.energy for p in procs), wall_sec)
        inference = InferenceMetrics.combine((p.inference for p in procs), wall_sec)
        compute = ComputeMetrics.combine(
            (p.compute for p in procs), wall_sec, inference.output_tokens
        )
    normalised = NormalisedMetrics.from_metrics(
        inference.output_tokens,
        energy.total_energy_j,
        energy.mean_power_w,
        inference.inference_time_sec,
        compute.flops.value,
        compute.precision,
    )
    all_warnings = list(dict.fromkeys([*warnings, *(w for p in procs for w in p.warnings)]))
    return ExperimentResult(
        experiment_id=first.experiment_id,
        config=config,
        config_hash=first.config_hash,
        environment=environment,
        start_time=start,
        end_time=end,
        energy=energy,
        inference=inference,
        compute=compute,
        normalised=normalised,
        thermal=ThermalThrottleInfo.merge(p.thermal for p in procs),
        warmup=[p.warmup for p in procs if p.warmup is not None],
        warnings=all_warnings,
        process_results=list(procs),
    )
