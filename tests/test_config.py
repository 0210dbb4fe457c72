"""ExperimentConfig: validation with one clear line, YAML loading, overrides, the config hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from llenergymeasure.config.experiment import ExperimentConfig
from llenergymeasure.config.loading import load_experiment_config, set_dotted
from llenergymeasure.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def test_defaults_are_the_offline_quickstart() -> None:
    c = ExperimentConfig()
    assert c.model == "builtin:tiny-llama" and c.engine == "transformers"
    assert c.fixed_length and c.decoding.mode == "greedy"
    assert (c.warmup.mode, c.warmup.target_cv, c.warmup.window, c.warmup.max_prompts) == (
        "cv", 0.05, 5, 50,
    )  # fmt: skip
    assert c.energy == "auto" and c.baseline_sec == 10.0


def test_yaml_and_overrides(tmp_path: Path) -> None:
    path = write(
        tmp_path, "model: builtin:tiny-gpt2\nbatch_size: 2\nwarmup:\n  mode: fixed\n  n: 3\n"
    )
    c = load_experiment_config(path, {"batch_size": 8, "n_prompts": None, "warmup.n": 4})
    assert (c.model, c.batch_size, c.warmup.mode, c.warmup.n) == (
        "builtin:tiny-gpt2",
        8,
        "fixed",
        4,
    )


def test_unknown_field_names_closest_valid_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_experiment_config(write(tmp_path, "batchsize: 4\n"))
    assert (
        str(info.value)
        == f"{tmp_path / 'exp.yaml'}: unknown field 'batchsize'; did you mean 'batch_size'?"
    )
    with pytest.raises(
        ConfigError, match="unknown field 'warmup.target_vc'; did you mean 'target_cv'"
    ):
        load_experiment_config(write(tmp_path, "warmup:\n  target_vc: 0.1\n"))


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("batch_size: -4\n", "batch_size: Input should be greater than or equal to 1 (got -4)"),
        ("dtype: float8\n", "dtype: Input should be 'auto', 'float32', 'float16' or 'bfloat16'"),
        ("energy: wattmeter\n", "energy: Input should be"),
        ("prompts:\n  source: file\n", "prompts.source is 'file' but prompts.path is not set"),
        ("- a\n- b\n", "expected a mapping"),
        ("model: [unclosed\n", "not valid YAML (line"),
    ],
)
def test_bad_values_one_line(tmp_path: Path, yaml_text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_experiment_config(write(tmp_path, yaml_text))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_prompt_file_and_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(ConfigError, match="prompt file not found: .*nope.jsonl"):
        load_experiment_config(write(tmp_path, f"prompts:\n  source: file\n  path: {missing}\n"))
    with pytest.raises(ConfigError, match="config file not found"):
        load_experiment_config(tmp_path / "absent.yaml")


def test_config_hash_covers_measured_fields_only() -> None:
    base = ExperimentConfig()
    assert base.config_hash() == ExperimentConfig().config_hash()
    assert len(base.config_hash()) == 16
    assert (
        ExperimentConfig(output_dir=Path("/elsewhere"), name="x").config_hash()
        == base.config_hash()
    )
    for change in (
        {"batch_size": 8},
        {"dtype": "float16"},
        {"warmup": {"target_cv": 0.1}},
        {"fixed_length": False},
        {"decoding": {"mode": "sample"}},
    ):
        assert ExperimentConfig.model_validate(change).config_hash() != base.config_hash()


def test_set_dotted() -> None:
    data: dict = {"warmup": {"n": 1}}
    set_dotted(data, "warmup.mode", "fixed")
    set_dotted(data, "prompts.seed", 3)
    assert data == {"warmup": {"n": 1, "mode": "fixed"}, "prompts": {"seed": 3}}


def test_every_process_needs_a_prompt() -> None:
    with pytest.raises(ValueError, match=r"n_prompts \(2\) must be at least processes \(4\)"):
        ExperimentConfig(n_prompts=2, processes=4)
