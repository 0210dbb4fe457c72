"""FLOPs of generation from a model's config alone: per-layer matrix products, no weights.

Convention (that of ``torch.utils.flop_counter.FlopCounterMode``): a multiply-accumulate is 2
FLOPs; only matrix products count (linear layers, attention scores and attention-weighted
values, the LM head), never elementwise work (norms, activations, rotary, softmax, masking).

What a Hugging Face ``generate`` call computes for one sequence of ``L`` prompt tokens and
``N`` generated tokens (``N`` forward passes: one prefill, then ``N - 1`` decode steps):

- prefill: every layer on all ``L`` positions; attention as dense kernels run it, the full
  ``L x L`` score matrix (the causal mask is applied to it, not skipped); the LM head on the
  last position only (``logits_to_keep=1``);
- decode step ``t`` (1..N-1): every layer and the LM head on one position; attention over the
  ``L + t`` keys in the KV cache, or ``min(L + t, window)`` on sliding-window layers, whose
  cache keeps only the window.

This module imports nothing heavy: it reads attributes of a transformers config object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class UnsupportedArchitecture(ValueError):
    """The config's architecture has no FLOPs formula here; the message says why."""


@dataclass(frozen=True)
class ArchitectureSpec:
    """Per-token costs of one decoder-only architecture, pre-summed for fast evaluation."""

    family: str
    num_layers: int
    #: FLOPs per token of all position-wise products (projections, MLP / experts, embedding
    #: projections), summed over layers.
    linear_flops_per_token: float
    #: Attention FLOPs per (query, key) pair summed over layers, grouped by sliding window
    #: (``None``: full attention). Per layer this is ``4 x heads x head_dim`` (scores + values).
    attention_flops_per_pair: tuple[tuple[int | None, float], ...]
    #: FLOPs of the LM head for one position (``2 x lm_head_in x vocab``).
    lm_head_flops_per_position: float
    #: Experts per token and in total (0 for dense models).
    experts_per_token: int = 0
    num_experts: int = 0


def _sum_min(first: int, count: int, window: int | None) -> int:
    """Sum of ``min(first + i, window)`` for ``i`` in ``0 .. count - 1`` (no cap if None)."""
    if count <= 0:
        return 0
    last = first + count - 1
    if window is None or window >= last:
        return count * (first + last) // 2
    if window <= first:
        return count * window
    below = window - first  # terms first .. window - 1 stay under the cap
    return below * (first + window - 1) // 2 + (count - below) * window


def generation_flops(
    spec: ArchitectureSpec, prompt_tokens: int, output_tokens: int
) -> tuple[float, float]:
    """(prefill, decode) FLOPs of generating ``output_tokens`` after one prompt (one sequence)."""
    if prompt_tokens < 1 or output_tokens < 1:
        raise ValueError(
            f"prompt and output tokens must be >= 1, got {prompt_tokens} and {output_tokens}"
        )
    length = prompt_tokens
    steps = output_tokens - 1
    prefill = length * spec.linear_flops_per_token + spec.lm_head_flops_per_position
    decode = steps * (spec.linear_flops_per_token + spec.lm_head_flops_per_position)
    for window, per_pair in spec.attention_flops_per_pair:
        prefill += per_pair * length * length
        decode += per_pair * _sum_min(length + 1, steps, window)
    return float(prefill), float(decode)


# --- reading configs ---------------------------------------------------------------------


def _get(config: Any, *names: str, default: Any = None) -> Any:
    """The first of ``names`` that the config sets to something other than None."""
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    return default


def _require_int(config: Any, *names: str) -> int:
    value = _get(config, *names)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise UnsupportedArchitecture(
            f"config field {names[0]!r} is {value!r}; a positive integer is needed"
        )
    return value


