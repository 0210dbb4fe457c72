"""``quantization: torch-int8``: torch dynamic int8 quantisation of Linear layers, on CPU.

Weights are stored as int8 (per-tensor affine); each Linear quantises its input activations to
int8 on the fly and runs an int8 matrix product (fbgemm / onednn), returning float32. Everything
that is not a Linear (embeddings, norms, attention's softmax) stays float32. FLOPs are counted
on the float model before quantisation (torch's FLOP counter does not see quantised kernels),
at int8, the precision the matrix products run at.
"""

from __future__ import annotations

import warnings
from typing import Any

from llenergymeasure.domain.metrics import PrecisionMetadata
from llenergymeasure.errors import ConfigError

QUANTIZATION_METHOD = "torch-dynamic-int8"

#: What a torch-int8 model computes at: int8 weights and matmuls, float32 elsewhere.
TORCH_INT8_PRECISION = PrecisionMetadata(
    weights="int8", activations="fp32", compute="int8", quantization_method=QUANTIZATION_METHOD
)


def check_torch_int8(config: Any, device_map: str) -> None:
    """torch-int8 needs the CPU and float32 weights; say so in one line otherwise."""
    if device_map != "cpu":
        raise ConfigError(
            f"quantization 'torch-int8' runs on the CPU only (device_map {device_map!r}); "
            "use bnb-8bit on CUDA"
        )
    if config.dtype not in ("auto", "float32"):
        raise ConfigError(
            f"quantization 'torch-int8' quantises float32 Linear layers; dtype {config.dtype!r} "
            "is not allowed (use auto or float32)"
        )


def quantize_torch_int8(model: Any) -> Any:
    """A copy of ``model`` with every ``torch.nn.Linear`` dynamically quantised to int8."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated in favour of torchao
        from torch.ao.quantization import quantize_dynamic

        quantized = quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=False)
    quantized.eval()
    return quantized
