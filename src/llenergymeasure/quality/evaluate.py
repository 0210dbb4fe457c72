"""Quality of one experiment's model: reference scores (cached), then the measured model's.

Two steps, both outside the energy window: ``prepare_reference`` before the measured model is
loaded (so two copies never share the device), ``evaluate_measured`` after the window with the
measured model still loaded. The reference's scores are cached per model, text, windows and
reference precision, so a study scores the reference once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llenergymeasure.config.experiment import ExperimentConfig
from llenergymeasure.domain.quality import Interval, QualityMetrics, QualityReference, TextIdentity
from llenergymeasure.files import atomic_write
from llenergymeasure.quality import windows as W
from llenergymeasure.quality.scoring import ReferenceScores, score_measured, score_reference
from llenergymeasure.quality.text import load_reference_text

log = logging.getLogger("llenergymeasure")

#: Bump when scoring changes, so reference scores cached by older versions are not reused.
CACHE_VERSION = "3"
#: Default window when the model's context is longer (keeps evaluation affordable).
DEFAULT_MAX_WINDOW = 1024


@dataclass
class PreparedReference:
    """The scored text, its windows and the reference's scores: shared by every measured run."""

    text: TextIdentity
    token_ids: list[int]
    windows: list[W.Window]
    window_tokens: int
    stride_tokens: int
    reference_dtype: str
    scores: ReferenceScores
    cached: bool
    eval_time_sec: float | None


def resolve_reference_dtype(config: ExperimentConfig, on_gpu: bool) -> str:
    """The reference precision: as configured, else float32 on CPU and bfloat16 on GPU."""
    chosen = config.quality.reference_dtype
    if chosen != "auto":
        return chosen
    return "bfloat16" if on_gpu else "float32"


def model_source(config: ExperimentConfig) -> str:
    """Where the model's files are: a builtin's directory, a local path, or a hub id."""
    from llenergymeasure.engines import builtin

    return (
        str(builtin.builtin_path(config.model))
        if builtin.is_builtin(config.model)
        else config.model
    )


def _fingerprint(source: str) -> str:
    """Identity of a model's files: names, sizes and mtimes locally; the id for a hub model."""
    path = Path(source)
    if not path.is_dir():
        return source
    parts = [
        f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
        for p in sorted(path.iterdir())
        if p.is_file()
    ]
    return f"{path.resolve()}|{'|'.join(parts)}"


def _context_length(model_config: Any) -> int | None:
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(model_config, name, None)
        if isinstance(value, int) and value > 1:
            return value
    return None


