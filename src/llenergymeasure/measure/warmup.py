"""Warmup: run requests until their latency settles, before anything is measured.

In ``cv`` mode each request is one batch like the measured ones; after every request the
coefficient of variation of the last ``window`` latencies is compared with ``target_cv``, and
warmup stops at the first window at or below it, or after ``max_prompts`` requests. ``fixed``
mode runs ``n`` requests and reports the CV it reached. Both stop once ``max_sec`` has passed
(checked before each request, so the first always runs and none is cut off).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any

from llenergymeasure.config.experiment import WarmupConfig
from llenergymeasure.domain.metrics import WarmupResult, WarmupStop
from llenergymeasure.domain.stats import coefficient_of_variation
from llenergymeasure.engines.base import BatchOutput


def run_warmup(
    generate: Callable[[Any], BatchOutput],
    batches: Sequence[Any],
    config: WarmupConfig,
    on_request: Callable[[int, float | None], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> WarmupResult:
    """Warm up on the measured batches (cycled); ``on_request(i, cv)`` reports progress."""
    limit = config.max_prompts if config.mode == "cv" else config.n
    latencies: list[float] = []
    cv: float | None = None
    converged = False
    stopped_by: WarmupStop = "max_prompts" if config.mode == "cv" else "n"
    start = clock()
    for i, batch in zip(range(limit), itertools.cycle(batches)):
        if i > 0 and config.max_sec is not None and clock() - start >= config.max_sec:
            stopped_by = "max_sec"
            break
        latencies.append(generate(batch).wall_sec * 1e3)
        if len(latencies) >= config.window:
            cv = coefficient_of_variation(latencies[-config.window :])
            converged = cv <= config.target_cv
        if on_request is not None:
            on_request(i + 1, cv)
        if converged and config.mode == "cv":
            stopped_by = "converged"
            break
    final_cv = cv if cv is not None else coefficient_of_variation(latencies)
    return WarmupResult(
        converged=converged,
        final_cv=final_cv,
        iterations_completed=len(latencies),
        target_cv=config.target_cv,
        max_prompts=limit,
        latencies_ms=latencies,
        window_size=config.window,
        mode=config.mode,
        max_sec=config.max_sec,
        elapsed_sec=clock() - start,
        stopped_by=stopped_by,
    )
