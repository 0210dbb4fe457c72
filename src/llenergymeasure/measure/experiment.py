"""One experiment end to end: load, warm up, baseline, measure, count FLOPs, write the result.

The measurement window holds only generation: prompts are tokenized, the meter chosen and the
baseline taken before it; FLOPs, statistics and files come after it. Files are written
atomically and ``result.json`` last, so an interrupted run never leaves a result that looks
complete.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from llenergymeasure.config.experiment import ExperimentConfig
from llenergymeasure.config.loading import check_prompt_file, load_experiment_config, validate
from llenergymeasure.domain.inference import InferenceMetrics
from llenergymeasure.domain.requests import with_arrival
from llenergymeasure.domain.results import ExperimentResult, RawProcessResult
from llenergymeasure.engines.base import BatchOutput, Engine, PreparedBatch
from llenergymeasure.engines.registry import create_engine
from llenergymeasure.errors import LlemError
from llenergymeasure.files import check_output_dir
from llenergymeasure.locking import DirectoryLock
from llenergymeasure.measure import quality_step
from llenergymeasure.measure.environment import capture_environment, prefer_passive_omp_wait
from llenergymeasure.measure.flops import compute_metrics
from llenergymeasure.measure.progress import NullReporter, Reporter
from llenergymeasure.measure.prompts import batched, load_prompt_ids, read_prompt_file
from llenergymeasure.measure.warmup import run_warmup
from llenergymeasure.results.aggregation import aggregate
from llenergymeasure.results.intensity import check_region
from llenergymeasure.results.io import atomic_write_json, save_model, save_result
from llenergymeasure.results.layout import (
    CONFIG_FILENAME,
    ENVIRONMENT_FILENAME,
    LOG_FILENAME,
    RESULT_FILENAME,
    done_marker,
    process_filename,
    timeseries_filename,
)

log = logging.getLogger("llenergymeasure")


def as_config(config: ExperimentConfig | Mapping[str, Any] | str | Path) -> ExperimentConfig:
    """Accept a config object, a mapping of fields, or a YAML path (checked before measuring)."""
    if isinstance(config, ExperimentConfig):
        result = config
        check_prompt_file(result)
    elif isinstance(config, (str, Path)):
        result = load_experiment_config(config)
    else:
        result = validate(ExperimentConfig, config)
        check_prompt_file(result)
    check_region(result.carbon)  # an unknown grid region fails now, not after measuring
    return result


def new_experiment_id(config: ExperimentConfig, now: datetime | None = None) -> str:
    """A readable, unique-enough id: UTC time, model, batch size, config hash."""
    now = now or datetime.now(timezone.utc)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", config.model.split("/")[-1].split(":")[-1]).strip("-")
    return (
        f"{now:%Y%m%dT%H%M%S}-{slug.lower()[:40]}-bs{config.batch_size}-{config.config_hash()[:8]}"
    )


@contextlib.contextmanager
def run_log(out_dir: Path, filename: str = LOG_FILENAME) -> Iterator[None]:
    """Send the package's log records to a log file in the experiment directory."""
    handler = logging.FileHandler(out_dir / filename, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    previous = log.level
    log.setLevel(logging.INFO)
    try:
        yield
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt) and not str(exc):
            log.error("run ended early: interrupted by Ctrl-C (SIGINT)")
        else:
            log.error("run ended early: %s", type(exc).__name__ if not str(exc) else exc)
        raise
    finally:
        log.removeHandler(handler)
        log.setLevel(previous)
        handler.close()


