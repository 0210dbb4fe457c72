"""FLOPs of a generation workload with provenance: calflops, architecture, parameter_estimate.

The workload: ``batch_size`` sequences, each a prompt of ``input_tokens`` tokens, then
``output_tokens`` generated tokens (one prefill forward pass, then ``output_tokens - 1``
decode steps over the growing KV cache). Counting convention: a multiply-accumulate is 2
FLOPs; only matrix products count (see ``architecture`` for exactly which positions).

Methods, most trusted first:

- ``calflops`` (high): counted by calflops over the model's own ``generate`` on one sequence
  per distinct prompt length, multiplied by the number of such sequences (every product is
  per sequence, so this is exact for unpadded prompts). Attention and experts are switched to
  their eager kernels while counting, so the count does not depend on how the model was loaded.
- ``architecture`` (medium): from the config alone (see ``compute.architecture``).
- ``parameter_estimate`` (low): 2 x non-embedding parameters x tokens processed, where a
  sequence processes ``input_tokens + output_tokens - 1`` tokens.
"""

from __future__ import annotations

import operator
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llenergymeasure.compute.architecture import (
    UnsupportedArchitecture,
    generation_flops,
    spec_from_config,
)
from llenergymeasure.domain.metrics import FlopsResult, PrecisionMetadata
from llenergymeasure.errors import ConfigError, InstrumentError

METHODS = ("auto", "calflops", "architecture", "parameter_estimate")


@dataclass(frozen=True)
class FlopsBreakdown:
    """A FLOPs result split into the prefill and the decode steps (they sum to the value)."""

    result: FlopsResult
    prefill_flops: float
    decode_flops: float


@dataclass(frozen=True)
class _Target:
    """What was passed as ``model``: the config, and the module when weights are loaded."""

    config: Any
    module: Any | None


def _resolve(model: Any) -> _Target:
    """Accept a loaded model, a transformers config, or a model id / local path."""
    if isinstance(model, (str, os.PathLike)):
        from transformers import AutoConfig

        try:
            return _Target(AutoConfig.from_pretrained(os.fspath(model)), None)
        except (OSError, ValueError) as error:
            raise ConfigError(f"cannot read the config of model {str(model)!r}: {error}") from error
    if not callable(getattr(model, "parameters", None)):
        if hasattr(model, "to_dict") and hasattr(model, "model_type"):
            return _Target(model, None)
        raise TypeError(
            f"model must be a transformers model, config, or model id, not {type(model)!r}"
        )
    config = getattr(model, "config", None)
    if config is None:
        raise TypeError(
            f"model must be a transformers model, config, or model id, not {type(model)!r}"
        )
    from llenergymeasure.compute.counting import is_materialised

    return _Target(config, model if is_materialised(model) else None)


def _count(name: str, value: Any) -> int:
    """``value`` as an int >= 1 (numpy integers accepted; bools, floats and zero refused)."""
    try:
        if isinstance(value, bool):
            raise TypeError
        number = operator.index(value)
    except TypeError:
        number = 0
    if number < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return number


def _prompt_counts(batch_size: int, input_tokens: int | Sequence[int]) -> Counter[int]:
    """How many sequences have each prompt length (validated)."""
    batch_size = _count("batch_size", batch_size)
    if hasattr(input_tokens, "__iter__") and not isinstance(input_tokens, (str, bytes)):
        lengths = [_count("each prompt length", n) for n in input_tokens]
        if len(lengths) != batch_size:
            raise ValueError(
                f"{len(lengths)} prompt lengths given for batch_size {batch_size}; "
                "give one per sequence, or a single int"
            )
    else:
        lengths = [_count("input_tokens", input_tokens)] * batch_size
    return Counter(lengths)


def _precision(target: _Target, precision: str | None) -> tuple[str, PrecisionMetadata]:
    from llenergymeasure.compute.precision import detect_precision, precision_from_config

    if target.module is not None and precision is None:
        detected = detect_precision(target.module)
    else:  # the config alone: cheap, and enough for the quantisation note
        detected = precision_from_config(target.config)
    return precision or detected.compute, detected


def _by_calflops(target: _Target, counts: Counter[int], output_tokens: int) -> tuple[float, float]:
    from llenergymeasure.compute.counting import (
        CountingUnavailable,
        calflops_installed,
        count_generation_with_calflops,
        is_quantised,
    )

    if target.module is None:
        raise CountingUnavailable("calflops needs a model with its weights loaded")
    if not calflops_installed():
        raise CountingUnavailable("calflops is not installed (pip install calflops)")
    if is_quantised(target.config):
        raise CountingUnavailable(
            "quantised linear layers run their own kernels, invisible to calflops' hooks"
        )
    prefill = decode = 0.0
    for length, sequences in sorted(counts.items()):
        try:
            counted = count_generation_with_calflops(target.module, length, output_tokens)
        except CountingUnavailable:
            raise
        except Exception as error:  # a library failure degrades to the next method
            raise CountingUnavailable(
                f"calflops failed: {type(error).__name__}: {error}"
            ) from error
        prefill += sequences * counted.prefill_flops
        decode += sequences * counted.decode_flops
    return prefill, decode


