"""Each engine's own config section (``transformers: {...}``, ``vllm: {...}``), one class each.

A new engine adds its class here and to ``ENGINE_SECTIONS``; ``ExperimentConfig`` validates the
section of the engine it names with that class, and only that section enters the config hash.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TransformersSection(_Section):
    """Options of the transformers engine (``model.generate`` on static batches)."""

    attn_implementation: Literal["auto", "eager", "sdpa", "flash_attention_2"] = Field(
        default="auto", description="Attention kernel; auto: the library's default for the model."
    )


class VLLMSection(_Section):
    """Options of the vLLM engine (``vllm.LLM``, continuous batching); names as vLLM's."""

    gpu_memory_utilization: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description="Share of device memory vLLM reserves (on CPU: of NUMA node 0's memory).",
    )
    max_num_seqs: int = Field(default=256, ge=1, description="Most requests in one step.")
    max_num_batched_tokens: int | None = Field(
        default=None, ge=1, description="Most tokens in one step; None: vLLM's default."
    )
    tensor_parallel_size: int = Field(default=1, ge=1, description="GPUs the model is split on.")
    enforce_eager: bool = Field(default=False, description="No CUDA graphs.")
    kv_cache_dtype: Literal["auto", "fp8", "fp8_e4m3", "fp8_e5m2", "bfloat16"] = "auto"
    quantization: str | None = Field(
        default=None, description="vLLM quantization method (awq, gptq, fp8, ...); None: none."
    )
    enable_prefix_caching: bool = Field(
        default=False, description="Off by default so repeated prompts are computed in full."
    )
    max_model_len: int | None = Field(
        default=None, ge=1, description="Context length; None: the model's own."
    )
    stream: bool = Field(
        default=False,
        description="Step vLLM's engine and time every token (ITL reported); off: per-request "
        "metrics only (TTFT, TPOT, E2E).",
    )


#: Engine name -> the class that validates its section.
ENGINE_SECTIONS: dict[str, type[_Section]] = {
    "transformers": TransformersSection,
    "vllm": VLLMSection,
}

EngineName = Literal["transformers", "vllm"]
