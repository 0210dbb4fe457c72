"""Sliding windows over a token sequence, and bootstrap intervals over blocks of tokens.

Pure Python and numpy: the maths here is what the property tests check.

Windows: window ``k`` covers tokens ``[k * stride, k * stride + window)``; it scores the tokens
from the end of the previous window (or its own second token; ``stride < window`` so
no token is left without context) to its end, so every token but
the first is scored exactly once, with between ``window - stride`` and ``window - 1`` tokens of
context (fewer only near the start of the text).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    """One forward pass: tokens ``[begin, end)``; targets ``[first_scored, end)`` are scored."""

    begin: int
    end: int
    first_scored: int


def plan_windows(n_tokens: int, window: int, stride: int) -> list[Window]:
    """The windows that score tokens ``1 .. n_tokens - 1`` once each (see the module doc)."""
    if window < 2 or stride < 1 or stride >= window:
        raise ValueError(f"need window >= 2 and 1 <= stride < window, got {window}, {stride}")
    if n_tokens < 2:
        raise ValueError(f"need at least 2 tokens to score, got {n_tokens}")
    plan: list[Window] = []
    scored_to = 1
    begin = 0
    while scored_to < n_tokens:
        end = min(begin + window, n_tokens)
        plan.append(Window(begin=begin, end=end, first_scored=max(scored_to, begin + 1)))
        scored_to = end
        begin += stride
    return plan


@dataclass(frozen=True)
class Estimate:
    """A figure and its percentile-bootstrap interval."""

    value: float
    low: float
    high: float


def block_means(values: np.ndarray, block_tokens: int) -> np.ndarray:
    """Per-block sums and sizes stacked as ``(2, blocks)``: the last block may be shorter."""
    n = len(values)
    edges = np.arange(0, n, block_tokens)
    sums = np.add.reduceat(values.astype(np.float64), edges)
    sizes = np.diff(np.append(edges, n)).astype(np.float64)
    return np.stack([sums, sizes])


def resample_indices(n_blocks: int, samples: int, seed: int) -> np.ndarray:
    """``samples`` rows of ``n_blocks`` block indices drawn with replacement (seeded)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_blocks, size=(samples, n_blocks))


def _ratio_means(blocks: np.ndarray, draws: np.ndarray) -> np.ndarray:
    sums = blocks[0][draws].sum(axis=1)
    sizes = blocks[1][draws].sum(axis=1)
    return sums / sizes


def bootstrap_mean(
    values: np.ndarray, block_tokens: int, draws: np.ndarray, level: float = 0.95
) -> Estimate:
    """Mean per token with a block-bootstrap interval (token-weighted over resampled blocks)."""
    blocks = block_means(values, block_tokens)
    boot = _ratio_means(blocks, draws)
    lo, hi = _percentiles(boot, level)
    return Estimate(float(np.mean(values)), lo, hi)


def bootstrap_perplexity(
    nll: np.ndarray, block_tokens: int, draws: np.ndarray, level: float = 0.95
) -> Estimate:
    """exp(mean NLL) with a block-bootstrap interval."""
    mean = bootstrap_mean(nll, block_tokens, draws, level)
    return Estimate(math.exp(mean.value), math.exp(mean.low), math.exp(mean.high))


def bootstrap_degradation(
    nll: np.ndarray,
    reference_nll: np.ndarray,
    block_tokens: int,
    draws: np.ndarray,
    level: float = 0.95,
) -> Estimate:
    """ppl / reference ppl - 1, paired: both resampled with the same blocks."""
    if nll.shape != reference_nll.shape:
        raise ValueError("measured and reference NLL must score the same tokens")
    a = _ratio_means(block_means(nll, block_tokens), draws)
    b = _ratio_means(block_means(reference_nll, block_tokens), draws)
    boot = np.expm1(a - b)
    lo, hi = _percentiles(boot, level)
    value = math.expm1(float(np.mean(nll)) - float(np.mean(reference_nll)))
    return Estimate(value, lo, hi)


def _percentiles(boot: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(boot, [tail, 100 - tail])
    return float(lo), float(hi)
