"""Every file in examples/ (issue 11, item 19) says what it answers and validates; the studies
dry-run; the offline experiment runs as it is."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from llenergymeasure.config.loading import load_experiment_config
from llenergymeasure.config.study import expand, load_study_config
from llenergymeasure.results.io import load_result
from tests.cli_helpers import ROOT, run_llem

EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def is_study(path: Path) -> bool:
    data = yaml.safe_load(path.read_text())
    return "sweep" in data or "experiments" in data


def is_serving(path: Path) -> bool:
    return yaml.safe_load(path.read_text()).get("scenario") == "serving"


def test_the_four_kinds_of_example_are_there() -> None:
    names = {p.name for p in EXAMPLES}
    assert names >= {
        "offline-experiment.yaml",
        "offline-study.yaml",
        "gpu-experiment.yaml",
        "gpu-study.yaml",
    }


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_each_example_says_what_it_answers_and_validates(path: Path) -> None:
    assert path.read_text().startswith("# What it answers: "), f"{path.name}: say what it answers"
    if is_serving(path):
        from llenergymeasure.serving.experiment import load_serving_config

        configs = [load_serving_config(path)]
    elif is_study(path):
        runs = expand(load_study_config(path))
        assert runs, path.name
        configs = [run.config for run in runs]
    else:
        configs = [load_experiment_config(path)]
    offline = path.name.startswith("offline")
    for config in configs:
        assert config.model.startswith("builtin:") == offline, path.name
        if not offline and not is_serving(path):  # a real hub model on a GPU
            assert "/" in config.model and (config.device_map or "").startswith("cuda")


def test_gpu_study_is_batch_size_by_dtype() -> None:
    runs = expand(load_study_config(ROOT / "examples" / "gpu-study.yaml"))
    shapes = {(r.config.batch_size, r.config.dtype) for r in runs}
    assert len(shapes) >= 4
    assert len({b for b, _ in shapes}) >= 2 and len({d for _, d in shapes}) >= 2


@pytest.mark.parametrize("path", [p for p in EXAMPLES if is_study(p)], ids=lambda p: p.name)
def test_each_study_dry_runs(path: Path, tmp_path: Path) -> None:
    done = run_llem("study", str(path), "--dry-run", "-o", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert f"{len(expand(load_study_config(path)))} runs" in done.stdout
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_offline_experiment_runs_as_it_is(tmp_path: Path) -> None:
    path = ROOT / "examples" / "offline-experiment.yaml"
    done = run_llem("run", str(path), "-o", str(tmp_path), "--quiet")
    assert done.returncode == 0, done.stderr
    (result_file,) = tmp_path.glob("*/result.json")
    result = load_result(result_file)
    assert result.config["name"] == "offline-tiny-llama"
    assert result.inference.output_tokens == 16 * 32
    if "OMP_WAIT_POLICY" not in os.environ:  # llem lets idle OpenMP threads sleep
        assert result.environment.omp_wait_policy == "PASSIVE"
