"""Parts 3 and 4 of the GPU check: sizing, `llem run` windows, harness vs bare `generate`.

- ``calibrate``: times one batch of bare ``generate`` per (dtype, batch size) in this process,
  so each `llem run` gets enough prompts for a window of the wanted length;
- ``harness_vs_bare``: tokens/s of llem's measured window against a bare ``generate`` loop,
  alternated in one process (as benchmarks/harness_overhead.py does);
- ``llem_run``: one `llem run` subprocess and the figures of its result, read back through
  llem's own loaders (result columns, telemetry file).
"""

from __future__ import annotations

import math
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bare import bare_tokens_per_second, prepare


@dataclass(frozen=True)
class Workload:
    """What every run of the check generates."""

    model: str
    input_tokens: int
    new_tokens: int
    baseline_sec: float

    def config(self, dtype: str, batch_size: int, n_prompts: int, **extra: Any) -> dict[str, Any]:
        return {
            "model": self.model,
            "dtype": dtype,
            "batch_size": batch_size,
            "n_prompts": n_prompts,
            "prompts": {"source": "synthetic", "synthetic_input_tokens": self.input_tokens},
            "max_input_tokens": self.input_tokens,
            "max_output_tokens": self.new_tokens,
            "fixed_length": True,
            "warmup": {"mode": "fixed", "n": 2},
            "baseline_sec": self.baseline_sec,
            "flops_method": "architecture",
            **extra,
        }


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _free() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def calibrate(
    work: Workload, dtype: str, batch_sizes: Sequence[int], calib_tokens: int
) -> tuple[dict[int, float], tuple[Any, tuple[Any, Any], int]]:
    """Seconds of bare generate per batch at each batch size (scaled to ``new_tokens``), and the
    loaded (model, one padded batch of the largest size, pad id) for reuse."""
    from llenergymeasure.config.experiment import ExperimentConfig

    biggest = max(batch_sizes)
    config = ExperimentConfig(**work.config(dtype, biggest, biggest))
    model, batches, pad_id = prepare(config)
    input_ids, mask = batches[0]
    seconds: dict[int, float] = {}
    for bs in batch_sizes:
        batch = [(input_ids[:bs], mask[:bs])]
        bare_tokens_per_second(model, batch, pad_id, calib_tokens)  # warm
        _sync()
        start = time.perf_counter()
        bare_tokens_per_second(model, batch, pad_id, calib_tokens)
        per_step = (time.perf_counter() - start) / calib_tokens
        seconds[bs] = per_step * work.new_tokens
    return seconds, (model, (input_ids, mask), pad_id)


def harness_vs_bare(
    work: Workload,
    loaded: tuple[Any, tuple[Any, Any], int],
    dtype: str,
    batch_size: int,
    n_batches: int,
    rounds: int,
    out_dir: Path,
) -> dict[str, Any]:
    """Alternate bare generate and llem's in-process harness (same model, dtype, batch size,
    prompt length and output length); the median tokens/s ratio harness / bare."""
    from llenergymeasure.config.experiment import ExperimentConfig
    from llenergymeasure.measure.experiment import run_experiment

    model, (input_ids, mask), pad_id = loaded
    slices = max(1, input_ids.shape[0] // batch_size)
    batches = [
        (
            input_ids[(i % slices) * batch_size : (i % slices + 1) * batch_size],
            mask[(i % slices) * batch_size : (i % slices + 1) * batch_size],
        )
        for i in range(n_batches)
    ]
    config = ExperimentConfig(
        **work.config(
            dtype, batch_size, batch_size * n_batches, baseline_sec=0, output_dir=str(out_dir)
        )
    )
    rows = []
    for _ in range(rounds):
        bare = bare_tokens_per_second(model, batches, pad_id, work.new_tokens)
        harness = run_experiment(config).inference.tokens_per_second
        rows.append({"bare_tok_s": bare, "harness_tok_s": harness, "ratio": harness / bare})
        _free()
    return {
        "rounds": rows,
        "median_ratio": statistics.median(r["ratio"] for r in rows),
        "batch_size": batch_size,
        "dtype": dtype,
        "n_prompts": config.n_prompts,
    }


def free_memory() -> None:
    """Give the memory of dropped models back (call after dropping every reference)."""
    _free()


def n_batches_for(window_sec: float, sec_per_batch: float, margin: float = 1.15) -> int:
    """Batches for a window of at least ``window_sec`` (with a margin), at least 2."""
    return max(2, math.ceil(window_sec * margin / max(sec_per_batch, 1e-6)))


def llem_run(
    llem: Sequence[str], config: dict[str, Any], name: str, out_dir: Path, timeout_sec: float
) -> dict[str, Any]:
    """`llem run CONFIG` in a subprocess; the run's figures (or its error)."""
    configs, logs = out_dir / "configs", out_dir / "logs"
    configs.mkdir(exist_ok=True)
    logs.mkdir(exist_ok=True)
    path = configs / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**config, "output_dir": str(out_dir / "runs"), "name": name}))
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [*llem, "run", str(path)], capture_output=True, text=True, timeout=timeout_sec
        )
    except subprocess.TimeoutExpired as exc:
        (logs / f"{name}.log").write_text(f"timed out after {timeout_sec:.0f} s\n{exc.stdout}")
        return {"name": name, "error": f"timed out after {timeout_sec:.0f} s"}
    (logs / f"{name}.log").write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"name": name, "error": f"exit {proc.returncode}: {last}", "wall_sec": wall}
    return {"name": name, "wall_sec": wall, **read_run(out_dir / "runs", name)}


