"""calflops and parameter_estimate on real tiny models, and how 'auto' chooses and explains."""

from __future__ import annotations

import functools
from typing import Any

import pytest
import torch

from llenergymeasure.compute import counting
from llenergymeasure.compute.flops import estimate_flops, estimate_flops_breakdown
from llenergymeasure.errors import ConfigError, InstrumentError
from tests.flops_models import (
    EXTRA_CONFIGS,
    TINY_CONFIGS,
    reference_generate_flops,
    tiny_config,
    tiny_model,
)

MOE = {"mixtral", "qwen2_moe", "qwen3_moe"}
WORKLOADS = [(1, 6, 5), (3, 13, 8)]


@functools.cache
def model(family: str, attn: str | None = None) -> Any:
    """The tiny model as a user would load it (default attention and experts kernels)."""
    return tiny_model(family, attn=attn)


@functools.cache
def reference(family: str, batch: int, prompt: int, output: int) -> float:
    eager = tiny_model(family, attn="eager", experts="eager" if family in MOE else None)
    return reference_generate_flops(eager, batch, prompt, output)


@pytest.mark.parametrize("batch,prompt,output", WORKLOADS)
@pytest.mark.parametrize("family", list(TINY_CONFIGS))
def test_calflops_within_1_percent_of_flop_counter(
    family: str, batch: int, prompt: int, output: int
) -> None:
    result = estimate_flops(
        model(family), batch_size=batch, input_tokens=prompt, output_tokens=output
    )
    assert result.method == "calflops"
    assert result.confidence == "high"
    assert result.value == pytest.approx(reference(family, batch, prompt, output), rel=0.01)


@pytest.mark.parametrize("family", list(EXTRA_CONFIGS))
def test_calflops_on_further_families(family: str) -> None:
    result = estimate_flops(model(family), batch_size=2, input_tokens=13, output_tokens=8)
    assert result.method == "calflops"
    assert result.notes is None  # agrees with the architecture formula within 2%
    assert result.value == pytest.approx(reference(family, 2, 13, 8), rel=0.01)


@pytest.mark.parametrize("family", ["llama", "mixtral", "gpt2"])
def test_calflops_count_does_not_depend_on_loaded_kernels(family: str) -> None:
    sdpa = model(family, "sdpa")
    eager = tiny_model(family, attn="eager", experts="eager" if family in MOE else None)
    attention_before = sdpa.config._attn_implementation
    experts_before = sdpa.get_experts_implementation()
    counts = [
        estimate_flops_breakdown(
            m, batch_size=2, input_tokens=7, output_tokens=4, method="calflops"
        )
        for m in (sdpa, eager)
    ]
    assert counts[0] == counts[1]
    assert attention_before == "sdpa"
    assert sdpa.config._attn_implementation == attention_before  # restored after counting
    assert sdpa.get_experts_implementation() == experts_before


def test_counting_leaves_generation_and_torch_unchanged() -> None:
    m = model("mixtral")
    ids = torch.tensor([[5, 6, 7, 8]])
    kwargs = dict(max_new_tokens=6, do_sample=False, pad_token_id=0)
    before = m.generate(ids, **kwargs)
    patched_by_calflops = (torch.nn.functional.linear, torch.matmul, torch.Tensor.matmul)
    estimate_flops(m, batch_size=1, input_tokens=4, output_tokens=3, method="calflops")
    assert torch.equal(m.generate(ids, **kwargs), before)
    after = (torch.nn.functional.linear, torch.matmul, torch.Tensor.matmul)
    assert all(a is b for a, b in zip(after, patched_by_calflops, strict=True))
    assert not any(hasattr(mod, "__flops__") for mod in m.modules())


def test_calflops_split_prefill_is_the_first_forward_pass() -> None:
    split = estimate_flops_breakdown(
        model("llama"), batch_size=2, input_tokens=9, output_tokens=5, method="calflops"
    )
    assert split.prefill_flops == pytest.approx(reference("llama", 2, 9, 1), rel=0.01)
    assert split.prefill_flops + split.decode_flops == split.result.value
    assert split.decode_flops > 0


def test_calflops_with_per_sequence_lengths() -> None:
    result = estimate_flops(model("qwen2"), batch_size=3, input_tokens=[5, 8, 5], output_tokens=4)
    expected = sum(reference("qwen2", 1, n, 4) for n in (5, 8, 5))
    assert result.method == "calflops"
    assert result.value == pytest.approx(expected, rel=0.01)


def _non_embedding_by_name(m: Any) -> int:
    """Independent count: every parameter except token/position embeddings and the LM head."""
    skip = ("embed_tokens", "embed_positions", "wte", "wpe", "lm_head")
    return sum(p.numel() for n, p in m.named_parameters() if not any(s in n for s in skip))


@pytest.mark.parametrize("family", list(TINY_CONFIGS))
def test_parameter_estimate_is_exactly_2_n_tokens(family: str) -> None:
    m = model(family)
    batch, prompt, output = 3, 10, 6
    result = estimate_flops(
        m,
        batch_size=batch,
        input_tokens=prompt,
        output_tokens=output,
        method="parameter_estimate",
    )
    tokens = batch * (prompt + output - 1)
    assert result.method == "parameter_estimate"
    assert result.confidence == "low"
    assert result.value == 2 * _non_embedding_by_name(m) * tokens
    from_config = estimate_flops(
        tiny_config(family),
        batch_size=batch,
        input_tokens=prompt,
        output_tokens=output,
        method="parameter_estimate",
    )
    assert from_config.value == result.value


