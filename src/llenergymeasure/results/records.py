"""One flat record per result, with stable snake_case column names that carry their units.

``COLUMNS`` is the single definition of the export layout: CSV and Parquet export, `llem results
list` and `compare` all read these records, so a figure is computed in one place only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Literal

from llenergymeasure.domain.energy import is_estimated
from llenergymeasure.domain.results import ExperimentResult

ColumnType = Literal["str", "int", "float", "bool"]

#: Config keys the views read; foreign data may lack any of them.
CONFIG_KEYS = ("model", "engine", "dtype", "batch_size")


@dataclass(frozen=True)
class Column:
    """One export column: its name (with unit), type, meaning, and where the value comes from.

    ``source`` is a dotted attribute path into ``ExperimentResult`` or a function of it.
    """

    name: str
    type: ColumnType
    description: str
    source: str | Callable[[ExperimentResult], Any]

    def get(self, result: ExperimentResult) -> Any:
        """The raw value of this column for ``result``."""
        if callable(self.source):
            return self.source(result)
        return attrgetter(self.source)(result)


def config_text(result: ExperimentResult, key: str) -> str | None:
    """A config value as text (JSON for nested values); None when the key is absent."""
    value = result.config.get(key)
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def config_int(result: ExperimentResult, key: str) -> int | None:
    """A config value as an integer; None when absent or not a whole number."""
    value = result.config.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _estimated_energy_j(result: ExperimentResult) -> float:
    return math.fsum(d.energy_j for d in result.energy.devices if is_estimated(d))


def _warmup_mode(result: ExperimentResult) -> str | None:
    modes = sorted({w.mode for w in result.warmup})
    return "+".join(modes) or None


def _warmup_elapsed_sec(result: ExperimentResult) -> float | None:
    times = [w.elapsed_sec for w in result.warmup if w.elapsed_sec is not None]
    return max(times) if times else None


def _warmup_final_cv(result: ExperimentResult) -> float | None:
    return max((w.final_cv for w in result.warmup), default=None)


def _warmup_target_cv(result: ExperimentResult) -> float | None:
    return min((w.target_cv for w in result.warmup), default=None)


def _warmup_iterations(result: ExperimentResult) -> int | None:
    return max((w.iterations_completed for w in result.warmup), default=None)


def _device_names(result: ExperimentResult) -> str | None:
    names = [d.name for d in result.environment.devices if d.kind == "gpu"]
    return ", ".join(dict.fromkeys(names)) if names else None


def _of(part: str, attr: str) -> Callable[[ExperimentResult], Any]:
    """A column source reading ``attr`` of the result's ``carbon`` or ``cost`` (None if absent)."""

    def get(result: ExperimentResult) -> Any:
        view = getattr(result, part)
        return None if view is None else attrgetter(attr)(view)

    return get


#: Carbon and cost columns (views recomputable with `--region` etc.; see results/footprint.py).
FOOTPRINT_COLUMNS: tuple[Column, ...] = (
    Column(
        "co2e_g", "float", "gCO2e of the window: energy x PUE x intensity", _of("carbon", "co2e_g")
    ),
    Column(
        "co2e_per_output_token_g",
        "float",
        "gCO2e per generated token",
        _of("carbon", "co2e_per_output_token_g"),
    ),
    Column(
        "carbon_energy_basis",
        "str",
        "energy used: raw or idle_adjusted",
        _of("carbon", "energy_basis"),
    ),
    Column("pue", "float", "power usage effectiveness applied", _of("carbon", "pue")),
    Column(
        "carbon_intensity_g_per_kwh",
        "float",
        "grid carbon intensity (unit in carbon_intensity_unit)",
        _of("carbon", "intensity.value_g_per_kwh"),
    ),
    Column(
        "carbon_intensity_unit", "str", "what the intensity counts", _of("carbon", "intensity.unit")
    ),
    Column("carbon_region", "str", "grid region looked up", _of("carbon", "intensity.region")),
    Column(
        "carbon_intensity_method",
        "str",
        "user, codecarbon_table, llem_table or world_average",
        _of("carbon", "intensity.method"),
    ),
    Column(
        "carbon_intensity_source",
        "str",
        "dataset of the intensity",
        _of("carbon", "intensity.source"),
    ),
    Column(
        "carbon_intensity_year",
        "int",
        "year the intensity describes",
        _of("carbon", "intensity.year"),
    ),
    Column(
        "carbon_confidence",
        "str",
        "lower of energy and intensity confidence",
        _of("carbon", "confidence"),
    ),
    Column("cost_usd", "float", "hardware cost of the window", _of("cost", "cost_usd")),
    Column(
        "cost_per_million_output_tokens_usd",
        "float",
        "hardware cost per million generated tokens",
        _of("cost", "cost_per_million_output_tokens_usd"),
    ),
    Column("usd_per_gpu_hour", "float", "GPU price applied", _of("cost", "usd_per_gpu_hour")),
    Column("usd_per_node_hour", "float", "node price applied", _of("cost", "usd_per_node_hour")),
    Column("cost_gpu_count", "int", "GPUs priced", _of("cost", "gpu_count")),
    Column("cost_node_count", "int", "nodes priced", _of("cost", "node_count")),
)


