"""Scoring a causal LM on a token sequence: NLL per token, and KL / top-1 against a reference.

torch is imported inside functions. The reference's distribution is kept as its top ``k``
log-probabilities per token (all of them when ``k`` >= the vocabulary: exact KL); the measured
model's KL is taken over those ``k`` tokens plus one bucket holding the rest of the mass.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from llenergymeasure.quality.windows import Window

#: Smallest probability a tail bucket is given, so log(0) never appears.
_TINY = 1e-30


@dataclass
class ReferenceScores:
    """What a reference run keeps per scored token (cacheable as plain arrays)."""

    nll: np.ndarray  # float64 [n]
    argmax: np.ndarray  # int64 [n]
    topk_ids: np.ndarray  # int64 [n, k]
    topk_logprobs: np.ndarray  # float64 [n, k]
    vocab_size: int


@dataclass
class MeasuredScores:
    """What the measured model yields per scored token."""

    nll: np.ndarray  # float64 [n]
    kl: np.ndarray | None  # float64 [n], None without a reference
    top1: np.ndarray | None  # bool [n]
    tail_mass: np.ndarray | None  # float64 [n], reference mass outside its top k


#: Windows scored in one forward pass. 1: with dynamic activation quantisation (torch-int8)
#: the int8 scale is taken over the whole input, so batching windows would change the scores.
BATCH_WINDOWS = 1


def _window_logprobs(
    model: Any, ids: Any, windows: Sequence[Window]
) -> Iterator[tuple[Window, Any, Any, Any]]:
    """Each window with, per scored token, the logits, their log-sum-exp and their argmax.

    Windows of equal length may run together (``BATCH_WINDOWS``). Every forward pass computes
    the logits of the whole window (no ``logits_to_keep``): with dynamic activation quantisation
    the LM head's int8 scale depends on every row it is given. The log-sum-exp is accumulated
    in float64: a float32 one is off by ~1e-6 nats, as large as the KL between a bf16 and an
    fp32 run of a small model. Log-probabilities are ``logits - lse`` taken in float64 only
    where needed (targets, the reference's top k), which keeps the pass close to a bare forward.
    """
    import torch

    device = _device(model)
    for group in _groups(windows):
        batch = torch.stack([ids[w.begin : w.end] for w in group]).to(device)
        logits = model(input_ids=batch, use_cache=False).logits
        for row, w in enumerate(group):
            # position p predicts token p + 1
            x = logits[row, w.first_scored - w.begin - 1 : w.end - w.begin - 1].float()
            top, argmax = x.max(dim=-1)
            total = torch.exp(x - top[:, None]).sum(dim=-1, dtype=torch.float64)
            yield w, x, top.double() + total.log(), argmax


def _groups(windows: Sequence[Window]) -> Iterator[list[Window]]:
    group: list[Window] = []
    for w in windows:
        if group and (
            len(group) == BATCH_WINDOWS or w.end - w.begin != group[0].end - group[0].begin
        ):
            yield group
            group = []
        group.append(w)
    if group:
        yield group


def _device(model: Any) -> Any:
    import torch

    try:
        return next(p.device for p in model.parameters())
    except StopIteration:
        return torch.device("cpu")


def score_reference(
    model: Any, token_ids: Sequence[int], windows: Sequence[Window], top_k: int
) -> ReferenceScores:
    """Reference run: NLL, argmax and top-k log-probabilities of every scored token."""
    import torch

    ids = torch.tensor(list(token_ids), dtype=torch.long)
    nll, argmax, top_ids, top_lp = [], [], [], []
    vocab = 0
    with torch.inference_mode():
        for window, x, lse, best in _window_logprobs(model, ids, windows):
            vocab = x.shape[-1]
            targets = ids[window.first_scored : window.end].to(x.device)
            nll.append((lse - x.gather(1, targets[:, None])[:, 0].double()).cpu())
            argmax.append(best.cpu())
            values, indices = x.topk(min(top_k, vocab), dim=-1)
            top_ids.append(indices.cpu())
            top_lp.append((values.double() - lse[:, None]).cpu())
    return ReferenceScores(
        nll=torch.cat(nll).numpy(),
        argmax=torch.cat(argmax).numpy(),
        topk_ids=torch.cat(top_ids).numpy(),
        topk_logprobs=torch.cat(top_lp).numpy(),
        vocab_size=vocab,
    )


def score_measured(
    model: Any,
    token_ids: Sequence[int],
    windows: Sequence[Window],
    reference: ReferenceScores | None,
) -> MeasuredScores:
    """The measured run: NLL per token; with a reference also KL, top-1 match and tail mass."""
    import torch

    ids = torch.tensor(list(token_ids), dtype=torch.long)
    nll, kl, top1, tail = [], [], [], []
    start = 0
    with torch.inference_mode():
        for window, x, lse, best in _window_logprobs(model, ids, windows):
            targets = ids[window.first_scored : window.end].to(x.device)
            nll.append((lse - x.gather(1, targets[:, None])[:, 0].double()).cpu())
            if reference is None:
                continue
            n = len(targets)
            rows = slice(start, start + n)
            start += n
            ref_ids = torch.from_numpy(reference.topk_ids[rows]).to(x.device).long()
            ref_lp = torch.from_numpy(reference.topk_logprobs[rows]).to(x.device)
            q_lp = x.gather(1, ref_ids).double() - lse[:, None]
            kl_part, tail_part = _kl_top_k(ref_lp, q_lp)
            kl.append(kl_part.cpu())
            tail.append(tail_part.cpu())
            ref_top = torch.from_numpy(reference.argmax[rows]).to(x.device)
            top1.append((best == ref_top).cpu())
    return MeasuredScores(
        nll=torch.cat(nll).numpy(),
        kl=torch.cat(kl).numpy() if kl else None,
        top1=torch.cat(top1).numpy() if top1 else None,
        tail_mass=torch.cat(tail).numpy() if tail else None,
    )


def _kl_top_k(ref_lp: Any, q_lp: Any) -> tuple[Any, Any]:
    """KL(p || q) over p's top-k tokens plus one bucket for the rest (exact when k = vocab).

    ``ref_lp``: p's log-probabilities of its top k tokens; ``q_lp``: q's of the same tokens.
    """
    import torch

    p = ref_lp.exp()
    head = (p * (ref_lp - q_lp)).sum(-1)
    p_tail = (1.0 - p.sum(-1)).clamp(min=0.0)
    q_tail = (1.0 - q_lp.exp().sum(-1)).clamp(min=_TINY)
    has_tail = p_tail > 1e-12
    tail_term = torch.where(
        has_tail, p_tail * (p_tail.clamp(min=_TINY).log() - q_tail.log()), torch.zeros_like(p_tail)
    )
    # Rounding can leave tiny negative values where p == q; KL is never negative.
    return (head + tail_term).clamp(min=0.0), p_tail
