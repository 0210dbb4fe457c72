"""A serving experiment end to end: server up, idle baseline, one metered load per rate, results.

For each request rate: a few warmup requests (not measured), then the load with the meter's
window and the telemetry thread around it; the steady-state window is found from the traces
(``steady``), and its energy is the meter's reading scaled by the window's share of the
telemetry's sampled energy. Each rate writes ``rate-<r>/result.json`` (an ExperimentResult with
a ``serving`` section) and its telemetry; the server's output goes to ``server.log``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from llenergymeasure.config.hashing import stable_hash
from llenergymeasure.config.loading import read_yaml, validate
from llenergymeasure.config.serving import ServingConfig
from llenergymeasure.domain.metrics import PrecisionMetadata
from llenergymeasure.domain.results import ExperimentResult, RawProcessResult
from llenergymeasure.errors import ConfigError
from llenergymeasure.measure.progress import NullReporter, Reporter
from llenergymeasure.serving.arrivals import arrival_offsets_sec
from llenergymeasure.serving.client import RequestSpec, Target, run_load
from llenergymeasure.serving.figures import (
    client_lag_warning,
    energy_shares,
    scaled,
    serving_metrics,
    window_compute,
    window_inference,
)
from llenergymeasure.serving.launch import LaunchedServer, ServerError, is_ready
from llenergymeasure.serving.metrics import to_trace
from llenergymeasure.serving.steady import (
    steady_window,
    tokens_in_window,
)

_DTYPES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}


def load_serving_config(source: ServingConfig | Mapping[str, Any] | str | Path) -> ServingConfig:
    if isinstance(source, ServingConfig):
        return source
    if isinstance(source, (str, Path)):
        return validate(ServingConfig, read_yaml(source), source=str(source))
    return validate(ServingConfig, source)


def _prompts(config: ServingConfig, n: int) -> list[str]:
    from llenergymeasure.measure.prompts import builtin_prompts, read_prompt_file

    texts = (
        builtin_prompts()
        if config.prompts.source == "builtin"
        else read_prompt_file(config.prompts.path)  # type: ignore[arg-type]
    )
    return [texts[i % len(texts)] for i in range(n)]


def _model_config(config: ServingConfig) -> Any:
    """The model's transformers config, for FLOPs (read up front: a bad name fails early)."""
    import transformers

    from llenergymeasure.engines.builtin import builtin_path, is_builtin

    name = config.flops_model or config.model
    source = str(builtin_path(name)) if is_builtin(name) else name
    try:
        return transformers.AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(
            f"flops_model {name!r}: cannot read the model's config for FLOPs ({first}); set "
            "flops_model to builtin:NAME, a local HF folder or a hub id in the local cache"
        ) from None


def _precision(config: ServingConfig, model_config: Any) -> PrecisionMetadata:
    dtype = config.dtype
    if dtype == "auto":
        dtype = str(getattr(model_config, "dtype", None) or "float32").replace("torch.", "")
    p = _DTYPES.get(dtype, "fp32")
    return PrecisionMetadata(weights=p, activations=p, compute=p)  # type: ignore[arg-type]


def _gpus(config: ServingConfig) -> list[int] | None:
    if config.gpus is not None:
        return config.gpus
    visible = config.server.env.get("CUDA_VISIBLE_DEVICES") if config.server.launch else None
    if visible is not None and all(p.strip().isdigit() for p in visible.split(",") if p.strip()):
        return [int(p) for p in visible.split(",") if p.strip()]
    return None


@contextlib.contextmanager
def _server(config: ServingConfig, log_path: Path) -> Iterator[bool]:
    """Launch the server (yields True) or check that one answers at the URL (yields False)."""
    if config.server.launch:
        with LaunchedServer(
            config.server.launch,
            config.server.url,
            log_path,
            env=config.server.env,
            ready_timeout_sec=config.server.ready_timeout_sec,
        ):
            yield True
        return
    if not is_ready(config.server.url):
        raise ServerError(
            f"no server answers at {config.server.url} (/health or /v1/models); start one "
            "(e.g. `llem serve`) or set server.launch"
        )
    yield False


def _rate_label(rate: float) -> str:
    return "inf" if math.isinf(rate) else f"{rate:g}"


def run_serving(
    source: ServingConfig | Mapping[str, Any] | str | Path,
    *,
    reporter: Reporter | None = None,
    run_id: str | None = None,
) -> list[ExperimentResult]:
    """Run every request rate of the config against its server; one result per rate."""
    from llenergymeasure.energy import TelemetrySampler, create_meter, measure_baseline
    from llenergymeasure.measure.environment import capture_environment
    from llenergymeasure.results.io import atomic_write_json, save_model, save_result

    config = load_serving_config(source)
    reporter = reporter or NullReporter()
    model_config = _model_config(config)
    precision = _precision(config, model_config)
    if config.prompts.source == "file":
        _prompts(config, 1)  # a bad prompt file fails before the server starts
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    out = Path(config.output_dir) / (run_id or f"{stamp}-serving-{config.name or 'load'}")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "serving_config.json", config.model_dump(mode="json"))
    results: list[ExperimentResult] = []
    reporter.stage("starting the server" if config.server.launch else "checking the server")
    with _server(config, out / "server.log") as launched:
        environment = capture_environment(engine="server")
        save_model(environment, out / "environment.json")
        meter = create_meter(config.energy, gpu_indices=_gpus(config), include_host=True)
        try:
            reporter.stage("baseline", total=config.baseline_sec or None)
            baseline = measure_baseline(meter, seconds=config.baseline_sec, cache=False)
            target = Target(
                config.server.url,
                config.model,
                endpoint=config.server.endpoint,
                ignore_eos=config.ignore_eos,
            )
            for rate in config.load.rates():
                rate_dir = out / f"rate-{_rate_label(rate)}"
                result = _one_rate(
                    config,
                    rate,
                    target,
                    meter,
                    baseline,
                    TelemetrySampler,
                    model_config,
                    precision,
                    environment,
                    launched,
                    rate_dir,
                    reporter,
                )
                save_result(result, out / f"rate-{_rate_label(rate)}" / "result.json")
                results.append(result)
        finally:
            meter.close()
    return results


