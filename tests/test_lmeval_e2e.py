"""Task accuracy through lm-eval, the real path: `llem run` on builtin:shakespeare with the
shipped offline task -> result.json -> `results show` and export; the accuracy checked against
an independent computation (plain transformers forward passes). Needs the ``lmeval`` extra."""

from __future__ import annotations

import csv
import json
import math
from importlib.metadata import version
from pathlib import Path

import pytest

pytest.importorskip("lm_eval")

from llenergymeasure.engines.builtin import builtin_path
from llenergymeasure.errors import ConfigError
from llenergymeasure.quality.lmeval import shipped_task_dir
from llenergymeasure.results.io import load_result
from tests.cli_helpers import run_llem

TASK = "llem_macbeth_next_line"
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def _docs() -> list[dict]:
    path = shipped_task_dir() / "macbeth_next_line.jsonl"
    return [json.loads(line) for line in path.open()]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lmeval-e2e")
    config = root / "exp.yaml"
    config.write_text(
        "model: builtin:shakespeare\n"
        "n_prompts: 2\nbatch_size: 2\nmax_output_tokens: 4\nbaseline_sec: 0\n"
        "warmup: {mode: fixed, n: 1}\n"
        f"output_dir: {root / 'results'}\n"
        f"quality:\n  lm_eval:\n    tasks: [{TASK}]\n"
    )
    # run from elsewhere: the task's relative data file resolves next to its YAML; offline,
    # with an empty datasets cache (nothing prepared earlier while online)
    cache = str(root / "hf-datasets-cache")
    done = run_llem("run", str(config), cwd=root, COLUMNS="200", HF_DATASETS_CACHE=cache, **OFFLINE)
    assert done.returncode == 0, done.stderr[-3000:]
    assert any(Path(cache).iterdir())  # the local JSON was read into this fresh cache
    # lm-eval's own bars and its `git describe` (this is no repository) stay off the terminal
    assert "it/s]" not in done.stderr and "not a git repository" not in done.stderr
    [result] = (root / "results").glob("*/result.json")
    return result.parent


def test_result_json_carries_the_task_accuracy(run_dir: Path) -> None:
    result = load_result(run_dir / "result.json")
    t = result.task_accuracy
    assert t is not None and t.lm_eval_version == version("lm_eval")
    assert result.quality is None  # perplexity evaluation was not asked for
    [score] = t.tasks
    assert score.task == TASK and score.version == "1.0" and score.num_fewshot == 0
    n = len(_docs())
    assert score.n_samples == score.n_samples_total == n == 200
    assert score.config_source and score.config_source.endswith(f"{TASK}.yaml")
    assert len(score.config_sha256) == 64
    assert score.samples_sha256 is not None and len(score.samples_sha256) == 64
    metrics = {m.name: m for m in score.metrics}
    assert set(metrics) == {"acc", "acc_norm"}
    for m in metrics.values():
        assert 0.0 <= m.value <= 1.0 and m.higher_is_better is True
        # a share over n documents: its value is k/n, its stderr the sample standard error
        assert m.value * n == pytest.approx(round(m.value * n))
        assert m.stderr == pytest.approx(math.sqrt(m.value * (1 - m.value) / (n - 1)))
    assert t.eval_time_sec > 0 and "outside the energy window" in t.note
    # the same figures in the process file (process 0 scored them)
    raw = json.loads((run_dir / "process_0.json").read_text())
    assert raw["task_accuracy"]["tasks"][0]["metrics"] == json.loads(
        score.model_dump_json()
    )["metrics"]


def test_accuracy_equals_an_independent_computation(run_dir: Path) -> None:
    """Each document's choice by summed (and length-normalised) log-likelihood, recomputed."""
    import torch
    import transformers

    source = builtin_path("builtin:shakespeare")
    tokenizer = transformers.AutoTokenizer.from_pretrained(source)
    model = transformers.AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32).eval()
    right = right_norm = 0
    docs = _docs()
    with torch.inference_mode():
        for doc in docs:
            context = f"{doc['speaker']}\n{doc['context']}"  # the trailing newline moves on
            context_ids = tokenizer.encode(context)
            sums = []
            for choice in doc["choices"]:
                whole = tokenizer.encode(f"{context}\n{choice}")
                logits = model(torch.tensor([whole[:-1]])).logits[0].log_softmax(-1)
                targets = whole[len(context_ids) :]
                rows = logits[len(context_ids) - 1 :]
                sums.append(float(rows.gather(1, torch.tensor(targets)[:, None]).sum()))
            norm = [s / len(c) for s, c in zip(sums, doc["choices"], strict=True)]
            right += int(max(range(4), key=lambda i: (sums[i], -i)) == doc["answer"])
            right_norm += int(max(range(4), key=lambda i: (norm[i], -i)) == doc["answer"])
    score = load_result(run_dir / "result.json").task_accuracy.tasks[0]
    metrics = {m.name: m.value for m in score.metrics}
    assert metrics["acc"] == pytest.approx(right / len(docs), abs=1e-12)
    assert metrics["acc_norm"] == pytest.approx(right_norm / len(docs), abs=1e-12)