_LATENCY_LABELS = {
    "ttft": "time to first token (per request)",
    "itl": "inter-token latency (per token gap)",
    "tpot": "time per output token (per request)",
    "request_latency": "end-to-end request latency (per request)",
}


def _latency_stat(kind: str, stat: str) -> Callable[[ExperimentResult], float | None]:
    """A latency statistic, or None (empty cell) when the figure was not reported."""

    def get(result: ExperimentResult) -> float | None:
        stats = getattr(result.inference, kind)
        return None if stats.method == "not_reported" else getattr(stats, f"{stat}_ms")

    return get


def _latency_columns(kind: str) -> list[Column]:
    label = _LATENCY_LABELS[kind]
    return [
        Column(
            f"{kind}_{stat}_ms",
            "float",
            f"{stat} of {label}; empty when not reported",
            _latency_stat(kind, stat),
        )
        for stat in ("mean", "p50", "p90", "p95", "p99")
    ] + [
        Column(f"{kind}_method", "str", f"how the {label} was obtained", f"inference.{kind}.method")
    ]


def _quality(path: str) -> Callable[[ExperimentResult], Any]:
    def get(result: ExperimentResult) -> Any:
        return attrgetter(path)(result.quality) if result.quality is not None else None

    return get


def _quality_columns() -> list[Column]:
    """Quality figures (empty when quality evaluation was off), each with its 95% interval."""
    columns: list[Column] = []
    for name, label in (
        ("perplexity", "perplexity on the quality text"),
        ("reference_perplexity", "perplexity of the reference configuration"),
        ("perplexity_degradation", "perplexity / reference perplexity - 1"),
        ("mean_kl_nats", "mean KL(reference || measured) per token, nats"),
        ("top1_agreement", "share of tokens whose argmax matches the reference's"),
    ):
        ci = "mean_kl_ci" if name == "mean_kl_nats" else f"{name}_ci"
        columns += [
            Column(name, "float", label, _quality(name)),
            Column(f"{name}_ci_low", "float", f"{label}: 95% interval, low", _quality(f"{ci}.low")),
            Column(
                f"{name}_ci_high", "float", f"{label}: 95% interval, high", _quality(f"{ci}.high")
            ),
        ]
    return [
        *columns,
        Column("kl_method", "str", "exact or top_k_tail (a lower bound)", _quality("kl_method")),
        Column("quality_tokens", "int", "tokens scored for quality", _quality("tokens_evaluated")),
        Column("quality_text", "str", "quality text: source:name", _quality_text),
        Column("quality_text_sha256", "str", "SHA-256 of the text", _quality("text.sha256")),
        Column("quality_reference_dtype", "str", "reference dtype", _quality("reference.dtype")),
        Column(
            "task_accuracy",
            "str",
            "lm-eval task scores: 'task metric=value±stderr (n=documents)', '; '-joined",
            _task_accuracy,
        ),
    ]


def _task_accuracy(result: ExperimentResult) -> str | None:
    from llenergymeasure.results.quality_view import task_summary

    t = result.task_accuracy
    return task_summary(t) if t is not None else None


def _quality_text(result: ExperimentResult) -> str | None:
    q = result.quality
    return f"{q.text.source}:{q.text.name}" if q is not None else None