def _by_architecture(config: Any, counts: Counter[int], output_tokens: int) -> tuple[float, float]:
    spec = spec_from_config(config)
    prefill = decode = 0.0
    for length, sequences in counts.items():
        p, d = generation_flops(spec, length, output_tokens)
        prefill += sequences * p
        decode += sequences * d
    return prefill, decode


def _by_parameters(
    target: _Target, counts: Counter[int], output_tokens: int
) -> tuple[float, float, str | None]:
    from llenergymeasure.compute.counting import (
        is_quantised,
        non_embedding_parameters,
        non_embedding_parameters_from_config,
    )

    note = None
    if target.module is not None and not is_quantised(target.config):
        params = non_embedding_parameters(target.module)
    else:
        params = non_embedding_parameters_from_config(target.config)
        if target.module is not None:
            note = "parameters counted from the config: quantised weights are packed"
    experts = getattr(target.config, "num_local_experts", None) or getattr(
        target.config, "num_experts", None
    )
    if experts:
        moe = "mixture of experts: every expert's parameters are counted, not only the active ones"
        note = f"{note}; {moe}" if note else moe
    prompt_tokens = sum(length * n for length, n in counts.items())
    sequences = sum(counts.values())
    prefill = 2.0 * params * prompt_tokens
    decode = 2.0 * params * sequences * (output_tokens - 1)
    return prefill, decode, note


def estimate_flops_breakdown(
    model: Any,
    *,
    batch_size: int,
    input_tokens: int | Sequence[int],
    output_tokens: int,
    method: str = "auto",
    precision: str | None = None,
) -> FlopsBreakdown:
    """FLOPs of the workload, split into prefill and decode, by the best method available.

    ``input_tokens`` is the prompt length of every sequence, or one length per sequence
    (unpadded; for a padded batch pass the padded length). ``method`` 'auto' tries calflops,
    then architecture, then parameter_estimate; a named method that cannot be used degrades
    the same way. ``notes`` say why a better method was skipped and what quantisation means.
    ``precision`` overrides the detected compute precision recorded with the result.

    calflops runs a real (batch-1) generation and patches torch functions while it counts:
    call this outside any measurement window, from one thread.
    """
    if method not in METHODS:
        raise ConfigError(f"FLOPs method {method!r} is not one of {', '.join(METHODS)}")
    output_tokens = _count("output_tokens", output_tokens)
    counts = _prompt_counts(batch_size, input_tokens)
    target = _resolve(model)
    compute_precision, detected = _precision(target, precision)
    notes: list[str] = []

    chosen: str | None = None
    split: tuple[float, float] | None = None
    if method in ("auto", "calflops"):
        from llenergymeasure.compute.counting import CountingUnavailable

        try:
            split = _by_calflops(target, counts, output_tokens)
            chosen = "calflops"
        except CountingUnavailable as why:
            notes.append(f"calflops skipped: {why}")
    if split is None and method != "parameter_estimate":
        try:
            split = _by_architecture(target.config, counts, output_tokens)
            chosen = "architecture"
        except UnsupportedArchitecture as why:
            notes.append(f"architecture skipped: {why}")
    if split is None:
        from llenergymeasure.compute.counting import CountingUnavailable

        try:
            prefill, decode, note = _by_parameters(target, counts, output_tokens)
        except CountingUnavailable as why:
            raise InstrumentError(
                "no FLOPs method applies: " + "; ".join([*notes, f"parameter_estimate: {why}"])
            ) from why
        split, chosen = (prefill, decode), "parameter_estimate"
        if note:
            notes.append(note)
    elif chosen == "calflops":
        notes.extend(_cross_check(target.config, counts, output_tokens, sum(split)))

    from llenergymeasure.compute.precision import quantization_note

    quant = quantization_note(detected)
    if quant:
        notes.append(quant)
    prefill, decode = split
    result = FlopsResult(
        value=prefill + decode,
        method=chosen,  # type: ignore[arg-type]
        precision=compute_precision,
        notes="; ".join(notes) or None,
    )
    return FlopsBreakdown(result=result, prefill_flops=prefill, decode_flops=decode)


def _cross_check(
    config: Any, counts: Counter[int], output_tokens: int, counted: float
) -> list[str]:
    """A note when the calflops count and the architecture formula disagree by over 2%."""
    try:
        expected = sum(_by_architecture(config, counts, output_tokens))
    except UnsupportedArchitecture:
        return []
    gap = (counted - expected) / expected if expected else 0.0
    if abs(gap) <= 0.02:
        return []
    return [f"calflops count differs from the architecture formula by {gap:+.1%}"]


def estimate_flops(
    model: Any,
    *,
    batch_size: int,
    input_tokens: int | Sequence[int],
    output_tokens: int,
    method: str = "auto",
    precision: str | None = None,
) -> FlopsResult:
    """FLOPs of generating ``output_tokens`` for each of ``batch_size`` prompts (see module doc)."""
    return estimate_flops_breakdown(
        model,
        batch_size=batch_size,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        method=method,
        precision=precision,
    ).result
