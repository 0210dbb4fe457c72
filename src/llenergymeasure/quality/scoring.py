"""Scoring a causal LM on a token sequence: NLL per token, and KL / top-1 against a reference.

torch is imported inside functions. The reference's distribution is kept as its top ``k``
log-probabilities per token (all of them when ``k`` >= the vocabulary: exact KL); the measured
model's KL is taken over those ``k`` tokens plus one bucket holding the rest of the mass.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llenergymeasure.quality.windows import Window

#: Smallest probability a tail bucket is given, so log(0) never appears.
_TINY = 1e-30
#: Reference tail mass below which the tail bucket is left out of the KL.
_HAS_TAIL = 1e-12


def _torch() -> Any:
    import torch

    return torch


@dataclass
class ReferenceScores:
    """What a reference run keeps per scored token (cacheable as plain arrays)."""

    nll: np.ndarray  # float64 [n]
    argmax: np.ndarray  # int64 [n]
    topk_ids: np.ndarray  # int64 [n, k]
    topk_logprobs: np.ndarray  # float64 [n, k]
    vocab_size: int
    #: Terms of the KL that depend on the reference alone, derived once on construction (when
    #: the reference is prepared, before any measured run) rather than in every measured pass.
    terms: TopKTerms = field(init=False, repr=False, compare=False)
    #: The last columns matrix a measured pass gathered by (see ``_gather_columns``): every
    #: measured pass over the same text needs the same one, [n, 2 + k] int64 (33 MB for exact
    #: KL over a 2048-token text), so it is built once.
    columns: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # torch, as the measured pass: equal distributions then give a KL of exactly 0
        self.terms = TopKTerms.of(_torch().from_numpy(self.topk_logprobs))


@dataclass
class TopKTerms:
    """Per token, from p's top-k log-probabilities: those, p itself, and the tail bucket's mass
    and p_tail log p_tail (0 where the top k hold all the mass)."""

    p: Any  # [n, k]
    log_p: Any  # [n, k]
    tail: Any  # [n]
    tail_log_tail: Any  # [n]

    @classmethod
    def of(cls, log_p: Any) -> TopKTerms:
        """From torch log-probabilities ``[n, k]``."""
        p = log_p.exp()
        tail = (1.0 - p.sum(-1)).clamp(min=0.0)
        tail_log_tail = (tail * tail.clamp(min=_TINY).log()).where(tail > _HAS_TAIL, 0.0)
        return cls(p, log_p, tail, tail_log_tail)

    def rows(self, rows: slice) -> TopKTerms:
        return TopKTerms(*(getattr(self, f)[rows] for f in self.__dataclass_fields__))


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
    in float64 (``_sum_exp``). Log-probabilities are ``logits - lse`` taken in float64 only
    where needed (targets, the reference's top k), which keeps the pass close to a bare forward.
    """
    import torch

    device = _device(model)
    keep = _can_keep_logits(model)
    for group in _groups(windows):
        batch = torch.stack([ids[w.begin : w.end] for w in group]).to(device)
        for w, x in zip(group, _scored_logits(model, batch, group, keep), strict=True):
            top, argmax = x.max(dim=-1)
            yield w, x, top.double() + _sum_exp(x, top)[1].log(), argmax


def _can_keep_logits(model: Any) -> bool:
    """Whether the model may be asked for the scored positions' logits only (``logits_to_keep``).

    Not with dynamically quantised layers (torch-int8): the LM head's int8 activation scale is
    taken over every row it is given, so fewer rows would change the scores.
    """
    import inspect

    try:
        takes = "logits_to_keep" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False
    quantised = any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in model.modules())
    return takes and not quantised


def _scored_logits(model: Any, batch: Any, group: Sequence[Window], keep: bool) -> list[Any]:
    """Per window of the batch, the float32 logits of its scored targets (position p predicts
    token p + 1). With ``keep`` the model computes the LM head from the first scored position
    on only (half the rows of a window that scores its second half)."""
    length = batch.shape[1]
    first = min(w.first_scored - w.begin - 1 for w in group) if keep else 0
    if keep:
        logits = model(input_ids=batch, use_cache=False, logits_to_keep=length - first).logits
    else:
        logits = model(input_ids=batch, use_cache=False).logits
    return [
        logits[i, w.first_scored - w.begin - 1 - first : w.end - w.begin - 1 - first].float()
        for i, w in enumerate(group)
    ]


