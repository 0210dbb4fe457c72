"""Requests are the unit of measurement: one trace per request, and the latencies it implies.

Definitions are those of vLLM's serving benchmark, so figures compare with it:

- TTFT = first token - arrival (arrival: when the request was handed to the engine);
- ITL = the gaps between consecutive tokens of one request (needs every token's time);
- TPOT = (finish - first token) / (output tokens - 1), for requests with two tokens or more;
- E2E = finish - arrival (finish: when the request's last token was produced).

All times of a trace are seconds on one monotonic clock of the engine; only differences count.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Literal

from pydantic import Field, model_validator

from llenergymeasure.domain.base import DomainModel

#: How requests reach the engine. ``closed``: a batch arrives when the previous one finished
#: (static batching, as ``model.generate`` in a loop); ``all_at_once``: every request arrives at
#: the start of the window (offline throughput, as vLLM's offline benchmark).
OfflineArrivalModel = Literal["closed", "all_at_once"]
ARRIVAL_MODELS: tuple[str, ...] = ("closed", "all_at_once")
#: A result's arrival model: the offline ones, or ``open_loop`` (serving: requests sent on a
#: schedule whatever the responses, see ``serving.arrivals``).
ArrivalModel = Literal["closed", "all_at_once", "open_loop"]

#: How a latency figure was obtained: from every token's time, from the first and last token
#: times only (ITL then cannot be reported), or not at all.
LatencyMethod = Literal["token_timestamps", "first_last_token", "not_reported"]

_TIME_TOLERANCE_SEC = 1e-9


class RequestTrace(DomainModel):
    """What happened to one request, as the engine saw it."""

    arrival_sec: float = Field(description="When the request was handed to the engine.")
    scheduled_sec: float | None = Field(
        default=None, description="When the engine first scheduled it (None if not reported)."
    )
    first_token_sec: float | None = Field(
        default=None, description="When its first token was produced (None: no token)."
    )
    finish_sec: float = Field(description="When its last token was produced.")
    token_times_sec: list[float] = Field(
        default_factory=list,
        description="Every output token's time, where the engine reports them; else empty.",
    )
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0, description="Generated tokens up to and including EOS.")
    stopped_at_eos: bool = False
    num_preemptions: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> RequestTrace:
        eps = _TIME_TOLERANCE_SEC
        if self.output_tokens > 0 and self.first_token_sec is None:
            raise ValueError("a request with output tokens needs first_token_sec")
        if self.first_token_sec is not None:
            if self.first_token_sec < self.arrival_sec - eps:
                raise ValueError("first_token_sec is before arrival_sec")
            if self.finish_sec < self.first_token_sec - eps:
                raise ValueError("finish_sec is before first_token_sec")
        elif self.finish_sec < self.arrival_sec - eps:
            raise ValueError("finish_sec is before arrival_sec")
        times = self.token_times_sec
        if times:
            if len(times) != self.output_tokens:
                raise ValueError(
                    f"token_times_sec has {len(times)} times for {self.output_tokens} tokens"
                )
            if any(b < a - eps for a, b in itertools.pairwise(times)):
                raise ValueError("token_times_sec must not decrease")
        return self

    @property
    def streamed(self) -> bool:
        """True when every token's time is known (ITL can be computed)."""
        return bool(self.token_times_sec) or self.output_tokens <= 1

    def ttft_ms(self) -> float | None:
        if self.first_token_sec is None:
            return None
        return max(0.0, self.first_token_sec - self.arrival_sec) * 1e3

    def e2e_ms(self) -> float:
        return max(0.0, self.finish_sec - self.arrival_sec) * 1e3

    def tpot_ms(self) -> float | None:
        if self.output_tokens < 2 or self.first_token_sec is None:
            return None
        return max(0.0, self.finish_sec - self.first_token_sec) * 1e3 / (self.output_tokens - 1)

    def itl_ms(self) -> list[float]:
        times = self.token_times_sec
        return [max(0.0, b - a) * 1e3 for a, b in itertools.pairwise(times)]


def itl_method(traces: Sequence[RequestTrace]) -> LatencyMethod:
    """ITL needs every token's time of every request; otherwise it is not reported."""
    if not traces or not all(t.streamed for t in traces):
        return "not_reported"
    return "token_timestamps"


def timing_method(traces: Sequence[RequestTrace]) -> LatencyMethod:
    """How TTFT, TPOT and E2E were obtained: all token times, or only first and last."""
    if not traces:
        return "not_reported"
    return "token_timestamps" if itl_method(traces) == "token_timestamps" else "first_last_token"


def with_arrival(traces: Sequence[RequestTrace], arrival_sec: float) -> list[RequestTrace]:
    """The traces as if every request had arrived at ``arrival_sec`` (``all_at_once``)."""
    return [t.model_copy(update={"arrival_sec": min(arrival_sec, t.arrival_sec)}) for t in traces]
