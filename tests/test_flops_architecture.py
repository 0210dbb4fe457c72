"""The architecture formula against FlopCounterMode over real ``generate``, and its maths."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llenergymeasure.compute.architecture import (
    SUPPORTED_FAMILIES,
    ArchitectureSpec,
    UnsupportedArchitecture,
    _sum_min,
    generation_flops,
    spec_from_config,
)
from llenergymeasure.compute.flops import estimate_flops, estimate_flops_breakdown
from tests.flops_models import (
    EXTRA_CONFIGS,
    TINY_CONFIGS,
    reference_generate_flops,
    tiny_config,
    tiny_model,
)

MOE = {"mixtral", "qwen2_moe", "qwen3_moe"}
#: (batch size, prompt length, output length): short and long prompts, one and many steps;
#: prompt 17 + 9 outputs crosses the sliding windows of the Mistral (10) and Gemma-2 (6) configs.
WORKLOADS = [(1, 5, 4), (3, 17, 9), (2, 3, 1), (4, 9, 12)]


@functools.cache
def eager_model(family: str) -> Any:
    """The tiny model with eager attention and experts, so FlopCounterMode sees every product."""
    return tiny_model(family, attn="eager", experts="eager" if family in MOE else None)


@functools.cache
def reference(family: str, batch: int, prompt: int, output: int) -> float:
    return reference_generate_flops(eager_model(family), batch, prompt, output)


@pytest.mark.parametrize("batch,prompt,output", WORKLOADS)
@pytest.mark.parametrize("family", list(TINY_CONFIGS))
def test_architecture_within_2_percent_of_flop_counter(
    family: str, batch: int, prompt: int, output: int
) -> None:
    expected = reference(family, batch, prompt, output)
    result = estimate_flops(
        eager_model(family).config,
        batch_size=batch,
        input_tokens=prompt,
        output_tokens=output,
        method="architecture",
    )
    assert result.method == "architecture"
    assert result.confidence == "medium"
    assert result.value == pytest.approx(expected, rel=0.02)


@pytest.mark.parametrize("family", list(EXTRA_CONFIGS))
def test_further_families_within_2_percent(family: str) -> None:
    for batch, prompt, output in WORKLOADS[:2]:
        expected = reference(family, batch, prompt, output)
        result = estimate_flops(
            eager_model(family).config,
            batch_size=batch,
            input_tokens=prompt,
            output_tokens=output,
            method="architecture",
        )
        assert result.value == pytest.approx(expected, rel=0.02)


@pytest.mark.parametrize("family", ["llama", "mistral", "mixtral", "opt"])
def test_prefill_share_is_the_first_forward_pass(family: str) -> None:
    """A one-token generation is just the prefill (LM head on the last position only)."""
    prefill_only = reference(family, 2, 11, 1)
    split = estimate_flops_breakdown(
        tiny_config(family), batch_size=2, input_tokens=11, output_tokens=6, method="architecture"
    )
    assert split.prefill_flops == pytest.approx(prefill_only, rel=1e-9)
    assert split.prefill_flops + split.decode_flops == split.result.value


def test_numpy_integers_are_accepted() -> None:
    import numpy as np

    plain = estimate_flops(
        _LLAMA_CONFIG, batch_size=2, input_tokens=[3, 5], output_tokens=4, method="architecture"
    )
    numpy = estimate_flops(
        _LLAMA_CONFIG,
        batch_size=np.int64(2),
        input_tokens=np.array([3, 5]),
        output_tokens=np.int32(4),
        method="architecture",
    )
    assert numpy == plain


def test_per_sequence_prompt_lengths_sum_over_sequences() -> None:
    config = tiny_config("llama")
    mixed = estimate_flops(
        config, batch_size=3, input_tokens=[4, 9, 4], output_tokens=5, method="architecture"
    )
    singles = [
        estimate_flops(config, batch_size=1, input_tokens=n, output_tokens=5, method="architecture")
        for n in (4, 9, 4)
    ]
    assert mixed.value == sum(s.value for s in singles)
    expected = sum(reference("llama", 1, n, 5) for n in (4, 9, 4))
    assert mixed.value == pytest.approx(expected, rel=0.02)


def test_grouped_query_attention_and_head_dim_are_read() -> None:
    spec = spec_from_config(tiny_config("llama"))  # hidden 48, 6 heads of 8, 2 KV heads
    projections = 2 * 48 * 8 * (6 + 2 * 2) + 2 * 6 * 8 * 48
    mlp = 3 * 2 * 48 * 80
    assert spec.linear_flops_per_token == 2 * (projections + mlp)
    assert spec.attention_flops_per_pair == ((None, 2 * 4 * 6 * 8),)
    gemma = spec_from_config(tiny_config("gemma"))  # explicit head_dim 16 with hidden 32
    assert gemma.attention_flops_per_pair == ((None, 2 * 4 * 4 * 16),)


def test_mixture_of_experts_counts_router_and_top_k_experts() -> None:
    spec = spec_from_config(tiny_config("mixtral"))  # 4 experts, top 2, ff 48, hidden 32
    attention = 2 * 32 * 8 * (4 + 2 * 2) + 2 * 4 * 8 * 32
    moe = 2 * 32 * 4 + 2 * (3 * 2 * 32 * 48)
    assert spec.linear_flops_per_token == 2 * (attention + moe)
    assert (spec.experts_per_token, spec.num_experts) == (2, 4)


def test_sliding_window_layers_are_grouped() -> None:
    spec = spec_from_config(tiny_config("gemma2"))  # alternating sliding (6) / full layers
    windows = dict(spec.attention_flops_per_pair)
    assert set(windows) == {None, 6}


def test_unknown_architecture_is_refused_with_reason() -> None:
    from transformers import AutoConfig

    config = AutoConfig.for_model("bert", vocab_size=97, hidden_size=32)
    with pytest.raises(UnsupportedArchitecture, match="model_type 'bert'"):
        spec_from_config(config)


def test_unknown_architecture_falls_back_to_parameter_estimate() -> None:
    config = tiny_config("llama")
    config.model_type = "my_new_arch"  # a family with no formula (model still builds)
    result = estimate_flops(
        config, batch_size=1, input_tokens=4, output_tokens=2, method="architecture"
    )
    assert result.method == "parameter_estimate"
    assert result.confidence == "low"
    assert "architecture skipped: no FLOPs formula for model_type 'my_new_arch'" in result.notes


def test_supported_families_cover_the_issue() -> None:
    required = {"gpt2", "llama", "mistral", "qwen2", "mixtral", "phi3", "gemma", "opt"}
    assert required <= set(SUPPORTED_FAMILIES)


def test_every_supported_family_is_checked_against_the_counter() -> None:
    tested = (set(TINY_CONFIGS) | set(EXTRA_CONFIGS)) - {"opt_projected"}
    assert tested == set(SUPPORTED_FAMILIES)


@given(
    first=st.integers(0, 300),
    count=st.integers(0, 300),
    window=st.one_of(st.none(), st.integers(1, 400)),
)
def test_sum_min_matches_brute_force(first: int, count: int, window: int | None) -> None:
    cap = window if window is not None else 10**9
    assert _sum_min(first, count, window) == sum(min(first + i, cap) for i in range(count))


@st.composite
def specs(draw: st.DrawFn) -> ArchitectureSpec:
    groups = draw(
        st.dictionaries(
            st.one_of(st.none(), st.integers(1, 64)), st.integers(1, 10**4), min_size=1, max_size=3
        )
    )
    return ArchitectureSpec(
        family="synthetic",
        num_layers=2,
        linear_flops_per_token=float(draw(st.integers(1, 10**7))),
        attention_flops_per_pair=tuple(groups.items()),
        lm_head_flops_per_position=float(draw(st.integers(1, 10**6))),
    )


@given(spec=specs(), prompt=st.integers(1, 200), output=st.integers(1, 200))
def test_generation_flops_equals_the_sum_of_forward_passes(
    spec: ArchitectureSpec, prompt: int, output: int
) -> None:
    """Closed form == prefill pass + one decode pass per step over the cached keys."""

    def attention(queries: int, keys: dict[int | None, int]) -> float:
        return sum(per_pair * queries * keys[w] for w, per_pair in spec.attention_flops_per_pair)

    prefill = (
        prompt * spec.linear_flops_per_token
        + spec.lm_head_flops_per_position
        + attention(prompt, {w: prompt for w, _ in spec.attention_flops_per_pair})
    )
    decode = 0.0
    for step in range(1, output):
        context = prompt + step
        keys = {
            w: context if w is None else min(context, w) for w, _ in spec.attention_flops_per_pair
        }
        decode += spec.linear_flops_per_token + spec.lm_head_flops_per_position + attention(1, keys)
    got = generation_flops(spec, prompt, output)
    assert got[0] == pytest.approx(prefill, rel=1e-12)
    assert got[1] == pytest.approx(decode, rel=1e-12, abs=1e-9)


@given(batch=st.integers(1, 64), prompt=st.integers(1, 4096), output=st.integers(1, 4096))
def test_flops_scale_exactly_with_batch(batch: int, prompt: int, output: int) -> None:
    config = _LLAMA_CONFIG
    one = estimate_flops(
        config, batch_size=1, input_tokens=prompt, output_tokens=output, method="architecture"
    )
    many = estimate_flops(
        config, batch_size=batch, input_tokens=prompt, output_tokens=output, method="architecture"
    )
    assert many.value == pytest.approx(batch * one.value, rel=1e-12)


@given(prompt=st.integers(1, 2048), output=st.integers(1, 2048))
def test_more_tokens_never_cost_less(prompt: int, output: int) -> None:
    spec = spec_from_config(_LLAMA_CONFIG)
    base = sum(generation_flops(spec, prompt, output))
    assert sum(generation_flops(spec, prompt + 1, output)) > base
    assert sum(generation_flops(spec, prompt, output + 1)) > base


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(batch_size=0, input_tokens=4, output_tokens=2),
        dict(batch_size=1, input_tokens=0, output_tokens=2),
        dict(batch_size=1, input_tokens=4, output_tokens=0),
        dict(batch_size=2, input_tokens=[4], output_tokens=2),
        dict(batch_size=2, input_tokens=[4, 0], output_tokens=2),
        dict(batch_size=True, input_tokens=4, output_tokens=2),
        dict(batch_size=1, input_tokens=4.0, output_tokens=2),
    ],
)
def test_invalid_workloads_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        estimate_flops(_LLAMA_CONFIG, method="architecture", **kwargs)


_LLAMA_CONFIG = tiny_config("llama")
