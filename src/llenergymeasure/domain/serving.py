"""Serving figures: a load against a server, its steady-state window, energy per (good) request.

Attached to an ``ExperimentResult`` of a serving run (``ExperimentResult.serving``); the
result's ``energy`` and ``inference`` then cover the steady-state window (see ``window``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from llenergymeasure.domain.base import DomainModel
from llenergymeasure.domain.inference import LatencyStats


class SloLimits(DomainModel):
    """Latency limits a request must meet to be good (None: no limit on that figure)."""

    ttft_ms: float | None = Field(default=None, gt=0)
    tpot_ms: float | None = Field(default=None, gt=0)
    e2e_ms: float | None = Field(default=None, gt=0)


class LoadSpec(DomainModel):
    """The load as configured."""

    request_rate_per_sec: float | None = Field(
        description="Configured request rate; None means every request at once (rate inf)."
    )
    arrival: Literal["poisson", "gamma", "all_at_once"]
    burstiness: float = Field(gt=0, description="Gamma shape of the gaps; 1 is Poisson.")
    max_concurrency: int | None = Field(default=None, ge=1)
    seed: int = 0


class ServingMetrics(DomainModel):
    """What a serving run measured beyond the shared inference and energy figures."""

    server_url: str
    launched: bool = Field(description="True when llem started (and stopped) the server.")
    load: LoadSpec
    slo: SloLimits
    requests_sent: int = Field(ge=0)
    requests_ok: int = Field(ge=0)
    requests_failed: int = Field(ge=0)
    errors: dict[str, int] = Field(
        default_factory=dict, description="Failed requests by kind of error."
    )
    steady_state: bool = Field(
        description="False when no steady state was found and the whole run is used."
    )
    window_rule: str
    window_start_offset_sec: float = Field(ge=0, description="From the first request sent.")
    window_sec: float = Field(ge=0)
    run_sec: float = Field(ge=0, description="First request sent to last response finished.")
    window_energy_share: float = Field(
        ge=0, le=1, description="The window's share of the run's sampled energy."
    )
    run_energy_j: float = Field(ge=0, description="Metered energy of the whole run (raw).")
    window_output_tokens: float = Field(ge=0, description="Tokens produced inside the window.")
    achieved_request_rate_per_sec: float = Field(
        ge=0, description="Requests sent per second over the sending span."
    )
    output_tokens_per_sec: float = Field(ge=0, description="Window tokens / window seconds.")
    energy_per_output_token_j: float = Field(ge=0, description="Window energy / window tokens.")
    energy_per_request_j: float = Field(
        ge=0, description="J per output token x mean output tokens of the successful requests."
    )
    good_requests: int = Field(ge=0, description="Successful requests within every SLO.")
    goodput_per_sec: float = Field(ge=0, description="Good requests per second of the run.")
    energy_per_good_request_j: float | None = Field(
        default=None,
        ge=0,
        description="J per output token x every output token of the run / good requests: what "
        "each good request costs when the failed and slow ones are charged to it.",
    )
    client_lag: LatencyStats = Field(
        description="How late the client sent each request against its schedule."
    )