def run_experiment(
    config: ExperimentConfig | Mapping[str, Any] | str | Path,
    *,
    experiment_id: str | None = None,
    reporter: Reporter | None = None,
    allow_partial: bool = False,
) -> ExperimentResult:
    """Run one experiment and write ``<output_dir>/<id>/result.json``.

    With ``config.processes > 1`` the work is spread over data-parallel worker processes and
    aggregated from their raw files (``allow_partial`` turns missing ones into warnings).
    """
    prefer_passive_omp_wait()
    config = as_config(config)
    experiment_id = experiment_id or new_experiment_id(config)
    out_dir = Path(config.output_dir) / experiment_id
    preflight(config, out_dir)
    created = not out_dir.exists()
    lock = DirectoryLock(out_dir, "experiment")
    concurrent = lock.acquire()
    try:
        with run_log(out_dir):
            log.info("experiment %s: %s", experiment_id, config.model_dump_json())
            for line in concurrent:
                log.warning(line)
                (reporter or NullReporter()).message(f"warning: {line}")
            atomic_write_json(out_dir / CONFIG_FILENAME, config.resolved())
            environment = capture_environment(engine=config.engine)
            save_model(environment, out_dir / ENVIRONMENT_FILENAME)
            if config.processes > 1:
                from llenergymeasure.measure.distributed import launch_workers

                result = launch_workers(
                    config, out_dir, allow_partial=allow_partial, reporter=reporter
                )
            else:
                process = measure_process(
                    config, experiment_id=experiment_id, out_dir=out_dir, reporter=reporter
                )
                result = aggregate(
                    [process],
                    config=config.resolved(),
                    environment=environment,
                    warnings=concurrent,
                )
                save_result(result, out_dir / RESULT_FILENAME)
            log.info("wrote %s", out_dir / RESULT_FILENAME)
    except LlemError:
        if created and not (out_dir / RESULT_FILENAME).exists():
            shutil.rmtree(out_dir, ignore_errors=True)  # a user error leaves no half directory
        raise
    finally:
        lock.release()
    return result


def preflight(config: ExperimentConfig, out_dir: Path) -> None:
    """Every check that needs no model, made before anything is loaded or written.

    The output location, the prompt file's content and the named energy instrument (opened
    and closed again); the config's own checks (memory of the requests) ran when it was
    loaded. Each failure is one LlemError line.
    """
    check_output_dir(config.output_dir, "output_dir")
    check_output_dir(out_dir, "output_dir")
    if config.prompts.source == "file" and config.prompts.path is not None:
        read_prompt_file(config.prompts.path, limit=config.n_prompts)
    from llenergymeasure.quality.lmeval import check as check_lm_eval

    check_lm_eval(config.quality.lm_eval)
    if config.energy not in ("auto", "estimate"):
        from llenergymeasure.energy import create_meter

        create_meter(config.energy).close()


def measure_process(
    config: ExperimentConfig,
    *,
    experiment_id: str,
    out_dir: Path,
    process_index: int = 0,
    world_size: int = 1,
    reporter: Reporter | None = None,
    sync_processes: Callable[[], object] | None = None,
    measure_host: bool = True,
) -> RawProcessResult:
    """Everything one process measures; writes ``process_<i>.json`` atomically and returns it.

    ``sync_processes`` (a barrier across workers) is called before the baseline, before the
    window and after it; ``measure_host`` says whether this process meters the host's CPU and
    memory (one process per host does).
    """
    sync = sync_processes or (lambda: None)
    from llenergymeasure.energy import TelemetrySampler, create_meter, measure_baseline

    reporter = reporter or NullReporter()
    warnings: list[str] = []
    if config.quality.enabled and process_index == 0:
        reporter.stage("quality: reference")
    quality_reference = quality_step.prepare(config, process_index)
    reporter.stage(f"loading {config.model}")
    engine = create_engine(config)
    engine.load()
    try:
        prompt_ids, prompt_warnings = load_prompt_ids(config, engine)
        warnings += prompt_warnings
        mine = shard(prompt_ids, process_index, world_size)
        batches = [engine.prepare(b) for b in batched(mine, config.batch_size)]
        # all_at_once on a continuously batching engine: the whole window in one call.
        window_batches = (
            [engine.prepare(mine)]
            if config.arrival == "all_at_once" and engine.continuous_batching
            else batches
        )
        precision = engine.precision()
        # Chosen now, so that an unavailable instrument fails before minutes of warmup.
        # The engine's own GPUs, none on CPU: [] meters no GPU (None would meter them all).
        meter = create_meter(
            config.energy, gpu_indices=engine.gpu_indices(), include_host=measure_host
        )

        try:
            reporter.stage("warmup", total=_warmup_total(config))
            warmup = run_warmup(
                engine.generate,
                batches,
                config.warmup,
                on_request=lambda i, cv: reporter.advance(
                    1, f"cv {cv:.3f}" if cv is not None else None
                ),
            )
            log.info("warmup: %s", warmup.model_dump_json(exclude={"latencies_ms"}))
            if (warmup_warning := warmup.warning()) is not None:
                warnings.append(warmup_warning)

            sync()
            idle_sec = (
                config.baseline_sec + config.baseline_settle_sec if config.baseline_sec else 0
            )
            reporter.stage("baseline", total=idle_sec or None)
            # After a rest (recorded), so that the devices have left warmup's power state.
            baseline = measure_baseline(
                meter,
                seconds=config.baseline_sec,
                cache=config.baseline_cache,
                settle_sec=config.baseline_settle_sec,
            )
            log.info("%s", baseline.describe())
            sampler = TelemetrySampler(meter, interval_sec=config.telemetry_interval_sec)

            reporter.stage("measurement", total=len(window_batches))
            engine.reset_peak_memory()
            sync()
            sampler.start()
            try:
                outputs, start_time, end_time, window, window_start = _measurement_window(
                    engine, window_batches, meter, reporter
                )
            finally:
                telemetry = sampler.stop()
            sync()
        finally:
            meter.close()

        energy = window.to_energy_metrics(baseline)
        warnings += [*window.warnings, *telemetry.warnings]
        telemetry.write_parquet(out_dir / timeseries_filename(process_index, world_size))
        reporter.stage("counting FLOPs")
        peak_mb, weights_mb = engine.memory_mb()
        inference = _inference_metrics(engine, config, outputs, window.duration_sec, window_start)
        compute, flops_warnings = compute_metrics(
            getattr(engine, "flops_model", engine.model),
            outputs,
            config.flops_method,
            precision,
            inference,
            peak_mb,
            weights_mb,
            device_names=_device_names(engine),
        )
        warnings += flops_warnings
        if quality_reference is not None:
            reporter.stage("quality")
        quality, compute, quality_warnings = quality_step.evaluate(
            engine, config, quality_reference, compute
        )
        warnings += quality_warnings
        if config.quality.lm_eval.tasks and process_index == 0:
            reporter.stage("quality: lm-eval tasks")
        task_accuracy, task_warnings = quality_step.evaluate_tasks(engine, config, process_index)
        warnings += task_warnings
    finally:
        engine.close()

    result = RawProcessResult(
        experiment_id=experiment_id,
        config_hash=config.config_hash(),
        process_index=process_index,
        world_size=world_size,
        hostname=_hostname(),
        device_ids=[d.uid for d in energy.devices],
        start_time=start_time,
        end_time=end_time,
        energy=energy,
        inference=inference,
        compute=compute,
        warmup=warmup,
        thermal=telemetry.thermal,
        warnings=list(dict.fromkeys(warnings)),
        timeseries_file=timeseries_filename(process_index, world_size),
        quality=quality,
        task_accuracy=task_accuracy,
    )
    save_model(result, out_dir / process_filename(process_index))
    (out_dir / done_marker(process_index)).touch()
    return result