def test_results_show_and_export_print_it(run_dir: Path, tmp_path: Path) -> None:
    score = load_result(run_dir / "result.json").task_accuracy.tasks[0]
    acc = next(m for m in score.metrics if m.name == "acc")
    show = run_llem("results", "show", str(run_dir / "result.json"), COLUMNS="250")
    assert show.returncode == 0, show.stderr
    line = next(row for row in show.stdout.splitlines() if f" {TASK} " in row and " acc " in row)
    assert f"{acc.value:.4f} ± {acc.stderr:.3f}" in line and "200/200" in line
    assert "task accuracy (lm-eval" in show.stdout
    out = tmp_path / "rows.csv"
    export = run_llem("results", "export", str(run_dir.parent), "-o", str(out))
    assert export.returncode == 0, export.stderr
    [row] = list(csv.DictReader(out.open()))
    assert f"{TASK} acc={acc.value:.4f}±{acc.stderr:.4f} (n=200)" in row["task_accuracy"]


def test_limit_on_a_loaded_torch_int8_model_leaves_it_unchanged() -> None:
    """The entry point on a model llem loaded (quantised): limit scores that many documents,
    and lm-eval's wrapper leaves the model as it was (no re-tied weights)."""
    from llenergymeasure.config.experiment import ExperimentConfig
    from llenergymeasure.config.quality import LmEvalConfig
    from llenergymeasure.engines.transformers_engine import TransformersEngine
    from llenergymeasure.quality.lmeval import run_tasks

    engine = TransformersEngine(
        ExperimentConfig(model="builtin:shakespeare", quantization="torch-int8")
    )
    import lm_eval.evaluator
    from tqdm import std

    probes = (std.tqdm.__dict__["__init__"], lm_eval.evaluator.add_env_info)
    engine.load()
    try:
        before = {k: v.clone() for k, v in engine.model.state_dict().items() if hasattr(v, "clone")}
        limited = run_tasks(engine.model, engine.tokenizer, LmEvalConfig(tasks=[TASK], limit=12))
        # what was quieted for the evaluation is put back
        assert (std.tqdm.__dict__["__init__"], lm_eval.evaluator.add_env_info) == probes
        after = engine.model.state_dict()
        assert all(bool((after[k] == v).all()) for k, v in before.items())
        assert "tie_weights" not in vars(engine.model)
    finally:
        engine.close()
    assert limited.limit == 12
    [score] = limited.tasks
    assert (score.n_samples, score.n_samples_total) == (12, 200)


def test_an_unknown_task_fails_before_anything_is_measured() -> None:
    from llenergymeasure.config.quality import LmEvalConfig
    from llenergymeasure.quality.lmeval import check

    with pytest.raises(ConfigError, match="quality.lm_eval.tasks: unknown task 'no_such_task_x'"):
        check(LmEvalConfig(tasks=["no_such_task_x"]))


def test_a_task_that_fails_after_the_window_keeps_the_measurement(tmp_path: Path) -> None:
    """A user's task whose data file is missing: the energy result is written, with a warning."""
    from llenergymeasure import run_experiment

    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "broken.yaml").write_text(
        (shipped_task_dir() / f"{TASK}.yaml")
        .read_text()
        .replace(f"task: {TASK}", "task: llem_test_broken")
        .replace("macbeth_next_line.jsonl", "missing.jsonl")
    )
    result = run_experiment(
        {
            "model": "builtin:tiny-llama",
            "n_prompts": 2,
            "batch_size": 2,
            "max_output_tokens": 2,
            "baseline_sec": 0,
            "warmup": {"mode": "fixed", "n": 1},
            "output_dir": str(tmp_path / "results"),
            "quality": {"lm_eval": {"tasks": ["llem_test_broken"], "include_path": str(tasks)}},
        }
    )
    assert result.task_accuracy is None and result.energy.total_energy_j > 0
    assert any("quality.lm_eval: tasks ['llem_test_broken'] failed" in w for w in result.warnings)
    assert list((tmp_path / "results").glob("*/result.json"))


def test_a_study_summary_carries_and_prints_the_task_accuracy(tmp_path: Path) -> None:
    """`llem study` with an lm-eval task: each configuration's summary in study_summary.json
    carries the task accuracy of its run, and the command's table prints it."""
    from llenergymeasure.domain.study import StudyResult
    from llenergymeasure.results.io import load_model

    study = tmp_path / "study.yaml"
    study.write_text(
        "name: tasks\n"
        "base:\n  model: builtin:shakespeare\n  n_prompts: 2\n  batch_size: 2\n"
        "  max_output_tokens: 2\n  baseline_sec: 0\n  warmup: {mode: fixed, n: 0}\n"
        f"  quality:\n    lm_eval:\n      tasks: [{TASK}]\n      limit: 4\n"
        f"output_dir: {tmp_path}\n"
    )
    env = {**OFFLINE, "HF_DATASETS_CACHE": str(tmp_path / "hf-cache")}
    done = run_llem("study", str(study), cwd=tmp_path, COLUMNS="250", **env)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = load_model(tmp_path / "tasks" / "study_summary.json", StudyResult)
    [config] = summary.summaries
    [run] = [load_result(p) for p in (tmp_path / "tasks" / "runs").glob("*/result.json")]
    assert config.task_accuracy is not None and config.task_accuracy == run.task_accuracy
    [score] = config.task_accuracy.tasks
    assert score.task == TASK and score.n_samples == 4
    assert "task accuracy (lm-eval)" in done.stdout and f"{TASK} acc=" in done.stdout
