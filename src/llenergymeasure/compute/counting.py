"""Counting on a materialised model: calflops over a real ``generate``, and parameter counts.

torch, transformers and calflops are imported inside the functions that use them.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


class CountingUnavailable(RuntimeError):
    """Counting on this model cannot be done (or trusted); the message says why."""


def calflops_installed() -> bool:
    """True when the optional calflops library can be imported."""
    return importlib.util.find_spec("calflops") is not None


def is_materialised(model: Any) -> bool:
    """True for a torch module whose weights hold data (not a config, not on the meta device)."""
    parameters = getattr(model, "parameters", None)
    if not callable(parameters):
        return False
    first = next(iter(parameters()), None)
    return first is not None and first.device.type != "meta"


def is_quantised(config: Any) -> bool:
    """True when the config records a quantisation (weights packed, kernels not torch's)."""
    return getattr(config, "quantization_config", None) is not None


@contextmanager
def eager_kernels(model: Any) -> Iterator[None]:
    """Run the model with eager attention and eager experts, then restore what it had.

    sdpa / flash attention and transformers' grouped expert kernels are single fused calls that
    hook-based counters do not see; the eager versions are plain matmuls and linears with the
    same products, so counting under them makes the count independent of how the model was
    loaded.
    """
    config = model.config
    attention_before = getattr(config, "_attn_implementation", None)
    get_experts = getattr(model, "get_experts_implementation", None)
    experts_before = get_experts() if callable(get_experts) else None
    try:
        if attention_before not in (None, "eager"):
            model.set_attn_implementation("eager")
            if model.config._attn_implementation != "eager":
                raise CountingUnavailable(
                    f"attention implementation {attention_before!r} cannot be switched to eager"
                )
        if experts_before and any(v not in (None, "eager") for v in experts_before.values()):
            model.set_experts_implementation("eager")
            if any(v not in (None, "eager") for v in get_experts().values()):  # type: ignore[misc]
                raise CountingUnavailable("experts implementation cannot be switched to eager")
        yield
    finally:
        if attention_before not in (None, "eager"):
            model.set_attn_implementation(attention_before)
        if experts_before and experts_before != get_experts():  # type: ignore[misc]
            model.set_experts_implementation(experts_before)


@dataclass(frozen=True)
class CountedGeneration:
    """FLOPs counted over one sequence's ``generate``: prefill and the decode steps."""

    prefill_flops: float
    decode_flops: float


def _token_ids(config: Any, length: int) -> list[int]:
    """A prompt of ordinary token ids (cycling through the vocabulary, special ids skipped)."""
    special = {
        getattr(config, name, None) for name in ("bos_token_id", "eos_token_id", "pad_token_id")
    }
    vocab = int(getattr(config, "vocab_size", 0) or 0)
    pool = [i for i in range(min(vocab, 1000)) if i not in special] or [0]
    return [pool[(i * 7 + 3) % len(pool)] for i in range(length)]


def count_generation_with_calflops(
    model: Any, prompt_tokens: int, output_tokens: int
) -> CountedGeneration:
    """2 x the multiply-accumulates calflops records over ``generate`` for one sequence.

    calflops' own FLOPs figure adds elementwise work (activations, norms, softmax, bias adds);
    its MAC count covers exactly the matrix products, so 2 x MACs follows the counting
    convention. The first forward pass is the prefill, the others are decode steps.
    """
    if not calflops_installed():
        raise CountingUnavailable("calflops is not installed (pip install calflops)")
    import torch
    from calflops.calculate_pipline import CalFlopsPipline

    config = model.config
    device = next(model.parameters()).device
    ids = torch.tensor([_token_ids(config, prompt_tokens)], device=device)
    macs_after_call: list[float] = []
    pipeline = CalFlopsPipline(model=model, include_backPropagation=False, compute_bp_factor=2.0)
    with eager_kernels(model):
        pipeline.start_flops_calculate(ignore_list=None)
        # Registered after calflops' hooks, so it runs after they add the call's MACs.
        handle = model.register_forward_hook(
            lambda *_: macs_after_call.append(float(pipeline.get_total_macs()))
        )
        try:
            with torch.no_grad():
                model.generate(
                    ids,
                    attention_mask=torch.ones_like(ids),
                    max_new_tokens=output_tokens,
                    min_new_tokens=output_tokens,
                    do_sample=False,
                    num_beams=1,
                    use_cache=True,
                    pad_token_id=_get_pad_id(config),
                )
        finally:
            handle.remove()
            pipeline.end_flops_calculate()
    if len(macs_after_call) != output_tokens:
        raise CountingUnavailable(
            f"generate ran {len(macs_after_call)} forward passes for {output_tokens} tokens; "
            "expected one per token (prefill + decode steps)"
        )
    prefill = 2.0 * macs_after_call[0]
    return CountedGeneration(prefill, 2.0 * macs_after_call[-1] - prefill)


def _get_pad_id(config: Any) -> int:
    for name in ("pad_token_id", "eos_token_id", "bos_token_id"):
        value = getattr(config, name, None)
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, int):
            return value
    return 0


def non_embedding_parameters(model: Any) -> int:
    """Parameters outside the token / position embeddings and the LM head (Kaplan et al.'s N).

    Shared tensors count once. Not for quantised models, whose packed weights under-count:
    use ``non_embedding_parameters_from_config`` there.
    """
    import torch

    excluded: set[int] = set()
    for module in model.modules():
        if isinstance(module, torch.nn.Embedding):
            excluded.update(id(p) for p in module.parameters(recurse=False))
    get_output = getattr(model, "get_output_embeddings", None)
    head = get_output() if callable(get_output) else None
    if head is not None:
        excluded.update(id(p) for p in head.parameters(recurse=False))
    return sum(p.numel() for p in model.parameters() if id(p) not in excluded)


def non_embedding_parameters_from_config(config: Any) -> int:
    """Non-embedding parameters of the model a config describes, built on the meta device."""
    import torch
    from transformers import AutoModelForCausalLM

    config = _unquantised_copy(config)
    try:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
    except Exception as error:  # any failure means: no parameter count from this config
        raise CountingUnavailable(
            f"cannot build {getattr(config, 'model_type', '?')!r} from its config: {error}"
        ) from error
    return non_embedding_parameters(model)


def _unquantised_copy(config: Any) -> Any:
    """The config without its quantisation record, so the model builds with full-size weights."""
    if not is_quantised(config):
        return config
    import copy

    clone = copy.deepcopy(config)
    del clone.quantization_config
    return clone
