"""Parts 3 and 4 of the GPU check: sizing, `llem run` windows, harness vs bare `generate`.

- ``calibrate``: times bare ``generate`` at two lengths per (dtype, batch size) in this
  process, so each `llem run` gets enough prompts for a window of the wanted length;
- ``harness_vs_bare``: tokens/s of llem's measured window against a bare ``generate`` loop,
  alternated in one process (as benchmarks/harness_overhead.py does);
- ``llem_run``: one `llem run` subprocess and the figures of its result, read back through
  llem's own loaders (result columns, telemetry file).
"""

from __future__ import annotations

import math
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


def free_memory() -> None:
    """Give the memory of dropped models back (call after dropping every reference)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def calibrate(
    work: Workload, dtype: str, batch_sizes: Sequence[int], calib_tokens: int
) -> dict[int, float]:
    """Seconds of bare generate per batch of ``new_tokens`` at each batch size; the model it
    loads is dropped and its memory given back before it returns."""
    from llenergymeasure.config.experiment import ExperimentConfig

    biggest = max(batch_sizes)
    config = ExperimentConfig(**work.config(dtype, biggest, biggest))
    model, batches, pad_id = prepare(config)
    input_ids, mask = batches[0]
    seconds: dict[int, float] = {}
    short = max(1, calib_tokens // 4)
    for bs in batch_sizes:
        batch = [(input_ids[:bs], mask[:bs])]
        bare_tokens_per_second(model, batch, pad_id, calib_tokens)  # warm
        t_short = _timed(model, batch, pad_id, short)
        t_long = _timed(model, batch, pad_id, calib_tokens)
        seconds[bs] = batch_seconds(t_short, short, t_long, calib_tokens, work.new_tokens)
        print(
            f"   calibration {dtype} bs{bs}: {short} new tokens {t_short:.3f} s, "
            f"{calib_tokens} new tokens {t_long:.3f} s -> {seconds[bs]:.3f} s per batch of "
            f"{work.new_tokens}",
            flush=True,
        )
    del model, batches, batch, input_ids, mask
    free_memory()
    return seconds


def _timed(model: Any, batch: list[tuple[Any, Any]], pad_id: int, new_tokens: int) -> float:
    """Seconds of one bare ``generate`` of ``new_tokens`` on ``batch`` (device synchronised)."""
    _sync()
    start = time.perf_counter()
    bare_tokens_per_second(model, batch, pad_id, new_tokens)
    return time.perf_counter() - start


def batch_seconds(
    t_short: float, n_short: int, t_long: float, n_long: int, new_tokens: int
) -> float:
    """Seconds per batch of ``new_tokens`` from two timed lengths: the difference gives the cost
    of one decode step, the rest of the short one is the prefill's. (One length alone, scaled,
    counts the prefill once per ``n_long`` steps: at batch 64 in fp32 on an H200 that made the
    check's windows 10-15% short.) Falls back to plain scaling when noise makes a step free."""
    step = (t_long - t_short) / max(n_long - n_short, 1)
    if step <= 0 or n_long <= n_short:
        return t_long / n_long * new_tokens
    prefill = max(0.0, t_short - n_short * step)
    return prefill + new_tokens * step


def harness_vs_bare(
    work: Workload,
    dtype: str,
    batch_size: int,
    n_batches: int,
    caps_sec: dict[str, float],
    targets: dict[str, float],
    out_dir: Path,
) -> list[Any]:
    """llem's measurement window against a bare ``generate`` loop, paired batch by batch in one
    process on one loaded model (benchmarks/harness_overhead.py's ``Harness``: the window code
    of ``llem run`` with its energy meter and, for ``full``, the telemetry thread). One
    ``RatioEstimate`` per variant in ``caps_sec`` (its time cap), in that order."""
    from _paired import run_paired
    from harness_overhead import VARIANTS, Harness

    from llenergymeasure.config.experiment import ExperimentConfig

    config = ExperimentConfig(
        **work.config(
            dtype, batch_size, batch_size * n_batches, baseline_sec=0, output_dir=str(out_dir)
        )
    )
    harness = Harness(config, with_progress=False, clock="wall")
    estimates = []
    try:
        harness.warm(work.new_tokens, "batch", rounds=2)
        for variant, cap in caps_sec.items():
            estimates.append(
                run_paired(
                    f"harness/bare [{variant}]",
                    harness.pair_runner(variant, work.new_tokens, "batch"),
                    target=targets.get(variant, 0.02),
                    max_sec=cap,
                    meaning=VARIANTS[variant],
                )
            )
    finally:
        harness.close()
        del harness
        free_memory()
    return estimates


def n_batches_for(window_sec: float, sec_per_batch: float, margin: float = 1.25) -> int:
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