def plan(
    config: ExperimentConfig, tokenizer: Any, model_config: Any, text: str
) -> tuple[list[int], list[W.Window], int, int]:
    """Token ids (BOS first when the tokenizer has one), windows, window and stride."""
    q = config.quality
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is not None:
        ids = [int(bos), *ids]
    ids = ids[: q.max_tokens]
    context = _context_length(model_config) or DEFAULT_MAX_WINDOW
    window = q.window or min(context, DEFAULT_MAX_WINDOW)
    if window > context:
        from llenergymeasure.errors import ConfigError

        raise ConfigError(
            f"quality.window {window} exceeds the model's context of {context} tokens"
        )
    stride = q.stride or max(1, window // 2)
    if stride >= window:
        from llenergymeasure.errors import ConfigError

        raise ConfigError(
            f"quality.stride {stride} must be less than the window of {window} tokens"
        )
    return ids, W.plan_windows(len(ids), window, stride), window, stride


def prepare_reference(config: ExperimentConfig, *, on_gpu: bool) -> PreparedReference:
    """Tokenize the text, plan the windows, and score the reference (or load its cached scores)."""
    import transformers

    source = model_source(config)
    reference_text = load_reference_text(config.quality)
    tokenizer = transformers.AutoTokenizer.from_pretrained(source)
    model_config = transformers.AutoConfig.from_pretrained(source)
    ids, plan_, window, stride = plan(config, tokenizer, model_config, reference_text.text)
    ref_dtype = resolve_reference_dtype(config, on_gpu)
    key = _cache_key(
        config, source, reference_text.identity.sha256, ref_dtype, window, stride, len(ids)
    )
    path = _cache_dir() / f"{key}.npz"
    scores = _load_cached(path)
    cached = scores is not None
    elapsed: float | None = None
    if scores is None:
        scores, elapsed = _score_reference_model(config, ref_dtype, ids, plan_)
        _save_cached(path, scores)
    log.info("quality reference %s (%s): %s", config.model, ref_dtype, "cached" if cached else path)
    return PreparedReference(
        text=reference_text.identity,
        token_ids=ids,
        windows=plan_,
        window_tokens=window,
        stride_tokens=stride,
        reference_dtype=ref_dtype,
        scores=scores,
        cached=cached,
        eval_time_sec=elapsed,
    )


def _score_reference_model(
    config: ExperimentConfig, dtype: str, ids: list[int], plan_: list[W.Window]
) -> tuple[ReferenceScores, float]:
    from llenergymeasure.engines.transformers_engine import TransformersEngine

    reference_config = config.model_copy(update={"dtype": dtype, "quantization": "none"})
    engine = TransformersEngine(reference_config)
    engine.load()
    try:
        started = time.perf_counter()
        scores = score_reference(engine.model, ids, plan_, config.quality.kl_top_k)
        engine.synchronize()
        return scores, time.perf_counter() - started
    finally:
        engine.close()


def _cache_dir() -> Path:
    from llenergymeasure.engines.builtin import cache_root

    return cache_root() / "quality"


def _cache_key(
    config: ExperimentConfig,
    source: str,
    text_sha: str,
    dtype: str,
    window: int,
    stride: int,
    n: int,
) -> str:
    payload = {
        "version": CACHE_VERSION,
        "model": config.model,
        "files": _fingerprint(source),
        "text": text_sha,
        "dtype": dtype,
        "device_map": config.device_map,
        "window": window,
        "stride": stride,
        "tokens": n,
        "top_k": config.quality.kl_top_k,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def _load_cached(path: Path) -> ReferenceScores | None:
    if not path.is_file():
        return None
    try:
        with np.load(path) as data:
            return ReferenceScores(
                nll=data["nll"],
                argmax=data["argmax"],
                topk_ids=data["topk_ids"],
                topk_logprobs=data["topk_logprobs"],
                vocab_size=int(data["vocab_size"]),
            )
    except (OSError, KeyError, ValueError) as exc:
        log.warning("ignoring unreadable quality cache %s: %s", path, exc)
        return None


def _save_cached(path: Path, scores: ReferenceScores) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(
                handle,
                nll=scores.nll,
                argmax=scores.argmax,
                topk_ids=scores.topk_ids.astype(np.int32),
                topk_logprobs=scores.topk_logprobs,
                vocab_size=np.int64(scores.vocab_size),
            )

    atomic_write(path, write)


def evaluate_measured(
    model: Any, config: ExperimentConfig, prepared: PreparedReference, synchronize: Any = None
) -> QualityMetrics:
    """Score the measured model on the prepared text and compare it with the reference."""
    started = time.perf_counter()
    measured = score_measured(model, prepared.token_ids, prepared.windows, prepared.scores)
    if synchronize is not None:
        synchronize()
    elapsed = time.perf_counter() - started
    return build_metrics(config, prepared, measured, elapsed, measured_dtype=_model_dtype(model))


def _model_dtype(model: Any) -> str:
    from llenergymeasure.compute.precision import dtype_name

    names = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
    for parameter in model.parameters():
        name = dtype_name(parameter.dtype)
        if name in names:
            return names[name]
    return "float32"


def build_metrics(
    config: ExperimentConfig,
    prepared: PreparedReference,
    measured: Any,
    elapsed_sec: float,
    measured_dtype: str,
) -> QualityMetrics:
    """The quality section from per-token arrays: figures and paired block-bootstrap intervals."""
    q = config.quality
    ref = prepared.scores
    n = len(measured.nll)
    n_blocks = -(-n // q.block_tokens)
    draws = W.resample_indices(n_blocks, q.bootstrap_samples, q.seed)
    ppl = W.bootstrap_perplexity(measured.nll, q.block_tokens, draws)
    ref_ppl = W.bootstrap_perplexity(ref.nll, q.block_tokens, draws)
    degradation = W.bootstrap_degradation(measured.nll, ref.nll, q.block_tokens, draws)
    kl = W.bootstrap_mean(measured.kl, q.block_tokens, draws)
    top1 = W.bootstrap_mean(measured.top1.astype(np.float64), q.block_tokens, draws)
    exact = q.kl_top_k >= ref.vocab_size
    is_reference = config.quantization == "none" and measured_dtype == prepared.reference_dtype
    return QualityMetrics(
        text=prepared.text,
        window_tokens=prepared.window_tokens,
        stride_tokens=prepared.stride_tokens,
        windows=len(prepared.windows),
        tokens_evaluated=n,
        reference=QualityReference(
            dtype=prepared.reference_dtype,
            cached=prepared.cached,
            eval_time_sec=prepared.eval_time_sec,
        ),
        is_reference=is_reference,
        perplexity=ppl.value,
        perplexity_ci=_interval(ppl),
        reference_perplexity=ref_ppl.value,
        reference_perplexity_ci=_interval(ref_ppl),
        perplexity_degradation=degradation.value,
        perplexity_degradation_ci=_interval(degradation),
        mean_kl_nats=max(kl.value, 0.0),
        mean_kl_ci=_interval(W.Estimate(kl.value, max(kl.low, 0.0), max(kl.high, 0.0))),
        kl_method="exact" if exact else "top_k_tail",
        kl_top_k=min(q.kl_top_k, ref.vocab_size),
        reference_tail_mass=0.0 if exact else min(1.0, float(np.mean(measured.tail_mass))),
        top1_agreement=top1.value,
        top1_agreement_ci=_interval(top1),
        block_tokens=q.block_tokens,
        bootstrap_samples=q.bootstrap_samples,
        eval_time_sec=elapsed_sec,
        tokens_per_sec=n / elapsed_sec if elapsed_sec > 0 else 0.0,
    )


def _interval(estimate: W.Estimate) -> Interval:
    return Interval(low=min(estimate.low, estimate.high), high=max(estimate.low, estimate.high))
