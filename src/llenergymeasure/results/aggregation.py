"""Late aggregation: one ExperimentResult from the raw per-process results.

Energy is summed per device and in total, never averaged; tokens are summed; wall time runs
from the first process's start to the last one's end, and throughput is over that wall time;
latency percentiles come from the pooled raw samples; throttle flags are OR-ed and throttled
intervals put on the first window's start, their union the duration; warmup results
are kept per process; FLOPs are summed; NormalisedMetrics are recomputed from the totals.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llenergymeasure.domain.compute import ComputeMetrics
from llenergymeasure.domain.energy import EnergyMetrics
from llenergymeasure.domain.inference import InferenceMetrics
from llenergymeasure.domain.metrics import NormalisedMetrics, ThermalThrottleInfo
from llenergymeasure.domain.results import EnvironmentSnapshot, ExperimentResult, RawProcessResult
from llenergymeasure.errors import LlemError, ResultFileError
from llenergymeasure.results.footprint import footprint
from llenergymeasure.results.io import load_model, load_process_result, save_result
from llenergymeasure.results.layout import (
    CONFIG_FILENAME,
    ENVIRONMENT_FILENAME,
    RESULT_FILENAME,
    done_marker,
    process_filename,
)


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
        adjusted_energy_j=energy.adjusted_energy_j,
    )
    all_warnings = list(dict.fromkeys([*warnings, *(w for p in procs for w in p.warnings)]))
    result = ExperimentResult(
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
        thermal=ThermalThrottleInfo.merge(
            (p.thermal for p in procs),
            [(p.start_time - start).total_seconds() for p in procs],  # one time origin
        ),
        warmup=[p.warmup for p in procs if p.warmup is not None],
        warnings=all_warnings,
        quality=next((p.quality for p in procs if p.quality is not None), None),
        task_accuracy=next((p.task_accuracy for p in procs if p.task_accuracy), None),
        process_results=list(procs),
    )
    return footprint(result)  # carbon and cost: views on the figures above


def window_overlap(process_results: Sequence[RawProcessResult]) -> float:
    """Time all windows share over the time any window covers (1.0 for one process)."""
    if len(process_results) < 2:
        return 1.0
    shared = (
        min(p.end_time for p in process_results) - max(p.start_time for p in process_results)
    ).total_seconds()
    spanned = (
        max(p.end_time for p in process_results) - min(p.start_time for p in process_results)
    ).total_seconds()
    return max(0.0, shared) / spanned if spanned > 0 else 1.0


def check_processes(
    process_results: Sequence[RawProcessResult], expected: int, *, min_overlap: float = 0.5
) -> list[str]:
    """Problems that make an aggregate untrustworthy (each a sentence), empty when none."""
    problems: list[str] = []
    indices = sorted(p.process_index for p in process_results)
    missing = sorted(set(range(expected)) - set(indices))
    if missing:
        problems.append(f"process(es) {missing} of {expected} missing")
    duplicated = sorted({i for i in indices if indices.count(i) > 1})
    if duplicated:
        problems.append(f"process index(es) {duplicated} present more than once")
    hashes = sorted({p.config_hash for p in process_results})
    if len(hashes) > 1:
        problems.append(f"processes disagree on the config hash: {hashes}")
    uids = [d.uid for p in process_results for d in p.energy.devices]
    twice = sorted({u for u in uids if uids.count(u) > 1})
    if twice:
        problems.append(f"device(s) measured by more than one process: {twice}")
    overlap = window_overlap(process_results)
    if overlap < min_overlap:
        problems.append(
            f"measurement windows overlap by {overlap:.0%} (< {min_overlap:.0%}); "
            "throughput over wall time would be misleading"
        )
    return problems


def load_process_results(
    directory: Path, expected: int
) -> tuple[list[RawProcessResult], list[str]]:
    """The complete process results in an experiment directory, and why any is missing."""
    results: list[RawProcessResult] = []
    problems: list[str] = []
    for index in range(expected):
        path = directory / process_filename(index)
        if not path.exists():
            problems.append(f"{path} is missing (process {index} did not finish)")
            continue
        if not (directory / done_marker(index)).exists():
            problems.append(f"{path} is incomplete (no {done_marker(index)} marker)")
            continue
        try:
            results.append(load_process_result(path))
        except ResultFileError as exc:
            problems.append(str(exc))
    return results, problems


def aggregate_directory(directory: str | Path, *, allow_partial: bool = False) -> ExperimentResult:
    """Re-aggregate an experiment directory from its raw process files; writes result.json.

    Every check failure is an error naming the file or the processes, or with
    ``allow_partial`` a warning in the result.
    """
    directory = Path(directory)
    config_path = directory / CONFIG_FILENAME
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultFileError(config_path, "missing: not an experiment directory") from None
    except (OSError, ValueError) as exc:
        raise ResultFileError(config_path, f"unreadable ({exc})") from None
    environment = load_model(directory / ENVIRONMENT_FILENAME, EnvironmentSnapshot)
    expected = int(config.get("processes", 1)) if isinstance(config, dict) else 1
    found, problems = load_process_results(directory, expected)
    if found:
        problems += [p for p in check_processes(found, expected) if "missing" not in p]
    if problems and not allow_partial:
        raise LlemError(
            f"cannot aggregate {directory}: "
            + "; ".join(problems)
            + " (use --allow-partial to aggregate what is there, with a warning)"
        )
    if not found:
        raise LlemError(f"cannot aggregate {directory}: no complete process result")
    warnings = [f"partial aggregate: {p}" for p in problems]
    result = aggregate(found, config=config, environment=environment, warnings=warnings)
    save_result(result, directory / RESULT_FILENAME)
    return result
