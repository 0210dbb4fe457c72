"""Precision of a loaded model: weights, activations, compute, and the quantisation behind them.

Read from the parameters' dtypes and the config's ``quantization_config``; torch only inside
functions. ``compute`` is the precision the matrix products run at, which is what FLOPs are
counted at and what a device's peak is looked up for.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from llenergymeasure.domain.metrics import PrecisionMetadata

_DTYPE_NAMES: dict[str, str] = {
    "float32": "fp32",
    "float": "fp32",
    "float16": "fp16",
    "half": "fp16",
    "bfloat16": "bf16",
    "float8_e4m3fn": "fp8",
    "float8_e4m3fnuz": "fp8",
    "float8_e5m2": "fp8",
    "float8_e5m2fnuz": "fp8",
    "int8": "int8",
}

#: Share of parameters a second floating dtype must reach for the weights to count as mixed.
MIXED_THRESHOLD = 0.01


def dtype_name(dtype: Any) -> str | None:
    """'fp32' / 'fp16' / 'bf16' / 'fp8' / 'int8' for a torch dtype or its name, else None."""
    if dtype is None:
        return None
    return _DTYPE_NAMES.get(str(dtype).removeprefix("torch."))


def quantization_dict(config: Any) -> dict[str, Any] | None:
    """The config's quantisation record as a plain dict (None when not quantised)."""
    quant = getattr(config, "quantization_config", None)
    if quant is None:
        return None
    if not isinstance(quant, dict):
        to_dict = getattr(quant, "to_dict", None)
        quant = to_dict() if callable(to_dict) else dict(vars(quant))
    return quant


def _method(quant: dict[str, Any]) -> str:
    method = quant.get("quant_method", "unknown")
    return str(getattr(method, "value", method)).lower()


def _bits_label(bits: Any) -> str:
    return {8: "int8", 4: "int4"}.get(bits if isinstance(bits, int) else -1, "mixed")


def _from_quantization(quant: dict[str, Any], activations: str) -> PrecisionMetadata:
    """Precision implied by a quantisation record; ``activations`` is the model's float dtype."""
    method = _method(quant)
    if method == "bitsandbytes":
        if quant.get("load_in_4bit"):
            compute = dtype_name(quant.get("bnb_4bit_compute_dtype")) or "fp32"
            return PrecisionMetadata(
                weights="int4",
                activations=compute,  # type: ignore[arg-type]
                compute=compute,  # type: ignore[arg-type]
                quantization_method="bitsandbytes",
            )
        # LLM.int8(): activations are quantised on the fly; int8 matmuls, outliers in 16-bit.
        return PrecisionMetadata(
            weights="int8",
            activations=activations,  # type: ignore[arg-type]
            compute="int8",
            quantization_method="bitsandbytes",
        )
    if method in ("gptq", "awq"):
        bits = quant.get("bits", quant.get("w_bit"))
        return PrecisionMetadata(
            weights=_bits_label(bits),  # type: ignore[arg-type]
            activations=activations,  # type: ignore[arg-type]
            compute=activations,  # type: ignore[arg-type]  # weight-only: dequantised
            quantization_method=method,
        )
    if method in ("fp8", "fbgemm_fp8") and not quant.get("dequantize"):
        return PrecisionMetadata(
            weights="fp8", activations="fp8", compute="fp8", quantization_method=method
        )
    if method == "compressed-tensors":
        return _from_compressed_tensors(quant, activations)
    if method in ("fp8", "fbgemm_fp8"):  # loaded with dequantize=True: fp8 only on disk
        return PrecisionMetadata(
            weights=activations,  # type: ignore[arg-type]
            activations=activations,  # type: ignore[arg-type]
            compute=activations,  # type: ignore[arg-type]
            quantization_method=method,
        )
    # Unrecognised scheme: storage unknown, assume weight-only (dequantised compute).
    return PrecisionMetadata(
        weights="mixed",
        activations=activations,  # type: ignore[arg-type]
        compute=activations,  # type: ignore[arg-type]
        quantization_method=method,
    )


def _scheme_label(scheme: dict[str, Any] | None) -> str | None:
    """'fp8' / 'int8' / 'int4' for a compressed-tensors weights or activations scheme."""
    if not scheme:
        return None
    bits, kind = scheme.get("num_bits"), scheme.get("type", "int")
    if kind == "float" and bits == 8:
        return "fp8"
    return _bits_label(bits)


def _from_compressed_tensors(quant: dict[str, Any], activations: str) -> PrecisionMetadata:
    groups = quant.get("config_groups") or {}
    group = next(iter(groups.values()), {}) if groups else {}
    weights = _scheme_label(group.get("weights")) or "mixed"
    acts = _scheme_label(group.get("input_activations"))
    if acts in ("fp8", "int8"):
        compute = acts  # weights and activations quantised: the matmul runs at that precision
    else:
        acts, compute = activations, activations
    return PrecisionMetadata(
        weights=weights,  # type: ignore[arg-type]
        activations=acts,  # type: ignore[arg-type]
        compute=compute,  # type: ignore[arg-type]
        quantization_method="compressed-tensors",
    )


