"""Study configs: sweep expansion, explicit lists, cycles, ordering, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from llenergymeasure.config.study import StudyConfig, expand, load_study_config
from llenergymeasure.errors import ConfigError


def study(**kw: object) -> StudyConfig:
    return StudyConfig.model_validate({"base": {"n_prompts": 4}, **kw})


def test_sweep_is_cartesian_product_times_cycles() -> None:
    runs = expand(study(sweep={"batch_size": [1, 4], "dtype": ["float32", "bfloat16"]}, cycles=3))
    assert len(runs) == 12
    assert len({r.run_id for r in runs}) == 12
    combos = {(r.config.batch_size, r.config.dtype) for r in runs}
    assert combos == {(1, "float32"), (1, "bfloat16"), (4, "float32"), (4, "bfloat16")}
    assert all(r.config.n_prompts == 4 for r in runs)


def test_dotted_sweep_keys_and_explicit_experiments() -> None:
    runs = expand(study(sweep={"warmup.target_cv": [0.1, 0.2]}))
    assert [r.config.warmup.target_cv for r in runs] == [0.1, 0.2]
    listed = expand(study(experiments=[{"batch_size": 2}, {"model": "builtin:tiny-gpt2"}]))
    assert [(r.config.batch_size, r.config.model) for r in listed] == [
        (2, "builtin:tiny-llama"), (4, "builtin:tiny-gpt2"),
    ]  # fmt: skip
    assert len(expand(study())) == 1  # the base alone


def test_orders() -> None:
    base = {"sweep": {"batch_size": [1, 2]}, "cycles": 2}
    seq = [(r.config_index, r.cycle) for r in expand(study(order="sequential", **base))]
    assert seq == [(0, 0), (0, 1), (1, 0), (1, 1)]
    inter = [(r.config_index, r.cycle) for r in expand(study(order="interleaved", **base))]
    assert inter == [(0, 0), (1, 0), (0, 1), (1, 1)]
    shuffled = [r.run_id for r in expand(study(order="shuffled", seed=3, **base))]
    assert shuffled == [r.run_id for r in expand(study(order="shuffled", seed=3, **base))]
    assert sorted(shuffled) == sorted(r.run_id for r in expand(study(**base)))


def test_run_ids_stable_and_hash_based() -> None:
    a = expand(study(sweep={"batch_size": [1, 2]}))
    b = expand(study(sweep={"batch_size": [1, 2]}, output_dir="elsewhere"))
    assert [r.run_id for r in a] == [r.run_id for r in b]
    assert a[0].run_id.endswith(a[0].config.config_hash()[:8])


def test_bad_studies(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown field 'cylces'; did you mean 'cycles'"):
        p = tmp_path / "s.yaml"
        p.write_text("cylces: 3\n")
        load_study_config(p)
    p.write_text("base: {batch_size: 2}\nsweep:\n  batchsize: [1, 2]\n")
    with pytest.raises(
        ConfigError, match=r"study run 1 \(batchsize=1\): unknown field 'batchsize'"
    ):
        load_study_config(p)
    p.write_text("sweep: {batch_size: []}\n")
    with pytest.raises(ConfigError, match="sweep.batch_size has no values"):
        load_study_config(p)
    p.write_text("sweep: {batch_size: [1]}\nexperiments: [{batch_size: 2}]\n")
    with pytest.raises(ConfigError, match="either sweep or experiments"):
        load_study_config(p)


def test_base_from_experiment_file(tmp_path: Path) -> None:
    (tmp_path / "exp.yaml").write_text("batch_size: 3\nn_prompts: 6\n")
    p = tmp_path / "s.yaml"
    p.write_text("base: exp.yaml\nsweep: {max_output_tokens: [4, 8]}\n")
    runs = expand(load_study_config(p))
    assert [(r.config.batch_size, r.config.max_output_tokens) for r in runs] == [(3, 4), (3, 8)]
    p.write_text("base: missing.yaml\n")
    with pytest.raises(ConfigError, match="experiment config not found"):
        load_study_config(p)


def test_study_hash_ignores_where_it_writes() -> None:
    a = study(sweep={"batch_size": [1, 2]})
    assert (
        a.study_hash()
        == study(sweep={"batch_size": [1, 2]}, output_dir="x", gap_sec=5).study_hash()
    )
    assert a.study_hash() != study(sweep={"batch_size": [1, 3]}).study_hash()
