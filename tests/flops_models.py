"""Tiny random-weight causal LMs of each supported family, and a FlopCounterMode reference count."""

from __future__ import annotations

from typing import Any

VOCAB = 97

#: model_type -> config keyword arguments of a tiny (2-layer, hidden 32-64) model.
TINY_CONFIGS: dict[str, dict[str, Any]] = {
    "gpt2": dict(n_embd=32, n_layer=2, n_head=4, n_positions=128),
    "llama": dict(
        hidden_size=48,
        intermediate_size=80,
        num_hidden_layers=2,
        num_attention_heads=6,
        num_key_value_heads=2,
    ),
    "mistral": dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        sliding_window=10,
    ),
    "qwen2": dict(
        hidden_size=32,
        intermediate_size=72,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
    ),
    "mixtral": dict(
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_local_experts=4,
        num_experts_per_tok=2,
    ),
    "phi3": dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
    ),
    "gemma": dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=16,
    ),
    "opt": dict(
        hidden_size=32,
        ffn_dim=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        word_embed_proj_dim=32,
        max_position_embeddings=128,
    ),
}

#: Further families with a formula, checked the same way.
EXTRA_CONFIGS: dict[str, dict[str, Any]] = {
    "qwen3": dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
    ),
    "gemma2": dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        sliding_window=6,
    ),
    "qwen2_moe": dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_experts=4,
        num_experts_per_tok=2,
        moe_intermediate_size=24,
        shared_expert_intermediate_size=40,
        decoder_sparse_step=1,
    ),
    "qwen3_moe": dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_experts=4,
        num_experts_per_tok=2,
        moe_intermediate_size=24,
        head_dim=8,
    ),
    "phi": dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
    ),
    "gpt_neox": dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
    ),
    "starcoder2": dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    ),
    "gemma3_text": dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        sliding_window=5,
        sliding_window_pattern=2,
    ),
    "olmo": dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
    ),
    "olmo2": dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    ),
    "granite": dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    ),
    "cohere": dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    ),
    "cohere2": dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        sliding_window=6,
    ),
    "opt_projected": dict(
        hidden_size=32,
        ffn_dim=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        word_embed_proj_dim=16,
        max_position_embeddings=128,
    ),
}


def tiny_config(family: str, **overrides: Any) -> Any:
    """A config of the tiny model of ``family`` (special token ids inside the vocabulary)."""
    from transformers import AutoConfig

    kwargs = {**TINY_CONFIGS, **EXTRA_CONFIGS}[family]
    model_type = "opt" if family == "opt_projected" else family
    return AutoConfig.for_model(
        model_type,
        vocab_size=VOCAB,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        **{**kwargs, **overrides},
    )


def tiny_model(
    family: str, attn: str | None = None, experts: str | None = None, **overrides: Any
) -> Any:
    """A random-weight model of ``family`` in eval mode, seeded for repeatability.

    ``attn`` / ``experts`` None keep transformers' defaults (sdpa attention where the model
    supports it, grouped expert kernels), i.e. the model as a user loads it.
    """
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(1)  # products of 32-wide matrices: threads only add overhead
    torch.manual_seed(0)
    kwargs: dict[str, Any] = {}
    if attn is not None:
        kwargs["attn_implementation"] = attn
    if experts is not None:
        kwargs["experts_implementation"] = experts
    model = AutoModelForCausalLM.from_config(tiny_config(family, **overrides), **kwargs)
    return model.eval()


def reference_generate_flops(model: Any, batch_size: int, prompt: int, output: int) -> float:
    """FlopCounterMode total over the model's real ``generate`` (caller sets eager kernels)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(3, VOCAB, (batch_size, prompt), generator=generator)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=output,
            min_new_tokens=output,
            do_sample=False,
            pad_token_id=0,
        )
    assert out.shape == (batch_size, prompt + output)
    return float(counter.get_total_flops())
