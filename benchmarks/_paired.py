"""Paired rounds until the ratio is known to +-2%: the statistics every ratio benchmark shares.

A benchmark gives a function that runs one *pair* (the thing measured and its reference, in an
order the function may alternate) and returns the two figures. ``run_paired`` keeps adding
pairs until the 95% bootstrap interval of the ratio is narrower than ``target`` on each side, or
a time cap is reached, and says which. The ratio reported is the geometric mean of the per-pair
ratios (the mean of their logs, so that 0.9 and 1/0.9 cancel); its interval comes from
resampling pairs, so drift that hits both members of a pair alike cancels out.
"""

from __future__ import annotations

import json
import math
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

#: The clocks a benchmark may divide by: wall time, or the process's CPU time (all threads).
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}

#: Where benchmarks leave their latest figures; `benchmarks/update_readme.py` reads them.
RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class RatioEstimate:
    """A ratio with its 95% interval, the rounds behind it and why the rounds stopped."""

    name: str
    ratio: float
    low: float
    high: float
    rounds: int
    stopped_by: str  # "precision" (interval within the target) or "time cap"
    target: float
    elapsed_sec: float
    pairs: list[tuple[float, float]] = field(default_factory=list)
    meaning: str = ""

    @property
    def half_width(self) -> float:
        """Half the interval's width relative to the ratio (0.02 = +-2%)."""
        return (self.high - self.low) / 2 / self.ratio

    def line(self) -> str:
        how = (
            f"within +-{self.target:.0%}"
            if self.stopped_by == "precision"
            else f"time cap hit at +-{self.half_width:.1%}"
        )
        return (
            f"{self.name}: {self.ratio:.3f} [95% CI {self.low:.3f}-{self.high:.3f}] "
            f"over {self.rounds} paired rounds ({how})"
        )


def ratio_interval(
    pairs: list[tuple[float, float]], *, n_boot: int = 4000, seed: int = 0
) -> tuple[float, float, float]:
    """Geometric-mean ratio a/b over pairs (a, b) and its 95% percentile-bootstrap interval."""
    logs = np.log(np.asarray([a / b for a, b in pairs], dtype=float))
    centre = float(np.exp(logs.mean()))
    if len(logs) < 2:
        return centre, math.nan, math.nan
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(logs), size=(n_boot, len(logs)))
    means = logs[picks].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return centre, float(np.exp(low)), float(np.exp(high))


def run_paired(
    name: str,
    one_pair: Callable[[int], tuple[float, float]],
    *,
    target: float = 0.02,
    min_rounds: int = 6,
    max_rounds: int = 200,
    max_sec: float = 300.0,
    meaning: str = "",
    verbose: bool = True,
) -> RatioEstimate:
    """Run ``one_pair(i) -> (measured, reference)`` until the ratio is within +-``target``, or
    ``max_sec`` has passed and at least ``min_rounds`` pairs are in."""
    pairs: list[tuple[float, float]] = []
    start = time.perf_counter()
    stopped_by = "time cap"
    while len(pairs) < max_rounds:
        a, b = one_pair(len(pairs))
        pairs.append((a, b))
        if verbose:
            row = f"{len(pairs):>3}: {a:12.4g} / {b:12.4g} = {a / b:.4f}"
            print(f"  {name} round {row}", flush=True)
        if len(pairs) >= min_rounds:
            centre, low, high = ratio_interval(pairs)
            if (high - low) / 2 / centre <= target:
                stopped_by = "precision"
                break
        if time.perf_counter() - start >= max_sec and len(pairs) >= min_rounds:
            break
    centre, low, high = ratio_interval(pairs)
    return RatioEstimate(
        name=name,
        ratio=centre,
        low=low,
        high=high,
        rounds=len(pairs),
        stopped_by=stopped_by,
        target=target,
        elapsed_sec=time.perf_counter() - start,
        pairs=pairs,
        meaning=meaning,
    )


def save_estimates(
    benchmark: str,
    command: str,
    estimates: list[RatioEstimate],
    *,
    what: str = "",
    notes: list[str] | None = None,
) -> Path:
    """Write the figures to ``benchmarks/results/<benchmark>.json`` (read by update_readme).

    ``notes`` are further figures of the same run that are not ratios (e.g. a latency
    percentile with its interval), shown beside the ratios."""
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{benchmark}.json"
    payload = {
        "benchmark": benchmark,
        "command": command,
        "what": what,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {_cpu_count()} CPUs, {platform.python_version()}",
        "estimates": [
            {k: v for k, v in asdict(e).items() if k != "pairs"} | {"half_width": e.half_width}
            for e in estimates
        ],
        "notes": notes or [],
    }
    from llenergymeasure.files import atomic_write_text

    return atomic_write_text(path, json.dumps(payload, indent=2) + "\n")


def _cpu_count() -> int:
    import os

    return os.cpu_count() or 1
