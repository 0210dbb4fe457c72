"""Quality beside energy: windows, bootstrap maths, and perplexity / KL / top-1 on real models."""

from __future__ import annotations

import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llenergymeasure.config.experiment import ExperimentConfig
from llenergymeasure.config.quality import QualityConfig
from llenergymeasure.errors import ConfigError
from llenergymeasure.quality import windows as W
from llenergymeasure.quality.text import load_reference_text

TEXT = (
    "Shall I compare thee to a summer's day? Thou art more lovely and more temperate. "
    "Rough winds do shake the darling buds of May, and summer's lease hath all too short "
    "a date. Sometime too hot the eye of heaven shines, and often is his gold complexion "
    "dimm'd; and every fair from fair sometime declines, by chance or nature's changing "
    "course untrimm'd. "
) * 4


# ---- windows and bootstrap maths ------------------------------------------------------------


@given(st.integers(2, 400), st.integers(2, 64), st.data())
def test_every_token_but_the_first_is_scored_exactly_once(n: int, window: int, data) -> None:
    stride = data.draw(st.integers(1, window - 1))
    plan = W.plan_windows(n, window, stride)
    scored = [t for w in plan for t in range(w.first_scored, w.end)]
    assert scored == list(range(1, n))
    for w in plan:
        assert 0 <= w.begin < w.first_scored <= w.end <= n
        assert w.end - w.begin <= window
        # context of every scored token but those near the start is at least window - stride
        if w.begin > 0:
            assert w.first_scored - w.begin >= window - stride


def test_windows_reject_bad_arguments() -> None:
    with pytest.raises(ValueError):
        W.plan_windows(10, 4, 4)
    with pytest.raises(ValueError):
        W.plan_windows(1, 4, 2)