COLUMNS: tuple[Column, ...] = (
    Column("experiment_id", "str", "experiment id", "experiment_id"),
    Column("config_hash", "str", "hash of the resolved config (cycles share it)", "config_hash"),
    Column("model", "str", "config: model", lambda r: config_text(r, "model")),
    Column("engine", "str", "config: inference engine", lambda r: config_text(r, "engine")),
    Column(
        "engine_version", "str", "version of the engine's library", "environment.engine_version"
    ),
    Column("dtype", "str", "config: dtype", lambda r: config_text(r, "dtype")),
    Column("batch_size", "int", "config: batch size", lambda r: config_int(r, "batch_size")),
    Column(
        "start_time",
        "str",
        "start of the measurement window, ISO 8601 UTC",
        lambda r: r.start_time.isoformat(),
    ),
    Column("num_requests", "int", "prompts processed", "inference.num_requests"),
    Column("input_tokens", "int", "prompt tokens (no padding)", "inference.input_tokens"),
    Column("output_tokens", "int", "generated tokens", "inference.output_tokens"),
    Column(
        "inference_time_sec",
        "float",
        "wall time of the measurement window",
        "inference.inference_time_sec",
    ),
    Column("tokens_per_second", "float", "output tokens per second", "inference.tokens_per_second"),
    Column(
        "energy_per_output_token_j",
        "float",
        "raw energy per generated token",
        "energy_per_output_token_j",
    ),
    Column(
        "adjusted_energy_per_output_token_j",
        "float",
        "idle-adjusted energy per generated token",
        "adjusted_energy_per_output_token_j",
    ),
    Column("total_energy_j", "float", "raw energy, all devices", "energy.total_energy_j"),
    Column("gpu_energy_j", "float", "raw GPU energy", "energy.gpu_energy_j"),
    Column("cpu_energy_j", "float", "raw CPU energy", "energy.cpu_energy_j"),
    Column("ram_energy_j", "float", "raw RAM energy", "energy.ram_energy_j"),
    Column(
        "estimated_energy_j",
        "float",
        "raw energy of devices whose figure is modelled, not metered (in the total)",
        _estimated_energy_j,
    ),
    Column(
        "adjusted_energy_j",
        "float",
        "idle-adjusted energy, all devices",
        "energy.adjusted_energy_j",
    ),
    Column("baseline_power_w", "float", "idle power subtracted", "energy.baseline_power_w"),
    Column("mean_power_w", "float", "mean power over the window", "energy.mean_power_w"),
    Column("energy_method", "str", "energy instruments", "energy.method"),
    Column("energy_confidence", "str", "energy confidence", "energy.confidence"),
    Column(
        "baseline_method", "str", "how the idle baseline was obtained", "energy.baseline_method"
    ),
    Column(
        "baseline_duration_sec",
        "float",
        "length of the idle window the baseline was measured over",
        lambda r: r.energy.baseline.duration_sec if r.energy.baseline else None,
    ),
    Column(
        "baseline_samples",
        "int",
        "power samples taken during the idle window",
        lambda r: r.energy.baseline.samples if r.energy.baseline else None,
    ),
    Column(
        "baseline_settle_sec",
        "float",
        "rest before the idle window",
        lambda r: r.energy.baseline.settle_sec if r.energy.baseline else None,
    ),
    Column(
        "baseline_age_sec",
        "float",
        "from the idle window's end to the measurement window's start",
        lambda r: r.energy.baseline.age_sec if r.energy.baseline else None,
    ),
    Column(
        "arrival_model",
        "str",
        "how requests arrived: closed batches or all at once",
        "inference.arrival_model",
    ),
    *_latency_columns("ttft"),
    *_latency_columns("itl"),
    *_latency_columns("tpot"),
    *_latency_columns("request_latency"),
    Column("latency_method", "str", "how token times were taken", "inference.latency_method"),
    Column("latency_confidence", "str", "latency confidence", "inference.latency_confidence"),
    Column(
        "total_flops",
        "float",
        "executed FLOPs of the measured generation (padding, steps after EOS included)",
        "compute.flops.value",
    ),
    Column(
        "useful_flops",
        "float",
        "FLOPs for the tokens kept (unpadded prompts, decode up to each last kept token)",
        lambda r: r.compute.useful_flops.value if r.compute.useful_flops else None,
    ),
    Column(
        "flops_per_output_token",
        "float",
        "executed FLOPs per generated token",
        "compute.flops_per_output_token",
    ),
    Column("prefill_flops", "float", "FLOPs of the prefill", "compute.prefill_flops"),
    Column("decode_flops", "float", "FLOPs of the decode", "compute.decode_flops"),
    Column("flops_method", "str", "how FLOPs were counted", "compute.flops.method"),
    Column("flops_confidence", "str", "FLOPs confidence", "compute.flops.confidence"),
    Column("flops_notes", "str", "FLOPs caveats", "compute.flops.notes"),
    Column("compute_precision", "str", "compute precision", "compute.precision.compute"),
    Column("weights_precision", "str", "weights precision", "compute.precision.weights"),
    Column(
        "precision_factor",
        "float",
        "throughput factor of the precision",
        "compute.precision.precision_factor",
    ),
    Column(
        "quantization_method", "str", "quantization method", "compute.precision.quantization_method"
    ),
    Column("peak_memory_mb", "float", "peak device memory", "compute.peak_memory_mb"),
    Column("model_memory_mb", "float", "weights in memory", "compute.model_memory_mb"),
    Column(
        "achieved_flops_per_sec",
        "float",
        "executed FLOPs per second",
        "compute.achieved_flops_per_sec",
    ),
    Column(
        "useful_flops_per_sec", "float", "useful FLOPs per second", "compute.useful_flops_per_sec"
    ),
    Column("mfu", "float", "model FLOPs utilisation (useful FLOPs/s / peak)", "compute.mfu"),
    Column(
        "tokens_per_joule", "float", "output tokens per raw joule", "normalised.tokens_per_joule"
    ),
    Column(
        "adjusted_tokens_per_joule",
        "float",
        "output tokens per idle-adjusted joule",
        "normalised.adjusted_tokens_per_joule",
    ),
    Column(
        "tokens_per_effective_pflop",
        "float",
        "output tokens per precision-normalised PFLOP",
        "normalised.tokens_per_effective_pflop",
    ),
    Column(
        "tokens_per_second_per_watt",
        "float",
        "tokens per second / mean power (equals tokens per raw joule)",
        "normalised.tokens_per_second_per_watt",
    ),
    Column("effective_flops", "float", "FLOPs x precision factor", "normalised.effective_flops"),
    *FOOTPRINT_COLUMNS,
    Column("throttled", "bool", "any throttling detected", "thermal.detected"),
    Column("throttled_thermal", "bool", "thermal throttling", "thermal.thermal"),
    Column("throttled_power", "bool", "power throttling", "thermal.power"),
    Column("throttle_duration_sec", "float", "time throttled", "thermal.throttle_duration_sec"),
    Column("max_temperature_c", "float", "highest device temperature", "thermal.max_temperature_c"),
    Column(
        "warmup_converged",
        "bool",
        "every process's warmup converged (empty: no warmup)",
        "warmup_converged",
    ),
    Column("warmup_final_cv", "float", "largest final latency CV over processes", _warmup_final_cv),
    Column("warmup_target_cv", "float", "CV target of warmup", _warmup_target_cv),
    Column("warmup_iterations", "int", "most warmup iterations of a process", _warmup_iterations),
    Column("warmup_mode", "str", "cv or fixed (as configured)", _warmup_mode),
    Column("warmup_sec", "float", "longest warmup of a process, seconds", _warmup_elapsed_sec),
    Column("num_processes", "int", "process results aggregated", lambda r: len(r.process_results)),
    Column("gpu_names", "str", "GPU models in the environment", _device_names),
    Column("hostname", "str", "host", "environment.hostname"),
    Column(
        "llenergymeasure_version",
        "str",
        "version that measured",
        "environment.llenergymeasure_version",
    ),
    Column("num_warnings", "int", "warnings recorded in the result", lambda r: len(r.warnings)),
    *_quality_columns(),
)

COLUMN_NAMES: tuple[str, ...] = tuple(column.name for column in COLUMNS)
_BY_NAME = {column.name: column for column in COLUMNS}


def _checked(column: Column, value: Any) -> Any:
    if value is None:
        return None
    if column.type == "float":
        value = float(value)
        return value if math.isfinite(value) else None
    if column.type == "int":
        return int(value)
    if column.type == "bool":
        return bool(value)
    return str(value)


def result_record(result: ExperimentResult) -> dict[str, Any]:
    """The result as one flat row: ``{column name: value or None}`` in ``COLUMNS`` order."""
    return {column.name: _checked(column, column.get(result)) for column in COLUMNS}


def column(name: str) -> Column:
    """The column called ``name`` (KeyError for an unknown name)."""
    return _BY_NAME[name]


def columns_markdown() -> str:
    """The column reference as a Markdown table (kept in docs/results.md)."""
    lines = ["| column | type | meaning |", "|---|---|---|"]
    lines += [f"| `{c.name}` | {c.type} | {c.description} |" for c in COLUMNS]
    return "\n".join(lines) + "\n"
