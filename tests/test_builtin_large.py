"""The built-ins with real shapes (llama-1b, qwen2-0.5b): parameter counts and the build path.

The full models (1.2B and 0.5B parameters) are never allocated here: their counts come from the
config on the meta device, and the build path runs on a shrunk copy of each recipe.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from llenergymeasure.engines import builtin


def meta_model(spec: builtin.BuiltinSpec) -> object:
    import torch
    import transformers

    with torch.device("meta"):
        return transformers.AutoModelForCausalLM.from_config(
            builtin.model_config(spec), dtype=getattr(torch, spec.dtype)
        )


def n_params(model: object) -> int:
    return sum(p.numel() for p in model.parameters())  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("name", "family", "expected"),
    [
        # the published parameter counts of Llama-3.2-1B and Qwen2-0.5B (tied embeddings)
        ("llama-1b", "LlamaForCausalLM", 1_235_814_400),
        ("qwen2-0.5b", "Qwen2ForCausalLM", 494_032_768),
    ],
)
def test_real_shapes_have_the_published_parameter_counts(
    name: str, family: str, expected: int
) -> None:
    import torch

    spec = builtin.BUILTIN_MODELS[name]
    model = meta_model(spec)
    assert type(model).__name__ == family
    assert n_params(model) == expected
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}  # type: ignore[attr-defined]
    assert builtin.builtin_name(f"builtin:{name}") == name


def test_architecture_flops_see_the_full_vocabulary() -> None:
    """FLOPs per token of the 1B shape: ~2 x parameters (the tied LM head counted once more)."""
    from llenergymeasure.compute.flops import estimate_flops

    spec = builtin.BUILTIN_MODELS["llama-1b"]
    flops = estimate_flops(
        builtin.model_config(spec),
        batch_size=1,
        input_tokens=1,
        output_tokens=1,
        method="architecture",
    )
    # one position: every layer's matrices plus the LM head (128256 x 2048), 2 FLOPs per MAC
    non_embedding = 1_235_814_400 - 128256 * 2048
    lm_head = 128256 * 2048
    attention = 16 * 2 * 2 * 64 * 32 * 1  # scores and values over one cached key, 32 heads
    assert flops.value == pytest.approx(2 * (non_embedding + lm_head) + attention, rel=1e-3)


def test_a_shrunk_recipe_builds_bf16_with_a_padded_vocabulary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The build path of the large recipes (own vocab size, bf16) on a CPU, at toy size."""
    import torch

    monkeypatch.setenv("LLEM_CACHE_DIR", str(tmp_path))
    big = builtin.BUILTIN_MODELS["qwen2-0.5b"]
    small = dataclasses.replace(
        big,
        name="qwen2-toy",
        config_kwargs={
            **big.config_kwargs,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
        },
        vocab_size=4096,
    )
    monkeypatch.setitem(builtin.BUILTIN_MODELS, "qwen2-toy", small)
    path = builtin.builtin_path("builtin:qwen2-toy")
    saved = json.loads((path / "config.json").read_text())
    assert saved["vocab_size"] == 4096 and saved["model_type"] == "qwen2"
    assert saved.get("dtype", saved.get("torch_dtype")) == "bfloat16"

    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype="auto")
    assert next(model.parameters()).dtype == torch.bfloat16
    assert len(tokenizer) <= builtin.VOCAB_SIZE < model.config.vocab_size
    ids = tokenizer(["hello world"], return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=5, min_new_tokens=5, do_sample=False)
    assert out.shape[1] == ids["input_ids"].shape[1] + 5
    # built on the CPU here: the large recipes use the GPU only when there is one
    assert builtin._build_device(torch, small) == ("cuda" if torch.cuda.is_available() else "cpu")
    assert builtin._build_device(torch, builtin.BUILTIN_MODELS["tiny-llama"]) == "cpu"


def test_unknown_builtin_lists_the_large_ones() -> None:
    from llenergymeasure.errors import ConfigError

    with pytest.raises(ConfigError, match=r"builtin:llama-1b, builtin:qwen2-0.5b"):
        builtin.builtin_name("builtin:llama-70b")