def _sum_exp(x: Any, top: Any, out: Any = None) -> tuple[Any, Any]:
    """``exp(x - top)`` per row (float32) and its sum over the last axis, accumulated in float64.

    A float32 sum (even of blocks of 16 terms, summed on in float64) moves the log-sum-exp by
    ~1e-7 nats per token, which on a flat distribution biases a KL of ~1e-4 by ~5e-4 relative:
    the float64 sum costs ~0.3 ms per 128 x 2048 logits and stays. ``out``: where ``exp`` goes.
    """
    import torch

    e = torch.sub(x, top[:, None], out=out).exp_()
    if e.device.type == "cpu":
        # numpy converts in small buffers; torch copies the whole block to float64 first (2x)
        return e, torch.from_numpy(np.add.reduce(e.numpy(), axis=-1, dtype=np.float64))
    return e, e.sum(-1, dtype=torch.float64)


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
    """The measured run: NLL per token; with a reference also KL, top-1 match and tail mass.

    Kept close to a bare forward-pass loop: per window, besides the forward pass, only the
    log-sum-exp of the scored rows and one gather of the logits each token needs (its target,
    the reference's argmax and top k) run; NLL, KL and top-1 are then computed once over all
    tokens (in chunks of ``_CHUNK_BYTES``), not window by window.
    """
    import torch

    ids = torch.tensor(list(token_ids), dtype=torch.long)
    n = sum(w.end - w.first_scored for w in windows)
    columns = _gather_columns(ids, windows, reference, n)
    out = MeasuredScores(
        nll=np.empty(n),
        kl=None if reference is None else np.empty(n),
        top1=None if reference is None else np.empty(n, dtype=bool),
        tail_mass=None if reference is None else np.empty(n),
    )
    width = columns.shape[1]
    longest = max(w.end - w.first_scored for w in windows)
    chunk_rows = max(1, _CHUNK_BYTES // (4 * width))
    device = _device(model)
    # The gathered logits, log-sum-exp and maximum of every token of the current chunk.
    cap = min(n, chunk_rows + longest)
    chunk = _Chunk(
        start=0,
        gathered=torch.empty(cap, width, device=device),
        lse=torch.empty(cap, dtype=torch.float64, device=device),
        top=torch.empty(cap, device=device),
    )
    fill = 0
    scratch = None
    keep = _can_keep_logits(model)
    with torch.inference_mode():
        for group in _groups(windows):
            batch = torch.stack([ids[w.begin : w.end] for w in group]).to(device)
            for x in _scored_logits(model, batch, group, keep):
                rows = slice(fill, fill + len(x))
                top = torch.amax(x, dim=-1, out=chunk.top[rows])
                if scratch is None or scratch.shape[-1] != x.shape[-1]:
                    scratch = torch.empty(longest, x.shape[-1], device=x.device)
                # one buffer for every window: fresh ones would evict the weights from the cache
                e, total = _sum_exp(x, top, out=scratch[: len(x)])
                torch.add(top.double(), total.log(), out=chunk.lse[rows])
                here = chunk.start + fill
                torch.gather(
                    x, 1, columns[here : here + len(x)].to(device), out=chunk.gathered[rows]
                )
                if reference is not None:
                    # e == 1 exactly at every maximum (and perhaps within rounding of one): a
                    # count of 1 proves the maximum unique, so top-1 needs no argmax there
                    tied = (e.floor_().sum(dim=-1) > 1).nonzero()[:, 0]
                    if len(tied):
                        chunk.ties.append((here + tied.cpu(), x[tied].argmax(dim=-1).cpu()))
                fill += len(x)
                if fill >= chunk_rows:
                    _finish(chunk, fill, columns, reference, out)
                    chunk.start, chunk.ties, fill = chunk.start + fill, [], 0
    if fill:
        _finish(chunk, fill, columns, reference, out)
    return out


@dataclass
class _Chunk:
    """Buffers of ``score_measured``: rows ``start ..`` of the scored tokens."""

    start: int
    gathered: Any  # float32 [cap, columns]: logits of the target, reference argmax, top k
    lse: Any  # float64 [cap]
    top: Any  # float32 [cap]: the maximum logit
    ties: list[tuple[Any, Any]] = field(default_factory=list)  # (token rows, argmax) of ties


#: Gathered logits held before NLL/KL/top-1 are computed on them (bounds memory for big k).
_CHUNK_BYTES = 64 * 2**20


def _gather_columns(
    ids: Any, windows: Sequence[Window], reference: ReferenceScores | None, n: int
) -> Any:
    """Per scored token, the vocabulary ids whose logits are needed: the target, then (with a
    reference) the reference's argmax and its top k."""
    import torch

    targets = torch.cat([ids[w.first_scored : w.end] for w in windows])
    if len(targets) != n:
        raise ValueError("windows must score each token once")
    if reference is None:
        return targets[:, None]
    if len(reference.nll) != n:
        raise ValueError(f"reference scores {len(reference.nll)} tokens, the windows {n}")
    cached = reference.columns
    if cached is not None and torch.equal(cached[:, 0], targets):
        return cached
    reference.columns = torch.cat(
        [
            targets[:, None],
            torch.from_numpy(reference.argmax).long()[:, None],
            torch.from_numpy(reference.topk_ids).long(),
        ],
        dim=1,
    )
    return reference.columns


def _finish(
    chunk: _Chunk, fill: int, columns: Any, reference: ReferenceScores | None, out: MeasuredScores
) -> None:
    """NLL, KL, top-1 and tail mass of the chunk's first ``fill`` tokens, written into ``out``."""

    gathered = chunk.gathered[:fill].cpu()
    lse = chunk.lse[:fill].cpu()
    rows = slice(chunk.start, chunk.start + fill)
    out.nll[rows] = (lse - gathered[:, 0].double()).numpy()
    if reference is None:
        return
    assert out.kl is not None and out.top1 is not None and out.tail_mass is not None
    terms = reference.terms.rows(rows)
    top = chunk.top[:fill].cpu()
    # q's log-probabilities of p's top k, in float64 (a copy, then in place: mixed-dtype
    # broadcasting would take ~3x as long)
    kl, tail = _kl_from_terms(terms, gathered[:, 2:].double().sub_(lse[:, None]))
    out.kl[rows] = kl.numpy()
    out.tail_mass[rows] = tail.numpy()
    top1 = gathered[:, 1] == top
    for tied, argmax in chunk.ties:
        top1[tied - chunk.start] = argmax == columns[tied, 1]
    out.top1[rows] = top1.numpy()


def _kl_top_k(ref_lp: Any, q_lp: Any) -> tuple[Any, Any]:
    """KL(p || q) over p's top-k tokens plus one bucket for the rest (exact when k = vocab).

    ``ref_lp``: p's log-probabilities of its top k tokens; ``q_lp``: q's of the same tokens.
    """

    return _kl_from_terms(TopKTerms.of(ref_lp), q_lp.clone())


def _kl_from_terms(ref: TopKTerms, q_lp: Any) -> tuple[Any, Any]:
    """KL(p || q) per token, and p's tail mass; ``q_lp``: q's log-probabilities of p's top k
    (float64; overwritten).

    Over the top k: sum p (log p - log q), exactly 0 where q's log-probabilities equal p's; the
    tail bucket adds p_tail (log p_tail - log q_tail). Only the terms with q are computed here.
    """
    import torch

    head = torch.sub(ref.log_p, q_lp).mul_(ref.p).sum(-1)
    # in float64 from the logits, as the reference's p: q == p gives a KL of exactly 0
    q_tail = (1.0 - q_lp.exp_().sum(-1)).clamp(min=_TINY)
    tail_term = torch.where(
        ref.tail > _HAS_TAIL, ref.tail_log_tail - ref.tail * q_tail.log(), torch.zeros_like(q_tail)
    )
    # Rounding can leave tiny negative values where p == q; KL is never negative.
    return (head + tail_term).clamp(min=0.0), ref.tail
