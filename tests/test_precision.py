"""Precision detection from loaded models and quantisation records."""

from __future__ import annotations

import pytest
import torch
from transformers import AwqConfig, BitsAndBytesConfig, FineGrainedFP8Config, GPTQConfig

from llenergymeasure.compute.precision import (
    detect_precision,
    dtype_name,
    precision_from_config,
    quantization_note,
)
from llenergymeasure.domain.metrics import PrecisionMetadata
from tests.flops_models import tiny_config, tiny_model


@pytest.mark.parametrize(
    "dtype,name", [(torch.float32, "fp32"), (torch.float16, "fp16"), (torch.bfloat16, "bf16")]
)
def test_plain_model_precision_is_its_dtype(dtype: torch.dtype, name: str) -> None:
    meta = detect_precision(tiny_model("llama").to(dtype))
    assert (meta.weights, meta.activations, meta.compute) == (name, name, name)
    assert meta.quantization_method is None
    assert meta.mixed_precision_breakdown is None


def test_cpu_fp32_is_not_tf32() -> None:
    assert detect_precision(tiny_model("gpt2")).compute == "fp32"


@pytest.mark.parametrize(
    "capability,setting,expected",
    [
        ((8, 0), "high", True),
        ((9, 0), "medium", True),
        ((8, 6), "highest", False),
        ((7, 0), "high", False),  # Volta has no TF32
    ],
)
def test_tf32_needs_ampere_and_permission(
    monkeypatch: pytest.MonkeyPatch, capability: tuple[int, int], setting: str, expected: bool
) -> None:
    from llenergymeasure.compute import precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *_: capability)
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision(setting)
        assert precision._uses_tf32("cuda") is expected
        assert precision._uses_tf32("cpu") is False
    finally:
        torch.set_float32_matmul_precision(before)


def test_mixed_weights_report_shares() -> None:
    m = tiny_model("llama").to(torch.bfloat16)
    m.model.layers[0].mlp.to(torch.float32)  # a real fraction of the weights kept in fp32
    shares = {"fp32": 0, "bf16": 0}
    for p in m.parameters():
        shares[dtype_name(p.dtype)] += p.numel()
    total = sum(shares.values())
    meta = detect_precision(m)
    assert meta.weights == "mixed"
    assert meta.compute == max(shares, key=shares.__getitem__)
    assert meta.mixed_precision_breakdown == pytest.approx(
        {k: v / total for k, v in shares.items()}
    )


def test_tiny_second_dtype_is_not_mixed() -> None:
    m = tiny_model("llama", hidden_size=64, intermediate_size=128, num_attention_heads=4).to(
        torch.bfloat16
    )
    m.model.norm.to(torch.float32)  # 64 of ~100k parameters
    meta = detect_precision(m)
    assert meta.weights == "bf16"
    assert meta.mixed_precision_breakdown is None


def _quantised(quant: object, dtype: torch.dtype = torch.float16) -> PrecisionMetadata:
    m = tiny_model("llama").to(dtype)
    m.config.quantization_config = quant
    return detect_precision(m)


def test_bitsandbytes_4bit_computes_at_its_compute_dtype() -> None:
    meta = _quantised(BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.bfloat16))
    assert meta.weights == "int4"
    assert meta.compute == "bf16"
    assert meta.activations == "bf16"
    assert meta.quantization_method == "bitsandbytes"
    assert meta.precision_factor == 1.0
    note = quantization_note(meta)
    assert note is not None and "int4 and dequantised" in note and "counted at bf16" in note


def test_bitsandbytes_4bit_default_compute_dtype_is_fp32() -> None:
    meta = _quantised(BitsAndBytesConfig(load_in_4bit=True))
    assert (meta.weights, meta.compute) == ("int4", "fp32")


def test_bitsandbytes_8bit_is_llm_int8() -> None:
    meta = _quantised(BitsAndBytesConfig(load_in_8bit=True))
    assert (meta.weights, meta.activations, meta.compute) == ("int8", "fp16", "int8")
    assert "LLM.int8()" in quantization_note(meta)


@pytest.mark.parametrize("config_cls", [GPTQConfig, AwqConfig])
@pytest.mark.parametrize("bits,label", [(4, "int4"), (8, "int8"), (3, "mixed")])
def test_weight_only_schemes_compute_at_activation_dtype(
    config_cls: type, bits: int, label: str
) -> None:
    meta = _quantised(config_cls(bits=bits), torch.float16)
    assert meta.weights == label
    assert meta.compute == "fp16"
    assert meta.activations == "fp16"
    assert meta.quantization_method == config_cls(bits=4).to_dict()["quant_method"].value
    assert "dequantised, matmuls run at fp16" in quantization_note(meta)


def test_fp8_scheme_computes_at_fp8() -> None:
    meta = _quantised(FineGrainedFP8Config(), torch.bfloat16)
    assert (meta.weights, meta.activations, meta.compute) == ("fp8", "fp8", "fp8")
    assert meta.precision_factor == 0.5
    assert "matmuls run at fp8" in quantization_note(meta)


def test_fp8_checkpoint_dequantised_at_load() -> None:
    meta = _quantised(FineGrainedFP8Config(dequantize=True), torch.bfloat16)
    assert (meta.weights, meta.compute) == ("bf16", "bf16")


def test_compressed_tensors_w8a8_fp8_and_w4a16() -> None:
    fp8 = {
        "quant_method": "compressed-tensors",
        "config_groups": {
            "group_0": {
                "weights": {"num_bits": 8, "type": "float"},
                "input_activations": {"num_bits": 8, "type": "float"},
            }
        },
    }
    w4a16 = {
        "quant_method": "compressed-tensors",
        "config_groups": {"group_0": {"weights": {"num_bits": 4, "type": "int"}}},
    }
    assert _quantised(fp8).compute == "fp8"
    meta = _quantised(w4a16)
    assert (meta.weights, meta.compute) == ("int4", "fp16")


def test_unknown_scheme_is_recorded_as_mixed_weights() -> None:
    meta = _quantised({"quant_method": "hqq"}, torch.bfloat16)
    assert (meta.weights, meta.compute, meta.quantization_method) == ("mixed", "bf16", "hqq")


def test_precision_from_config_reads_dtype_and_quantisation() -> None:
    assert precision_from_config(tiny_config("llama")).compute == "fp32"
    assert precision_from_config(tiny_config("llama", dtype="bfloat16")).compute == "bf16"
    config = tiny_config("llama", dtype="float16")
    config.quantization_config = {"quant_method": "gptq", "bits": 4}
    meta = precision_from_config(config)
    assert (meta.weights, meta.compute, meta.quantization_method) == ("int4", "fp16", "gptq")


def test_plain_precision_has_no_note() -> None:
    assert quantization_note(PrecisionMetadata(compute="bf16")) is None