def test_parameter_estimate_split_counts_prompt_then_fed_back_tokens() -> None:
    split = estimate_flops_breakdown(
        model("llama"),
        batch_size=2,
        input_tokens=[3, 7],
        output_tokens=4,
        method="parameter_estimate",
    )
    n = _non_embedding_by_name(model("llama"))
    assert split.prefill_flops == 2 * n * (3 + 7)
    assert split.decode_flops == 2 * n * 2 * 3


def test_parameter_estimate_notes_moe_overcount() -> None:
    result = estimate_flops(
        model("mixtral"),
        batch_size=1,
        input_tokens=4,
        output_tokens=2,
        method="parameter_estimate",
    )
    assert "every expert's parameters are counted" in result.notes


def test_auto_on_config_uses_architecture_and_says_why() -> None:
    result = estimate_flops(tiny_config("llama"), batch_size=2, input_tokens=8, output_tokens=4)
    assert result.method == "architecture"
    assert result.notes == "calflops skipped: calflops needs a model with its weights loaded"


def test_auto_without_calflops_installed_uses_architecture(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(counting, "calflops_installed", lambda: False)
    result = estimate_flops(model("llama"), batch_size=1, input_tokens=8, output_tokens=4)
    assert result.method == "architecture"
    assert "calflops skipped: calflops is not installed" in result.notes


def test_auto_on_unknown_model_falls_to_parameter_estimate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(counting, "calflops_installed", lambda: False)
    m = model("llama")
    monkeypatch.setattr(m.config, "model_type", "my_new_arch")
    result = estimate_flops(m, batch_size=1, input_tokens=8, output_tokens=4)
    assert result.method == "parameter_estimate"
    assert "calflops skipped" in result.notes
    assert "architecture skipped: no FLOPs formula for model_type 'my_new_arch'" in result.notes


def test_calflops_failure_degrades_with_note(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(counting, "count_generation_with_calflops", broken)
    result = estimate_flops(model("llama"), batch_size=1, input_tokens=8, output_tokens=4)
    assert result.method == "architecture"
    assert "calflops skipped: calflops failed: RuntimeError: boom" in result.notes


def test_calflops_disagreeing_with_formula_is_noted(monkeypatch: pytest.MonkeyPatch) -> None:
    real = counting.count_generation_with_calflops

    def inflated(*args: Any) -> counting.CountedGeneration:
        counted = real(*args)
        return counting.CountedGeneration(counted.prefill_flops * 1.1, counted.decode_flops * 1.1)

    monkeypatch.setattr(counting, "count_generation_with_calflops", inflated)
    result = estimate_flops(model("llama"), batch_size=1, input_tokens=8, output_tokens=4)
    assert result.method == "calflops"
    assert "differs from the architecture formula by +10.0%" in result.notes


def test_quantised_model_skips_calflops_and_counts_at_compute_precision() -> None:
    from transformers import BitsAndBytesConfig

    m = tiny_model("llama")
    m.config.quantization_config = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_compute_dtype=torch.bfloat16
    )
    result = estimate_flops(m, batch_size=1, input_tokens=8, output_tokens=4)
    assert result.method == "architecture"
    assert result.precision == "bf16"
    assert "invisible to calflops' hooks" in result.notes
    assert "bitsandbytes: weights stored as int4 and dequantised" in result.notes
    assert "FLOPs counted at bf16" in result.notes


def test_precision_is_detected_or_overridden() -> None:
    m = tiny_model("gpt2").to(torch.bfloat16)
    assert estimate_flops(m, batch_size=1, input_tokens=4, output_tokens=2).precision == "bf16"
    forced = estimate_flops(m, batch_size=1, input_tokens=4, output_tokens=2, precision="fp8")
    assert forced.precision == "fp8"
    assert (
        estimate_flops(tiny_config("gpt2"), batch_size=1, input_tokens=4, output_tokens=2).precision
        == "fp32"
    )


def test_model_id_or_path_reads_config_only(tmp_path: Any) -> None:
    tiny_config("mistral").save_pretrained(tmp_path)
    by_path = estimate_flops(str(tmp_path), batch_size=2, input_tokens=12, output_tokens=5)
    by_config = estimate_flops(
        tiny_config("mistral"), batch_size=2, input_tokens=12, output_tokens=5
    )
    assert by_path.method == "architecture"
    assert by_path.value == by_config.value


def test_unreadable_model_id_is_a_user_error(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="cannot read the config of model"):
        estimate_flops(str(tmp_path / "missing"), batch_size=1, input_tokens=4, output_tokens=2)


def test_unknown_method_is_a_user_error() -> None:
    with pytest.raises(ConfigError, match="FLOPs method 'magic' is not one of"):
        estimate_flops(
            tiny_config("gpt2"), batch_size=1, input_tokens=4, output_tokens=2, method="magic"
        )


def test_importing_the_flops_api_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import llenergymeasure.compute.flops, llenergymeasure.compute.peaks, "
        "llenergymeasure.compute.precision, llenergymeasure.compute.metrics; "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd="src")


def test_no_applicable_method_is_an_instrument_error() -> None:
    from transformers import PretrainedConfig

    class NewArchConfig(PretrainedConfig):  # no model class: parameters cannot be counted
        model_type = "my_new_arch"

    config = NewArchConfig(vocab_size=97)
    with pytest.raises(InstrumentError, match="no FLOPs method applies: calflops skipped"):
        estimate_flops(config, batch_size=1, input_tokens=4, output_tokens=2)


def test_meta_device_model_is_treated_as_config_only() -> None:
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        meta = AutoModelForCausalLM.from_config(tiny_config("llama"))
    result = estimate_flops(meta, batch_size=1, input_tokens=6, output_tokens=3)
    assert result.method == "architecture"
    assert "weights loaded" in result.notes
