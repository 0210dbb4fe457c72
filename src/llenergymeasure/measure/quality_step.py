"""The quality step of one experiment, outside the energy window (see llenergymeasure.quality)."""

from __future__ import annotations

import logging
from typing import Any

from llenergymeasure.config.experiment import ExperimentConfig
from llenergymeasure.domain.compute import ComputeMetrics
from llenergymeasure.domain.quality import QualityMetrics, TaskAccuracy

log = logging.getLogger("llenergymeasure")


def prepare(config: ExperimentConfig, process_index: int) -> Any | None:
    """Before the measured model loads: the reference's scores (process 0 only; None if off)."""
    if not config.quality.enabled or process_index != 0:
        return None
    from llenergymeasure.quality.evaluate import prepare_reference

    return prepare_reference(config, on_gpu=_on_gpu(config))


def evaluate(
    engine: Any, config: ExperimentConfig, prepared: Any | None, compute: ComputeMetrics
) -> tuple[QualityMetrics | None, ComputeMetrics, list[str]]:
    """After the window: the measured model's quality, and its degradation in the precision."""
    if prepared is None:
        return None, compute, []
    model = getattr(engine, "model", None)
    if model is None:
        return None, compute, [f"quality: engine {engine.name!r} gives no log-probabilities"]
    from llenergymeasure.quality.evaluate import evaluate_measured

    quality = evaluate_measured(model, config, prepared, synchronize=engine.synchronize)
    log.info("quality: %s", quality.model_dump_json())
    precision = compute.precision.model_copy(
        update={"perplexity_degradation": quality.perplexity_degradation}
    )
    return quality, compute.model_copy(update={"precision": precision}), []


def _on_gpu(config: ExperimentConfig) -> bool:
    if config.device_map is not None:
        return config.device_map.startswith("cuda")
    import torch

    return torch.cuda.is_available()


def evaluate_tasks(
    engine: Any, config: ExperimentConfig, process_index: int
) -> tuple[TaskAccuracy | None, list[str]]:
    """After the window: lm-eval task scores of the loaded model (process 0; None if no tasks)."""
    tasks = config.quality.lm_eval
    if not tasks.tasks or process_index != 0:
        return None, []
    model = getattr(engine, "model", None)
    tokenizer = getattr(engine, "tokenizer", None)
    if model is None or tokenizer is None:
        return None, [f"quality.lm_eval: engine {engine.name!r} gives no model object to score"]
    from llenergymeasure.quality.lmeval import run_tasks

    try:
        accuracy = run_tasks(model, tokenizer, tasks)
    except Exception as exc:  # the energy figures are measured: a task failure must not lose them
        log.exception("quality.lm_eval: the tasks failed")
        return None, [f"quality.lm_eval: tasks {tasks.tasks} failed ({type(exc).__name__}: {exc})"]
    log.info("task accuracy: %s", accuracy.model_dump_json())
    return accuracy, []