def _one_rate(
    config: ServingConfig,
    rate: float,
    target: Target,
    meter: Any,
    baseline: Any,
    sampler_cls: Any,
    model_config: Any,
    precision: PrecisionMetadata,
    environment: Any,
    launched: bool,
    rate_dir: Path,
    reporter: Reporter,
) -> ExperimentResult:
    from llenergymeasure.results.aggregation import aggregate

    load = config.load
    burstiness = load.burstiness if load.arrival == "gamma" else 1.0
    offsets = arrival_offsets_sec(
        load.n_requests,
        rate,
        burstiness=burstiness,
        duration_sec=load.duration_sec,
        seed=load.seed,
    )
    lengths = config.output_lengths(len(offsets))
    specs = [
        RequestSpec(p, n) for p, n in zip(_prompts(config, len(offsets)), lengths, strict=True)
    ]
    if config.warmup_requests:
        warm = specs[: config.warmup_requests]
        asyncio.run(run_load(target, warm, [0.0] * len(warm), max_concurrency=1))

    reporter.stage(f"{_rate_label(rate)} req/s", total=len(specs))
    sampler = sampler_cls(meter, interval_sec=config.telemetry_interval_sec)
    sampler.start()
    try:
        meter.begin_window()
        start_time = datetime.now(timezone.utc)
        to_monotonic = time.monotonic() - time.perf_counter()
        _, records = asyncio.run(
            run_load(
                target,
                specs,
                offsets,
                max_concurrency=load.max_concurrency,
                on_finished=lambda _: reporter.advance(1),
            )
        )
        window = meter.end_window()
        end_time = datetime.now(timezone.utc)
    finally:
        telemetry = sampler.stop()

    rate_dir.mkdir(parents=True, exist_ok=True)
    telemetry.write_parquet(rate_dir / "timeseries.parquet")
    warnings = list(window.warnings) + list(telemetry.warnings)
    traces = [t for r in records if (t := to_trace(r)) is not None]
    failed = [r for r in records if not r.ok]
    if not traces:
        raise ServerError(
            f"every request failed at {_rate_label(rate)}/s; first error: {failed[0].error}"
        )
    steady = steady_window([t.arrival_sec for t in traces], [t.finish_sec for t in traces])
    if not steady.steady:
        warnings.append("no steady state (a short run or every request at once): whole run used")
    shares = energy_shares(telemetry, window, steady, to_monotonic)
    window_tokens = tokens_in_window(
        [t.token_times_sec for t in traces],
        [(t.first_token_sec, t.finish_sec, t.output_tokens) for t in traces],
        steady,
    )
    steady_energy = scaled(window, shares, steady.duration_sec)
    energy = steady_energy.to_energy_metrics(baseline)
    inference = window_inference(traces, window_tokens, steady)
    compute, flops_warnings = window_compute(
        traces, model_config, precision, inference, window_tokens, environment, _gpus(config)
    )
    warnings += flops_warnings
    if late := client_lag_warning(records):
        warnings.append(late)
    if meter_includes_host(window) and target.base_url.startswith(
        ("http://127.", "http://localhost")
    ):
        warnings.append(
            "the host's CPU/RAM energy includes the load generator (client and server share "
            "this host)"
        )
    process = RawProcessResult(
        experiment_id=rate_dir.parent.name + "-" + rate_dir.name,
        config_hash=_hash(config, rate),
        process_index=0,
        world_size=1,
        hostname=environment.hostname,
        device_ids=[d.uid for d in energy.devices],
        start_time=start_time,
        end_time=end_time,
        energy=energy,
        inference=inference,
        compute=compute,
        thermal=telemetry.thermal,
        warnings=list(dict.fromkeys(warnings)),
        timeseries_file="timeseries.parquet",
    )
    result_config = config.model_dump(mode="json") | {
        "load": {
            **config.load.model_dump(mode="json"),
            "request_rate": None if math.isinf(rate) else rate,
        }
    }
    result = aggregate([process], config=result_config, environment=environment)
    run_j = sum(d.energy_j for d in window.devices)
    serving = serving_metrics(
        config,
        rate,
        burstiness,
        launched,
        records,
        traces,
        steady,
        sum(d.energy_j for d in steady_energy.devices) / run_j if run_j > 0 else 0.0,
        window,
        window_tokens,
        energy.total_energy_j,
    )
    return result.model_copy(update={"serving": serving})


def meter_includes_host(window: Any) -> bool:
    return any(not d.label.startswith("gpu") for d in window.devices)


def _hash(config: ServingConfig, rate: float) -> str:
    data = config.model_dump(mode="json", exclude={"output_dir", "name"})
    data["load"]["request_rate"] = _rate_label(rate)
    return stable_hash(data)