def _layer_windows(config: Any, num_layers: int) -> list[int | None]:
    """Sliding window of each layer's KV cache, mirroring how transformers builds the cache."""
    window = _get(config, "sliding_window")
    layer_types = getattr(config, "layer_types", None)
    if layer_types is None:
        return [window] * num_layers
    if len(layer_types) != num_layers:
        raise UnsupportedArchitecture(
            f"layer_types has {len(layer_types)} entries for {num_layers} layers"
        )
    windows: list[int | None] = []
    for kind in layer_types:
        if kind == "full_attention":
            windows.append(None)
        elif kind == "sliding_attention":
            windows.append(window or None)
        else:
            raise UnsupportedArchitecture(f"layer type {kind!r} has no FLOPs formula")
    return windows


@dataclass(frozen=True)
class _Attention:
    """Shape of one attention block: hidden size, query heads, key/value heads, head size."""

    hidden: int
    heads: int
    kv_heads: int
    head_dim: int

    @property
    def projection_flops(self) -> int:
        """Q, K, V and O projections per token (fused or not: same products)."""
        d, hd = self.hidden, self.head_dim
        return 2 * d * hd * (self.heads + 2 * self.kv_heads) + 2 * self.heads * hd * d

    @property
    def flops_per_pair(self) -> int:
        """Scores (q.k) and weighted values (p.v) for one query-key pair, all heads."""
        return 4 * self.heads * self.head_dim