def _uses_tf32(device_type: str) -> bool:
    """True when fp32 matmuls on this device run on TF32 tensor cores (Ampere+ and allowed)."""
    if device_type != "cuda":
        return False
    import torch

    if not torch.cuda.is_available() or torch.cuda.get_device_capability()[0] < 8:
        return False
    return _fp32_matmul_allows_tf32()


def _fp32_matmul_allows_tf32() -> bool:
    """PyTorch's fp32 matmul setting, read through the new API first, then the legacy ones."""
    import torch

    matmul = torch.backends.cuda.matmul
    setting = getattr(matmul, "fp32_precision", None)
    if setting not in (None, "none"):
        return setting == "tf32"
    try:
        if matmul.allow_tf32:
            return True
    except RuntimeError:  # raised when the legacy and new APIs were mixed
        pass
    return torch.get_float32_matmul_precision() != "highest"


def _config_dtype(config: Any) -> str:
    """The config's dtype ('fp32' if unset); ``torch_dtype`` only where ``dtype`` is absent."""
    name = "dtype" if hasattr(config, "dtype") else "torch_dtype"
    return dtype_name(getattr(config, name, None)) or "fp32"


def precision_from_config(config: Any) -> PrecisionMetadata:
    """Precision a config describes (its dtype, default fp32, and its quantisation record)."""
    activations = _config_dtype(config)
    if activations not in ("fp32", "fp16", "bf16"):
        activations = "fp32"
    quant = quantization_dict(config)
    if quant is not None:
        return _from_quantization(quant, activations)
    return PrecisionMetadata(compute=activations)  # type: ignore[arg-type]


def detect_precision(model: Any) -> PrecisionMetadata:
    """Precision of a loaded transformers model, from its parameters and quantisation config.

    Non-quantised: the floating dtype holding most parameters is the compute precision (tf32
    when fp32 matmuls run on TF32 tensor cores); a second dtype above 1% of the parameters
    makes the weights 'mixed', with the shares as the breakdown. Quantised: see
    ``_from_quantization`` (bitsandbytes 4-bit computes at its compute dtype, GPTQ / AWQ at
    the activation dtype, fp8 schemes at fp8, LLM.int8() at int8).
    """
    shares: Counter[str] = Counter()
    device_type = "cpu"
    for parameter in model.parameters():
        name = dtype_name(parameter.dtype)
        if name in ("fp32", "fp16", "bf16"):
            shares[name] += parameter.numel()
            device_type = parameter.device.type
    config = model.config
    dominant = shares.most_common(1)[0][0] if shares else _config_dtype(config)
    quant = quantization_dict(config)
    if quant is not None:
        return _from_quantization(quant, dominant)
    compute = "tf32" if dominant == "fp32" and _uses_tf32(device_type) else dominant
    total = sum(shares.values())
    significant = {
        k: v / total for k, v in shares.items() if total and v / total >= MIXED_THRESHOLD
    }
    if len(significant) > 1:
        norm = sum(significant.values())
        return PrecisionMetadata(
            weights="mixed",
            activations=dominant,  # type: ignore[arg-type]
            compute=compute,  # type: ignore[arg-type]
            mixed_precision_breakdown={k: v / norm for k, v in significant.items()},
        )
    return PrecisionMetadata(
        weights=dominant,  # type: ignore[arg-type]
        activations=dominant,  # type: ignore[arg-type]
        compute=compute,  # type: ignore[arg-type]
    )


def quantization_note(precision: PrecisionMetadata) -> str | None:
    """One sentence on what quantisation means for the FLOPs count (None if not quantised)."""
    method = precision.quantization_method
    if method is None:
        return None
    if method == "bitsandbytes" and precision.compute == "int8":
        return (
            "bitsandbytes LLM.int8(): activations quantised to int8 on the fly, int8 matmuls "
            "with outlier columns in 16-bit; FLOPs counted at int8"
        )
    if precision.compute in ("fp8", "int8") and precision.weights == precision.compute:
        return (
            f"{method}: weights {precision.weights}, matmuls run at {precision.compute}; "
            f"FLOPs counted at {precision.compute}"
        )
    if precision.weights == precision.compute:
        return f"{method}: weights dequantised to {precision.compute} at load; FLOPs counted there"
    return (
        f"{method}: weights stored as {precision.weights} and dequantised, matmuls run at "
        f"{precision.compute}; FLOPs counted at {precision.compute}"
    )
