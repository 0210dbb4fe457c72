"""When requests are sent: seeded Poisson or gamma arrival schedules.

Gaps between requests are drawn from a gamma distribution with shape ``burstiness`` and mean
``1 / rate``: burstiness 1 is a Poisson process (exponential gaps), below 1 burstier, above 1
more regular. A rate of ``inf`` sends every request at once (offline throughput).
"""

from __future__ import annotations

import math

import numpy as np


def arrival_offsets_sec(
    n_requests: int | None,
    rate_per_sec: float,
    *,
    burstiness: float = 1.0,
    duration_sec: float | None = None,
    seed: int = 0,
) -> list[float]:
    """Send times (seconds from the start) of a seeded arrival process.

    Give ``n_requests`` (that many arrivals) or ``duration_sec`` (every arrival before it), or
    both (whichever ends first). The first request is sent at 0.
    """
    if n_requests is None and duration_sec is None:
        raise ValueError("give n_requests or duration_sec")
    if rate_per_sec <= 0:
        raise ValueError(f"request rate must be > 0 (or inf), got {rate_per_sec}")
    if burstiness <= 0:
        raise ValueError(f"burstiness must be > 0, got {burstiness}")
    if math.isinf(rate_per_sec):
        if n_requests is None:
            raise ValueError("an infinite rate needs n_requests")
        return [0.0] * n_requests
    limit = n_requests if n_requests is not None else math.inf
    rng = np.random.default_rng(seed)
    scale = 1.0 / (rate_per_sec * burstiness)
    offsets: list[float] = []
    t = 0.0
    while len(offsets) < limit:
        if duration_sec is not None and t >= duration_sec:
            break
        offsets.append(t)
        t += float(rng.gamma(burstiness, scale))
    return offsets
