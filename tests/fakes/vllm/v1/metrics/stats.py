"""Fake of ``vllm.v1.metrics.stats.RequestStateStats`` (vLLM 0.32/0.33 field names and clocks)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RequestStateStats:
    num_generation_tokens: int = 0
    num_preemptions: int = 0
    # front-end timestamp, wall clock (time.time())
    arrival_time: float = 0.0
    # engine-core timestamps, monotonic (time.monotonic())
    queued_ts: float = 0.0
    scheduled_ts: float = 0.0
    first_token_ts: float = 0.0
    last_token_ts: float = 0.0
    # wall clock, arrival to the first token's output in the front end
    first_token_latency: float = 0.0
    is_corrupted: bool = False