def _standard_attention(config: Any) -> _Attention:
    hidden = _require_int(config, "hidden_size")
    heads = _require_int(config, "num_attention_heads")
    kv_heads = _get(config, "num_key_value_heads", default=heads)
    head_dim = _get(config, "head_dim", default=hidden // heads)
    if heads % kv_heads:
        raise UnsupportedArchitecture(f"{heads} query heads are not a multiple of {kv_heads}")
    return _Attention(hidden, heads, kv_heads, head_dim)


def _mlp_flops(hidden: int, intermediate: int, matrices: int) -> int:
    """Gated MLP (3 matrices: gate, up, down) or plain MLP (2 matrices: up, down) per token."""
    return 2 * matrices * hidden * intermediate


def _build(
    family: str,
    config: Any,
    attention: _Attention,
    layer_mlp_flops: list[int],
    *,
    extra_per_token: int = 0,
    lm_head_in: int | None = None,
    experts: tuple[int, int] = (0, 0),
) -> ArchitectureSpec:
    num_layers = len(layer_mlp_flops)
    windows = _layer_windows(config, num_layers)
    groups: dict[int | None, float] = {}
    for window in windows:
        groups[window] = groups.get(window, 0.0) + attention.flops_per_pair
    vocab = _require_int(config, "vocab_size")
    return ArchitectureSpec(
        family=family,
        num_layers=num_layers,
        linear_flops_per_token=float(
            num_layers * attention.projection_flops + sum(layer_mlp_flops) + extra_per_token
        ),
        attention_flops_per_pair=tuple(sorted(groups.items(), key=lambda kv: kv[0] or 0)),
        lm_head_flops_per_position=float(2 * (lm_head_in or attention.hidden) * vocab),
        experts_per_token=experts[0],
        num_experts=experts[1],
    )


def _dense(matrices: int) -> Callable[[str, Any], ArchitectureSpec]:
    """Reader for Llama-style decoders: standard attention, one MLP of ``matrices`` matrices."""

    def read(family: str, config: Any) -> ArchitectureSpec:
        attention = _standard_attention(config)
        layers = _require_int(config, "num_hidden_layers")
        intermediate = _require_int(config, "intermediate_size")
        mlp = _mlp_flops(attention.hidden, intermediate, matrices)
        return _build(family, config, attention, [mlp] * layers)

    return read


def _gpt2(family: str, config: Any) -> ArchitectureSpec:
    hidden = _require_int(config, "n_embd")
    heads = _require_int(config, "n_head")
    layers = _require_int(config, "n_layer")
    if getattr(config, "add_cross_attention", False):
        raise UnsupportedArchitecture("GPT-2 with cross-attention is not a plain decoder")
    attention = _Attention(hidden, heads, heads, hidden // heads)
    intermediate = _get(config, "n_inner", default=4 * hidden)
    return _build(family, config, attention, [_mlp_flops(hidden, intermediate, 2)] * layers)


def _opt(family: str, config: Any) -> ArchitectureSpec:
    attention = _standard_attention(config)
    layers = _require_int(config, "num_hidden_layers")
    ffn = _require_int(config, "ffn_dim")
    projected = _get(config, "word_embed_proj_dim", default=attention.hidden)
    # project_in / project_out run on every position when the embedding width differs.
    extra = 2 * 2 * projected * attention.hidden if projected != attention.hidden else 0
    mlp = [_mlp_flops(attention.hidden, ffn, 2)] * layers
    return _build(family, config, attention, mlp, extra_per_token=extra, lm_head_in=projected)


def _mixtral(family: str, config: Any) -> ArchitectureSpec:
    attention = _standard_attention(config)
    layers = _require_int(config, "num_hidden_layers")
    experts = _require_int(config, "num_local_experts")
    top_k = _require_int(config, "num_experts_per_tok")
    intermediate = _require_int(config, "intermediate_size")
    router = 2 * attention.hidden * experts
    moe = router + top_k * _mlp_flops(attention.hidden, intermediate, 3)
    return _build(family, config, attention, [moe] * layers, experts=(top_k, experts))


def _qwen_moe(family: str, config: Any) -> ArchitectureSpec:
    """Qwen2/3-MoE: sparse layers every ``decoder_sparse_step``, optional shared expert."""
    attention = _standard_attention(config)
    d = attention.hidden
    layers = _require_int(config, "num_hidden_layers")
    experts = _get(config, "num_experts", default=0)
    top_k = _get(config, "num_experts_per_tok", default=0)
    step = _get(config, "decoder_sparse_step", default=1)
    dense_only = set(_get(config, "mlp_only_layers", default=[]))
    dense = _mlp_flops(d, _require_int(config, "intermediate_size"), 3)
    sparse = 2 * d * experts + top_k * _mlp_flops(
        d, _require_int(config, "moe_intermediate_size"), 3
    )
    shared = _get(config, "shared_expert_intermediate_size", default=0)
    if shared:
        sparse += _mlp_flops(d, shared, 3) + 2 * d  # shared expert and its 1-output gate
    per_layer = [
        sparse if (i not in dense_only and experts > 0 and (i + 1) % step == 0) else dense
        for i in range(layers)
    ]
    return _build(family, config, attention, per_layer, experts=(top_k, experts))


#: model_type -> reader. Each was checked against FlopCounterMode over ``generate`` in the tests.
_READERS: dict[str, Callable[[str, Any], ArchitectureSpec]] = {
    "gpt2": _gpt2,
    "opt": _opt,
    "mixtral": _mixtral,
    "qwen2_moe": _qwen_moe,
    "qwen3_moe": _qwen_moe,
    **{
        name: _dense(3)
        for name in (
            "llama",
            "mistral",
            "qwen2",
            "qwen3",
            "phi3",
            "gemma",
            "gemma2",
            "gemma3_text",
            "olmo",
            "olmo2",
            "granite",
            "cohere",
            "cohere2",
        )
    },
    **{name: _dense(2) for name in ("phi", "starcoder2", "gpt_neox")},
}

SUPPORTED_FAMILIES: tuple[str, ...] = tuple(sorted(_READERS))


def text_config(config: Any) -> Any:
    """The decoder's config (the text part of a multimodal config, else the config itself)."""
    getter = getattr(config, "get_text_config", None)
    return getter() if callable(getter) else config


def spec_from_config(config: Any) -> ArchitectureSpec:
    """The architecture's per-token costs; raises UnsupportedArchitecture when unknown."""
    config = text_config(config)
    family = getattr(config, "model_type", None)
    reader = _READERS.get(str(family))
    if reader is None:
        raise UnsupportedArchitecture(
            f"no FLOPs formula for model_type {family!r} (known: {', '.join(SUPPORTED_FAMILIES)})"
        )
    if _get(config, "attention_chunk_size") is not None:
        raise UnsupportedArchitecture("chunked attention has no FLOPs formula")
    return reader(str(family), config)