def _measurement_window(
    engine: Engine, batches: list[PreparedBatch], meter: Any, reporter: Reporter
) -> tuple[list[BatchOutput], datetime, datetime, Any, float]:
    """The measured region: nothing in it but generation and a counter read at each edge."""
    outputs: list[BatchOutput] = []
    meter.begin_window(sync=engine.synchronize)
    start_time = datetime.now(timezone.utc)
    window_start = engine.now()
    for batch in batches:
        outputs.append(engine.generate(batch))
        reporter.advance(1)
    window = meter.end_window(sync=engine.synchronize)
    end_time = datetime.now(timezone.utc)
    return outputs, start_time, end_time, window, window_start


def _inference_metrics(
    engine: Engine,
    config: ExperimentConfig,
    outputs: list[BatchOutput],
    window_sec: float,
    window_start: float,
) -> InferenceMetrics:
    """Figures from the requests' traces; with all_at_once every request arrived at the start."""
    traces = [t for o in outputs for t in o.requests]
    if config.arrival == "all_at_once":
        traces = with_arrival(traces, window_start)
    return InferenceMetrics.from_traces(
        traces,
        inference_time_sec=window_sec,
        arrival_model=config.arrival,
        latency_method=engine.latency_method,
        latency_confidence="high",
    )


def shard(items: list[list[int]], index: int, world: int) -> list[list[int]]:
    """Process ``index``'s contiguous share of the prompts (sizes differ by at most one)."""
    base, extra = divmod(len(items), world)
    start = index * base + min(index, extra)
    return items[start : start + base + (1 if index < extra else 0)]


def _warmup_total(config: ExperimentConfig) -> int:
    return config.warmup.max_prompts if config.warmup.mode == "cv" else config.warmup.n


def _device_names(engine: Engine) -> list[str]:
    gpus = engine.gpu_indices()
    if not gpus:
        return []
    import torch

    return [torch.cuda.get_device_name(i) for i in gpus]


def _hostname() -> str:
    import socket

    return socket.gethostname()
