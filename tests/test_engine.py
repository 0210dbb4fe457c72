"""The transformers engine and builtin models: token counting, timestamps, determinism."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from transformers import LogitsProcessor, LogitsProcessorList

from llenergymeasure.config.experiment import ExperimentConfig
from llenergymeasure.engines import builtin
from llenergymeasure.engines.base import BatchOutput, count_generated_tokens, static_batch_traces
from llenergymeasure.engines.transformers_engine import TransformersEngine
from llenergymeasure.errors import ConfigError, LlemError

EOS, PAD = builtin.EOS_ID, builtin.PAD_ID


def test_count_generated_tokens_hand_worked() -> None:
    generated = [
        [11, 12, 13, 14, 15],  # never stops: 5
        [21, EOS, PAD, PAD, PAD],  # EOS at step 2: 2 (EOS counted, padding not)
        [EOS, PAD, PAD, PAD, PAD],  # EOS first: 1
        [31, 32, 33, 34, EOS],  # EOS last: 5
    ]
    assert count_generated_tokens(generated, {EOS}, stop_at_eos=True) == [5, 2, 1, 5]
    assert count_generated_tokens(generated, {EOS}, stop_at_eos=False) == [5, 5, 5, 5]
    # pad == eos (GPT-2 style): the first EOS ends the sequence, later copies are filler
    assert count_generated_tokens([[7, 50, 50, 50]], {50}, stop_at_eos=True) == [2]


def test_static_batch_traces_hand_worked() -> None:
    steps = [10.1, 10.2, 10.35, 10.5]
    traces = static_batch_traces(
        [4, 2], [4, 2], [False, True], start_sec=10.0, step_times_sec=steps
    )
    out = BatchOutput(traces, 10.0, 10.5, steps, padded=True)
    assert out.input_tokens == [4, 2] and out.output_tokens == [4, 2]
    assert [t.ttft_ms() for t in traces] == pytest.approx([100.0, 100.0])
    # row 0: gaps after tokens 1..3; row 1: only the gap after its first token
    assert traces[0].itl_ms() == pytest.approx([100.0, 150.0, 150.0])
    assert traces[1].itl_ms() == pytest.approx([100.0])
    assert [t.e2e_ms() for t in traces] == pytest.approx([500.0, 200.0])
    assert traces[0].tpot_ms() == pytest.approx(400.0 / 3)
    assert traces[1].tpot_ms() == pytest.approx(100.0)
    assert traces[1].stopped_at_eos and not traces[0].stopped_at_eos


class ForceEos(LogitsProcessor):
    """Forces EOS for one row at a given step (0-based) and a fixed token everywhere else."""

    def __init__(self, prompt_len: int, row: int, step: int) -> None:
        self.prompt_len, self.row, self.step = prompt_len, row, step

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        step = input_ids.shape[1] - self.prompt_len
        forced = torch.full_like(scores, -1e9)
        forced[:, 100] = 0.0
        if step == self.step:
            forced[self.row, :] = -1e9
            forced[self.row, EOS] = 0.0
        return forced


def test_natural_stopping_counts_up_to_and_including_eos() -> None:
    config = ExperimentConfig(max_output_tokens=6, fixed_length=False, batch_size=2)
    prompts = [[40, 41, 42], [50, 51, 52]]
    engine = TransformersEngine(
        config, logits_processor=LogitsProcessorList([ForceEos(prompt_len=3, row=1, step=2)])
    )
    engine.load()
    out = engine.generate(prompts)
    assert out.input_tokens == [3, 3]
    assert out.output_tokens == [6, 3]  # row 1: two tokens, then EOS at step 2
    assert len(out.step_times_sec) == 6  # the batch ran until row 0 finished
    assert [len(t.itl_ms()) for t in out.requests] == [5, 2]
    assert out.requests[1].e2e_ms() == pytest.approx((out.step_times_sec[2] - out.start_sec) * 1e3)
    assert [t.stopped_at_eos for t in out.requests] == [False, True]
    assert out.step_times_sec == sorted(out.step_times_sec)
    assert out.start_sec < out.step_times_sec[0] and out.step_times_sec[-1] <= out.end_sec


def test_fixed_length_ignores_eos() -> None:
    config = ExperimentConfig(max_output_tokens=6, fixed_length=True)
    engine = TransformersEngine(
        config, logits_processor=LogitsProcessorList([ForceEos(prompt_len=3, row=1, step=2)])
    )
    engine.load()
    out = engine.generate([[40, 41, 42], [50, 51, 52]])
    assert out.output_tokens == [6, 6]


def test_left_padding_and_per_sequence_input_counts() -> None:
    engine = TransformersEngine(ExperimentConfig(max_output_tokens=3))
    engine.load()
    ids = engine.tokenize(["Explain why the sky looks blue during the day.", "Hi"])
    out = engine.generate(ids)
    assert out.input_tokens == [len(ids[0]), len(ids[1])]
    assert out.output_tokens == [3, 3]
    assert engine.precision().compute == "fp32"
    assert engine.gpu_indices() == []
    peak, weights = engine.memory_mb()
    assert weights is not None and 5 < weights < 30  # ~3.5M fp32 parameters
    assert peak is not None and peak > weights


def test_truncation_to_max_input_tokens() -> None:
    engine = TransformersEngine(ExperimentConfig(max_input_tokens=5))
    engine.load()
    assert all(len(ids) <= 5 for ids in engine.tokenize(["word " * 50, "short"]))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_builtin_models_build_deterministically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = []
    for sub in ("a", "b"):
        monkeypatch.setenv("LLEM_CACHE_DIR", str(tmp_path / sub))
        paths.append(builtin.builtin_path("builtin:tiny-gpt2"))
    a, b = paths
    assert a != b
    assert _sha(a / "model.safetensors") == _sha(b / "model.safetensors")
    assert (a / "tokenizer.json").read_text() == (b / "tokenizer.json").read_text()
    assert not [p for p in a.parent.iterdir() if p.name.startswith(".")]  # no staging left


def test_builtin_unknown_name() -> None:
    with pytest.raises(ConfigError, match="available: builtin:tiny-llama, builtin:tiny-gpt2"):
        builtin.builtin_path("builtin:huge")


def test_unknown_model_offline_is_one_clear_error() -> None:
    engine = TransformersEngine(ExperimentConfig(model="no-such-org/no-such-model-xyz"))
    with pytest.raises(LlemError, match="not a local path and could not be loaded"):
        engine.load()


def test_device_map_cuda_without_index_is_the_current_gpu() -> None:
    """Issue 11 item 11: device_map 'cuda' (no index) resolves to the current GPU, no crash."""
    from types import SimpleNamespace

    current = lambda: 1  # noqa: E731 - torch.cuda.current_device after set_device(1)
    engine = TransformersEngine(ExperimentConfig(device_map="cuda"))
    engine._torch = SimpleNamespace(cuda=SimpleNamespace(current_device=current))
    engine._model = SimpleNamespace(hf_device_map={"": "cuda"})
    assert engine.gpu_indices() == [1]
    engine._model = SimpleNamespace(hf_device_map={"model.layers.0": 0, "lm_head": "cuda:3"})
    assert engine.gpu_indices() == [0, 3]

    from llenergymeasure.engines.base import cuda_indices

    assert cuda_indices(["cuda"], current) == [1]
    assert cuda_indices([0, "cuda:2", "cpu", "disk", "cuda:2"], current) == [0, 2]
    assert cuda_indices(["cpu", "meta"], lambda: 1 / 0) == []  # asked only for a bare 'cuda'