@given(
    st.lists(st.floats(0, 20, allow_nan=False), min_size=1, max_size=300),
    st.integers(1, 50),
)
def test_bootstrap_perplexity_is_exp_mean_nll_and_inside_its_interval(values, block) -> None:
    nll = np.array(values)
    n_blocks = -(-len(nll) // block)
    draws = W.resample_indices(n_blocks, 200, seed=1)
    est = W.bootstrap_perplexity(nll, block, draws)
    assert est.value == pytest.approx(math.exp(float(np.mean(nll))), rel=1e-12)
    assert est.low <= est.high
    # each resample's mean lies between the smallest and largest block mean
    sums, sizes = W.block_means(nll, block)
    assert math.exp(min(sums / sizes)) * (1 - 1e-9) <= est.low
    assert est.high <= math.exp(max(sums / sizes)) * (1 + 1e-9)


@given(st.lists(st.floats(0, 20, allow_nan=False), min_size=2, max_size=200), st.floats(0, 2))
def test_paired_degradation(values, shift) -> None:
    ref = np.array(values)
    draws = W.resample_indices(-(-len(ref) // 7), 100, seed=0)
    same = W.bootstrap_degradation(ref, ref, 7, draws)
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0)
    # a constant NLL shift multiplies perplexity by exp(shift) in every resample: no spread
    shifted = W.bootstrap_degradation(ref + shift, ref, 7, draws)
    assert shifted.value == pytest.approx(math.expm1(shift), abs=1e-9)
    assert shifted.low == pytest.approx(math.expm1(shift), abs=1e-9)
    assert shifted.high == pytest.approx(math.expm1(shift), abs=1e-9)


def test_block_means_keep_a_short_last_block() -> None:
    sums, sizes = W.block_means(np.arange(10.0), 4)
    assert sums.tolist() == [6.0, 22.0, 17.0] and sizes.tolist() == [4.0, 4.0, 2.0]


# ---- texts --------------------------------------------------------------------------------------


def test_builtin_text_identity() -> None:
    ref = load_reference_text(QualityConfig())
    assert ref.identity.source == "builtin" and ref.identity.name == "shakespeare-heldout"
    assert ref.identity.chars == len(ref.text) > 50_000
    assert "MACBETH" in ref.text
    assert len(ref.identity.sha256) == 64


def test_jsonl_text_and_bad_lines(tmp_path: Path) -> None:
    good = tmp_path / "t.jsonl"
    good.write_text('{"text": "one"}\n\n{"text": "two"}\n')
    ref = load_reference_text(QualityConfig(source="file", path=good))
    assert ref.text == "one\n\ntwo" and ref.identity.name == str(good)
    bad = tmp_path / "b.jsonl"
    bad.write_text('{"body": "x"}\n')
    with pytest.raises(ConfigError, match="line 1 has no string field 'text'"):
        load_reference_text(QualityConfig(source="file", path=bad))
    with pytest.raises(ConfigError, match="does not exist"):
        load_reference_text(QualityConfig(source="file", path=tmp_path / "missing.txt"))


def test_hf_dataset_needs_datasets_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # as if not installed
    cfg = QualityConfig(source="hf", dataset="wikitext", dataset_config="wikitext-2-raw-v1")
    with pytest.raises(ConfigError, match="needs the 'datasets' package"):
        load_reference_text(cfg)


def test_hf_dataset_offline_gives_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {}

    def fake_load_dataset(name, config, split, revision):  # the offline failure datasets raises
        calls.update(name=name, config=config, split=split, revision=revision)
        raise ConnectionError("Couldn't reach 'wikitext' on the Hub (LocalEntryNotFoundError)")

    fake = types.ModuleType("datasets")
    fake.load_dataset = fake_load_dataset  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", fake)
    cfg = QualityConfig(
        source="hf", dataset="wikitext", dataset_config="wikitext-2-raw-v1", revision="b08601e"
    )
    with pytest.raises(ConfigError) as info:
        load_reference_text(cfg)
    message = str(info.value)
    assert "wikitext/wikitext-2-raw-v1" in message and "split 'test'" in message
    assert "offline" in message and "\n" not in message
    assert calls == {
        "name": "wikitext",
        "config": "wikitext-2-raw-v1",
        "split": "test",
        "revision": "b08601e",
    }


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match="quality.text 'nope' is not a builtin text"):
        QualityConfig(text="nope")
    with pytest.raises(ValueError, match="quality.path is not set"):
        QualityConfig(source="file")
    with pytest.raises(ValueError, match="quality.dataset is not set"):
        QualityConfig(source="hf")
    with pytest.raises(ValueError, match="must be less than quality.window"):
        QualityConfig(window=8, stride=8)


def test_quality_off_leaves_the_config_hash_alone() -> None:
    base = ExperimentConfig()
    assert ExperimentConfig(quality={"window": 64}).config_hash() == base.config_hash()
    assert ExperimentConfig(quality={"enabled": True}).config_hash() != base.config_hash()


# ---- perplexity, KL and top-1 on a real model --------------------------------------------------


def _independent_perplexity(model, ids: list[int], window: int, stride: int) -> float:
    """Plain transformers: labels with -100 on context tokens, the model's own shifted loss."""
    import torch

    total_nll, total_tokens, prev_end = 0.0, 0, 1
    for begin in range(0, len(ids), stride):
        end = min(begin + window, len(ids))
        input_ids = torch.tensor([ids[begin:end]])
        labels = input_ids.clone()
        labels[:, : prev_end - begin] = -100  # already scored (or the first token): context only
        with torch.no_grad():
            loss = model(input_ids=input_ids, labels=labels).loss
        scored = end - prev_end
        total_nll += loss.item() * scored
        total_tokens += scored
        prev_end = end
        if end == len(ids):
            break
    return math.exp(total_nll / total_tokens)


@pytest.fixture(autouse=True)
def quality_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Reference scores cached in this test's own folder."""
    cache = tmp_path / "quality-cache"
    monkeypatch.setattr("llenergymeasure.quality.evaluate._cache_dir", lambda: cache)
    return cache


@pytest.fixture(scope="module")
def text_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("quality") / "sonnet.txt"
    path.write_text(TEXT)
    return path


def _config(text_file: Path, cache: Path, **changes) -> ExperimentConfig:
    quality = {
        "enabled": True,
        "source": "file",
        "path": str(text_file),
        "window": 48,
        "stride": 20,
        "max_tokens": 200,
        "block_tokens": 16,
        "bootstrap_samples": 200,
        "kl_top_k": 4096,  # above the vocabulary: exact KL
        **changes.pop("quality", {}),
    }
    return ExperimentConfig(model="builtin:tiny-llama", quality=quality, **changes)


def test_perplexity_equals_plain_transformers_forward_passes(
    text_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import transformers

    from llenergymeasure.engines.builtin import builtin_path
    from llenergymeasure.engines.transformers_engine import TransformersEngine
    from llenergymeasure.quality.evaluate import evaluate_measured, prepare_reference

    source = builtin_path("builtin:tiny-llama")
    config = _config(text_file, tmp_path)
    prepared = prepare_reference(config, on_gpu=False)
    assert not prepared.cached and prepared.eval_time_sec is not None
    engine = TransformersEngine(config)
    engine.load()
    quality = evaluate_measured(engine.model, config, prepared)
    engine.close()

    # independent: tokenizer and model loaded here, the loss computed by transformers itself
    tokenizer = transformers.AutoTokenizer.from_pretrained(source)
    model = transformers.AutoModelForCausalLM.from_pretrained(source, dtype="float32").eval()
    ids = [tokenizer.bos_token_id, *tokenizer(TEXT, add_special_tokens=False)["input_ids"]][:200]
    expected = _independent_perplexity(model, ids, window=48, stride=20)
    assert quality.perplexity == pytest.approx(expected, rel=1e-5)
    assert quality.tokens_evaluated == 199 and quality.windows == len(prepared.windows)
    assert (quality.window_tokens, quality.stride_tokens) == (48, 20)
    # a random-weight model's perplexity is near its vocabulary size
    assert 0.3 * len(tokenizer) < quality.perplexity < 3 * len(tokenizer)
    # the measured configuration is the reference: no degradation, no divergence, full agreement
    assert quality.is_reference and quality.reference.dtype == "float32"
    assert quality.reference_perplexity == pytest.approx(quality.perplexity, rel=1e-9)
    assert quality.perplexity_degradation == pytest.approx(0.0, abs=1e-9)
    assert quality.mean_kl_nats == pytest.approx(0.0, abs=1e-9)
    assert quality.top1_agreement == 1.0 and quality.kl_method == "exact"
    assert quality.perplexity_ci.low <= quality.perplexity <= quality.perplexity_ci.high
    assert quality.text.source == "file" and quality.text.chars == len(TEXT)

    # the reference is cached: a second preparation does not load the model again
    again = prepare_reference(config, on_gpu=False)
    assert again.cached and again.eval_time_sec is None
    assert np.array_equal(again.scores.nll, prepared.scores.nll)


def test_kl_and_top1_against_an_independent_full_vocabulary_computation(
    text_file: Path, tmp_path: Path
) -> None:
    import torch
    import transformers

    from llenergymeasure.engines.builtin import builtin_path
    from llenergymeasure.engines.transformers_engine import TransformersEngine
    from llenergymeasure.quality.evaluate import evaluate_measured, prepare_reference

    config = _config(text_file, tmp_path, quantization="torch-int8")
    prepared = prepare_reference(config, on_gpu=False)
    engine = TransformersEngine(config)
    engine.load()
    quality = evaluate_measured(engine.model, config, prepared)

    source = builtin_path("builtin:tiny-llama")
    reference = transformers.AutoModelForCausalLM.from_pretrained(source, dtype="float32").eval()
    ids = torch.tensor([prepared.token_ids])
    kls, agree = [], []
    with torch.no_grad():
        for w in prepared.windows:
            chunk = ids[:, w.begin : w.end]
            rows = slice(w.first_scored - w.begin - 1, w.end - w.begin - 1)
            p = torch.log_softmax(reference(chunk).logits[0, rows].double(), -1)
            q = torch.log_softmax(engine.model(chunk).logits[0, rows].double(), -1)
            kls.append((p.exp() * (p - q)).sum(-1))
            agree.append(p.argmax(-1) == q.argmax(-1))
    engine.close()
    assert not quality.is_reference
    assert quality.mean_kl_nats == pytest.approx(torch.cat(kls).mean().item(), rel=1e-4)
    assert quality.top1_agreement == pytest.approx(torch.cat(agree).double().mean().item())
    assert quality.mean_kl_nats > 0


def test_scored_logits_only_where_the_scores_cannot_change() -> None:
    """Float models are asked for the scored rows' logits only, and give the very same logits as
    a full forward; a torch-int8 model (activation scale over all rows) is always run in full."""
    import torch
    import transformers

    from llenergymeasure.engines.builtin import builtin_path
    from llenergymeasure.engines.quantize import quantize_torch_int8
    from llenergymeasure.quality.scoring import _can_keep_logits, _scored_logits

    source = builtin_path("builtin:shakespeare")
    model = transformers.AutoModelForCausalLM.from_pretrained(source, dtype="float32").eval()
    ids = torch.arange(4, 4 + 64)[None]
    window = W.Window(begin=0, end=64, first_scored=33)
    with torch.inference_mode():
        full = model(input_ids=ids, use_cache=False).logits[0, 32:63]
        assert _can_keep_logits(model)
        (kept,) = _scored_logits(model, ids, [window], keep=True)
        assert torch.equal(kept, full)
        assert not _can_keep_logits(quantize_torch_int8(model))


class FakeTiedLM:
    """A fake causal LM (tests only): fixed logits per position, rounded to 0.5 so that the
    largest value is often tied; exercises the top-1 tie path of ``score_measured``."""

    def __init__(self, seed: int, vocab: int = 8, length: int = 64) -> None:
        import torch

        gen = torch.Generator().manual_seed(seed)
        self.table = (torch.randint(0, 6, (length, vocab), generator=gen) / 2.0).float()

    def parameters(self):
        return iter(())

    def modules(self):
        return iter(())

    def forward(self, input_ids, use_cache=False, logits_to_keep=0):
        length = input_ids.shape[1]
        logits = self.table[:length][None].expand(input_ids.shape[0], -1, -1)
        return types.SimpleNamespace(
            logits=logits[:, -logits_to_keep:] if logits_to_keep else logits
        )

    __call__ = forward


def test_top1_agreement_with_tied_maxima_is_argmax_equality() -> None:
    import torch

    from llenergymeasure.quality.scoring import score_measured, score_reference

    ids = [i % 8 for i in range(64)]
    windows = W.plan_windows(64, 32, 16)
    reference, measured = FakeTiedLM(1), FakeTiedLM(2)
    ref = score_reference(reference, ids, windows, top_k=8)
    got = score_measured(measured, ids, windows, ref)
    expected = []
    for w in windows:
        rows = slice(w.first_scored - w.begin - 1, w.end - w.begin - 1)
        p, q = reference.table[rows], measured.table[rows]
        expected.append(p.argmax(-1) == q.argmax(-1))  # first maximum, as torch.argmax
    expected = torch.cat(expected).numpy()
    ties = (measured.table == measured.table.max(-1, keepdim=True).values).sum(-1) > 1
    assert ties.sum() > 10  # the case is exercised
    assert np.array_equal(got.top1, expected)


def test_top_k_kl_is_a_lower_bound_of_the_exact_kl() -> None:
    import torch

    from llenergymeasure.quality.scoring import _kl_top_k

    gen = torch.Generator().manual_seed(0)
    logp = torch.log_softmax(torch.randn(50, 40, generator=gen, dtype=torch.float64), -1)
    logq = torch.log_softmax(torch.randn(50, 40, generator=gen, dtype=torch.float64), -1)
    exact = (logp.exp() * (logp - logq)).sum(-1)
    full_lp, full_ids = logp.topk(40, dim=-1)
    kl_all, tail_all = _kl_top_k(full_lp, logq.gather(1, full_ids))
    assert torch.allclose(kl_all, exact, atol=1e-12) and tail_all.max() < 1e-12
    for k in (1, 5, 20):
        lp, idx = logp.topk(k, dim=-1)
        kl_k, tail = _kl_top_k(lp, logq.gather(1, idx))
        assert (kl_k <= exact + 1e-12).all() and (tail > 0).all()


# ---- the report's Pareto front ------------------------------------------------------------------


@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=1, max_size=30))
def test_pareto_front_is_exactly_the_undominated_points(points) -> None:
    from llenergymeasure.results.quality_report import pareto_front

    pts = [(float(x), float(y)) for x, y in points]
    front = pareto_front(pts)
    assert front  # a finite set always has an undominated point
    for i, (x, y) in enumerate(pts):
        dominated = any(ox <= x and oy <= y and (ox, oy) != (x, y) for ox, oy in pts)
        assert (i in front) == (not dominated)
    # the cheapest of the least degraded is always on it
    best = min(range(len(pts)), key=lambda i: (pts[i][0], pts[i][1]))
    assert best in front
