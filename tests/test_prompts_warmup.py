"""Prompt sources, sharding and batching; warmup convergence on scripted latencies."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llenergymeasure.config.experiment import ExperimentConfig, WarmupConfig
from llenergymeasure.domain.requests import RequestTrace
from llenergymeasure.engines.base import BatchOutput
from llenergymeasure.errors import ConfigError
from llenergymeasure.measure.experiment import shard
from llenergymeasure.measure.prompts import (
    batched,
    builtin_prompts,
    load_prompt_ids,
    read_prompt_file,
    synthetic_prompts,
)
from llenergymeasure.measure.warmup import run_warmup


class FakeTokenizingEngine:
    """Test double: tokenizes by characters; a vocabulary of 100 ids, 0-3 special."""

    def tokenize(self, prompts: Sequence[str]) -> list[list[int]]:
        return [[ord(c) % 100 for c in p][:8] for p in prompts]

    def vocab_ids_for_synthetic(self) -> tuple[int, int, set[int]]:
        return 0, 100, {0, 1, 2, 3}


def test_builtin_prompt_set() -> None:
    prompts = builtin_prompts()
    assert len(prompts) == 64 and len(set(prompts)) == 64


def test_prompt_files(tmp_path: Path) -> None:
    txt = tmp_path / "p.txt"
    txt.write_text("first\n\n second \n")
    assert read_prompt_file(txt) == ["first", "second"]
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text(
        json.dumps({"prompt": "a"})
        + "\n"
        + json.dumps("b")
        + "\n"
        + json.dumps({"text": "c", "id": 3})
        + "\n"
    )
    assert read_prompt_file(jsonl) == ["a", "b", "c"]
    jsonl.write_text('{"prompt": "a"}\n{broken\n')
    with pytest.raises(ConfigError, match=r"p.jsonl, line 2: not valid JSON"):
        read_prompt_file(jsonl)
    jsonl.write_text('{"other": 1}\n')
    with pytest.raises(ConfigError, match="line 1: expected a string"):
        read_prompt_file(jsonl)
    txt.write_text("\n\n")
    with pytest.raises(ConfigError, match="holds no prompts"):
        read_prompt_file(txt)


def test_file_prompts_cycled_with_warning(tmp_path: Path) -> None:
    path = tmp_path / "p.txt"
    path.write_text("one\ntwo\nthree\n")
    config = ExperimentConfig.model_validate(
        {"n_prompts": 7, "prompts": {"source": "file", "path": str(path)}}
    )
    ids, warnings = load_prompt_ids(config, FakeTokenizingEngine())  # type: ignore[arg-type]
    assert len(ids) == 7 and ids[3] == ids[0]
    assert warnings == ["the prompt set has 3 prompts; cycled to reach n_prompts=7"]


def test_synthetic_prompts_exact_length_seeded() -> None:
    engine = FakeTokenizingEngine()
    a = synthetic_prompts(engine, 5, 12, seed=1)  # type: ignore[arg-type]
    assert a == synthetic_prompts(engine, 5, 12, seed=1)  # type: ignore[arg-type]
    assert a != synthetic_prompts(engine, 5, 12, seed=2)  # type: ignore[arg-type]
    assert all(len(p) == 12 and not set(p) & {0, 1, 2, 3} for p in a)
    config = ExperimentConfig.model_validate(
        {
            "n_prompts": 3,
            "max_input_tokens": 10,
            "prompts": {"source": "synthetic", "synthetic_input_tokens": 64},
        }
    )
    ids, _ = load_prompt_ids(config, engine)  # type: ignore[arg-type]
    assert [len(p) for p in ids] == [10, 10, 10]  # capped at max_input_tokens


@given(st.integers(0, 50), st.integers(1, 8))
def test_shards_partition_the_prompts(n: int, world: int) -> None:
    items = [[i] for i in range(n)]
    shards = [shard(items, i, world) for i in range(world)]
    assert [x for s in shards for x in s] == items
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1


def test_batched() -> None:
    assert [len(b) for b in batched([[i] for i in range(10)], 4)] == [4, 4, 2]


def scripted(latencies_ms: list[float]):  # type: ignore[no-untyped-def]
    """A generate() test double returning batches that took the scripted times."""
    it = iter(latencies_ms)

    def generate(batch: Sequence[Sequence[int]]) -> BatchOutput:
        ms = next(it)
        trace = RequestTrace(
            arrival_sec=0.0,
            first_token_sec=ms / 1e3,
            finish_sec=ms / 1e3,
            input_tokens=1,
            output_tokens=1,
        )
        return BatchOutput([trace], 0.0, ms / 1e3, [ms / 1e3])

    return generate


def test_warmup_cv_converges_at_first_settled_window() -> None:
    lat = [50.0, 30.0, 12.0, 10.0, 10.0, 10.2, 10.1, 9.9, 10.0] + [10.0] * 50
    seen: list[tuple[int, float | None]] = []
    result = run_warmup(
        scripted(lat),
        [[[1]]],
        WarmupConfig(target_cv=0.05, window=5),
        on_request=lambda i, cv: seen.append((i, cv)),
    )
    # windows: [50..10] no, [30..10.2] no, [12..10.1] cv~0.08 no, [10,10,10.2,10.1,9.9] yes
    assert result.converged and result.iterations_completed == 8
    assert result.final_cv <= 0.05 and result.latencies_ms == lat[:8]
    assert seen[3][1] is None and seen[4][1] is not None and len(seen) == 8
    assert len(result.cv_curve()) == 4 and result.cv_curve()[-1] == pytest.approx(result.final_cv)


def test_warmup_gives_up_after_max_prompts() -> None:
    lat = [10.0, 20.0] * 30
    result = run_warmup(scripted(lat), [[[1]]], WarmupConfig(max_prompts=12))
    assert not result.converged and result.iterations_completed == 12
    assert result.max_prompts == 12 and result.final_cv > 0.05


def test_warmup_fixed_mode() -> None:
    result = run_warmup(scripted([10.0] * 3), [[[1]]], WarmupConfig(mode="fixed", n=3))
    assert result.iterations_completed == 3 and not result.converged  # fewer than a window
    none = run_warmup(scripted([]), [[[1]]], WarmupConfig(mode="fixed", n=0))
    assert none.iterations_completed == 0 and none.max_prompts == 0