def telemetry_gpu_energy(path: Path) -> tuple[float | None, int]:
    """GPU energy (J) over the measurement window from the telemetry file's power samples (the
    writer's own columns and window edges), and the number of GPU samples in the file."""
    import pyarrow.parquet as pq
    from _gpu_analysis import integrate_clipped

    from llenergymeasure.energy.timeseries import read_parquet_metadata

    meta = read_parquet_metadata(path)
    edges = [w for w in meta["windows"] if w["label"] == "measurement"]
    data = pq.read_table(path, columns=["monotonic_sec", "kind", "power_w"]).to_pydict()
    rows = zip(data["monotonic_sec"], data["kind"], data["power_w"], strict=True)
    points = sorted((t, w) for t, kind, w in rows if kind == "gpu" and w is not None)
    if not edges or not points:
        return None, len(points)
    t0, t1 = edges[0]["start_monotonic_sec"], edges[0]["end_monotonic_sec"]
    # the sampler starts just before the window and stops just after it: hold the nearest
    # reading flat to an edge that no sample brackets
    first, last = points[0], points[-1]
    padded = [(min(t0, first[0]), first[1]), *points, (max(t1, last[0]), last[1])]
    return integrate_clipped(padded, t0, t1), len(points)


def read_run(runs_dir: Path, name: str) -> dict[str, Any]:
    """Figures of the result named ``name``, through llem's result loaders and columns."""
    from llenergymeasure.results.collection import load_results
    from llenergymeasure.results.records import result_record
    from llenergymeasure.results.telemetry import load_telemetry

    found = [item for item in load_results(runs_dir) if item.result.config.get("name") == name]
    if len(found) != 1:
        return {"error": f"{len(found)} results named {name} under {runs_dir}"}
    item = found[0]
    result = item.result
    record = result_record(result)
    gpu_j = record["gpu_energy_j"]
    tokens = record["output_tokens"] or 0
    gpu_devices = [d for d in result.energy.devices if d.kind == "gpu"]
    name_in_result = result.process_results[0].timeseries_file
    path = item.directory / name_in_result if name_in_result else None
    telemetry_j, telemetry_rows = (
        telemetry_gpu_energy(path) if path is not None and path.is_file() else (None, 0)
    )
    report_view = load_telemetry(item)  # what `llem report` draws from the same file
    return {
        "directory": str(item.directory),
        "window_sec": result.energy.duration_sec,
        "record": record,
        "gpu_energy_j": gpu_j,
        "gpu_j_per_token": gpu_j / tokens if gpu_j and tokens else None,
        "gpu_methods": sorted({d.method for d in gpu_devices}),
        "telemetry_file": path is not None and path.is_file(),
        "telemetry_rows": telemetry_rows,
        "telemetry_gpu_j": telemetry_j,
        "report_sees_power": bool(report_view and report_view.has("power_w")),
        "report_notes": report_view.notes if report_view else ["no telemetry file named"],
        "throttle": result.thermal.model_dump() if result.thermal else None,
        "warnings": result.warnings,
    }
