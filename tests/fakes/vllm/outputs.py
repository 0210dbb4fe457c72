"""Fake of ``vllm.outputs``: RequestOutput and CompletionOutput with vLLM 0.32's field names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vllm.v1.metrics.stats import RequestStateStats


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None = None
    logprobs: Any = None
    finish_reason: str | None = None  # 'stop' (EOS or stop string) or 'length'
    stop_reason: int | str | None = None


@dataclass
class RequestOutput:
    request_id: str
    prompt: str | None
    prompt_token_ids: list[int] | None
    prompt_logprobs: Any
    outputs: list[CompletionOutput]
    finished: bool
    metrics: RequestStateStats | None = None
    num_cached_tokens: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
