"""`builtin:shakespeare`: a small model trained on the plays, shipped in the package, that has
learned something (held-out perplexity far below its vocabulary size)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llenergymeasure.config.experiment import ExperimentConfig
from llenergymeasure.engines.builtin import builtin_path
from llenergymeasure.quality.text import load_reference_text

SHIPPED = builtin_path("builtin:shakespeare")


def test_shipped_files_are_small_and_record_their_training() -> None:
    files = {p.name: p.stat().st_size for p in SHIPPED.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "training.json"} <= set(files)
    assert sum(files.values()) < 6 * 2**20, files  # a few MB at most
    record = json.loads((SHIPPED / "training.json").read_text())
    assert record["recipe"] == "scripts/train_shakespeare.py"
    assert record["heldout_play"] == "macbeth_gut.txt"
    # the held-out play is shipped as the builtin quality text, and was not trained on
    held_out = load_reference_text(ExperimentConfig().quality)
    assert held_out.identity.sha256 == record["heldout_sha256"]
    assert "macbeth_gut.txt" not in record["training_plays"]
    assert record["heldout_perplexity"] < record["vocab_size"] / 3


def test_held_out_perplexity_is_far_below_the_vocabulary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llenergymeasure.engines.transformers_engine import TransformersEngine
    from llenergymeasure.quality.evaluate import evaluate_measured, prepare_reference

    monkeypatch.setattr("llenergymeasure.quality.evaluate._cache_dir", lambda: tmp_path)
    config = ExperimentConfig(
        model="builtin:shakespeare",
        quality={"enabled": True, "window": 256, "stride": 128, "max_tokens": 1024},
    )
    prepared = prepare_reference(config, on_gpu=False)
    engine = TransformersEngine(config)
    engine.load()
    quality = evaluate_measured(engine.model, config, prepared)
    vocab = len(engine.tokenizer)
    engine.close()
    assert quality.tokens_evaluated == 1023
    assert quality.perplexity < vocab / 3, (quality.perplexity, vocab)
    assert quality.text.name == "shakespeare-heldout"
