"""Task accuracy config (quality.lm_eval) and the clear line a user gets without the extra.

Runs without lm-eval installed (the missing package is simulated where it is installed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from llenergymeasure.config.experiment import ExperimentConfig
from llenergymeasure.errors import ConfigError
from llenergymeasure.quality.lmeval import MISSING_EXTRA, check, shipped_task_dir
from tests.cli_helpers import ROOT, source_env

SHIPPED_TASK = "llem_macbeth_next_line"


def _config(**lm_eval: object) -> ExperimentConfig:
    return ExperimentConfig(model="builtin:tiny-llama", quality={"lm_eval": lm_eval})


def test_tasks_limit_fewshot_and_include_path_parse() -> None:
    config = _config(tasks=[SHIPPED_TASK], limit=10, num_fewshot=2, include_path="tasks")
    t = config.quality.lm_eval
    assert (t.tasks, t.limit, t.num_fewshot, t.include_path) == (
        [SHIPPED_TASK],
        10,
        2,
        Path("tasks"),
    )
    assert not config.quality.enabled  # tasks run without the perplexity evaluation


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"tasks": [SHIPPED_TASK], "limit": 0}, "limit"),
        ({"tasks": [SHIPPED_TASK], "num_fewshot": -1}, "num_fewshot"),
        ({"tasks": ["a", "a"]}, "twice"),
        ({"tasks": [" "]}, "empty task name"),
        ({"task": ["a"]}, "task"),
    ],
)
def test_bad_values_name_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        _config(**changes)


def test_config_hash_unchanged_without_tasks_and_changed_by_them() -> None:
    plain = ExperimentConfig(model="builtin:tiny-llama")
    with_quality = ExperimentConfig(model="builtin:tiny-llama", quality={"enabled": True})
    # the lm_eval defaults are not hashed: hashes of earlier configs stay as they were
    payload = with_quality.model_dump(mode="json")
    assert "lm_eval" in payload["quality"]
    assert _config().config_hash() == plain.config_hash()
    tasks = _config(tasks=[SHIPPED_TASK])
    assert tasks.config_hash() != plain.config_hash()
    assert _config(tasks=[SHIPPED_TASK], limit=5).config_hash() != tasks.config_hash()


def test_shipped_task_is_a_yaml_with_local_data() -> None:
    folder = shipped_task_dir()
    assert (folder / f"{SHIPPED_TASK}.yaml").is_file()
    rows = [json.loads(line) for line in (folder / "macbeth_next_line.jsonl").open()]
    assert len(rows) == 200
    for row in rows:
        assert len(row["choices"]) == 4 and 0 <= row["answer"] < 4
        assert len(set(row["choices"])) == 4
    # the true line comes from the held-out text, right after the context
    held_out = (folder.parent / "shakespeare-heldout.txt").read_text()
    first = rows[0]
    assert f"{first['context']}\n{first['choices'][first['answer']]}" in held_out


def test_no_tasks_needs_nothing() -> None:
    check(_config().quality.lm_eval)  # lm-eval not needed when no task is listed


def test_tasks_without_the_extra_give_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lm_eval", None)  # as if not installed
    with pytest.raises(ConfigError) as info:
        check(_config(tasks=[SHIPPED_TASK]).quality.lm_eval)
    assert str(info.value) == MISSING_EXTRA
    assert "pip install 'llenergymeasure[lmeval]'" in MISSING_EXTRA


def test_include_path_must_be_a_directory(tmp_path: Path) -> None:
    pytest.importorskip("lm_eval")
    with pytest.raises(ConfigError, match="include_path"):
        check(_config(tasks=[SHIPPED_TASK], include_path=tmp_path / "nope").quality.lm_eval)


def test_llem_run_without_the_extra_exits_2_with_the_install_line(tmp_path: Path) -> None:
    """The real CLI, before anything loads: one line, exit 2, no traceback, nothing written."""
    import subprocess

    config = tmp_path / "exp.yaml"
    out = tmp_path / "results"
    config.write_text(
        "model: builtin:tiny-llama\n"
        f"output_dir: {out}\n"
        "quality:\n  lm_eval:\n    tasks: [llem_macbeth_next_line]\n"
    )
    hide = (
        "import sys; sys.modules['lm_eval'] = None; "
        "from llenergymeasure.cli.main import main; "
        f"sys.argv = ['llem', 'run', {str(config)!r}]; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", hide],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=source_env(),
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert MISSING_EXTRA in done.stderr + done.stdout
    assert not any(out.glob("*/result.json"))


def test_a_2_2_result_file_without_task_accuracy_still_loads(tmp_path: Path) -> None:
    from llenergymeasure.domain.results import SCHEMA_VERSION
    from llenergymeasure.results.io import load_result
    from tests import factories as f

    data = json.loads(f.experiment_result().model_dump_json())
    assert SCHEMA_VERSION == "2.3" and data.pop("task_accuracy") is None
    data["schema_version"] = "2.2"
    path = tmp_path / "result.json"
    path.write_text(json.dumps(data))
    loaded = load_result(path)
    assert loaded.task_accuracy is None and loaded.schema_version == "2.2"


def _accuracy(acc: float, stderr: float) -> object:
    from llenergymeasure.domain.quality import TaskAccuracy, TaskMetric, TaskScore

    score = TaskScore(
        task=SHIPPED_TASK,
        version="1.0",
        n_samples=200,
        n_samples_total=200,
        num_fewshot=0,
        metrics=[TaskMetric(name="acc", value=acc, stderr=stderr, higher_is_better=True)],
        config_sha256="0" * 64,
    )
    return TaskAccuracy(
        lm_eval_version="0.4.13",
        tasks=[score],
        batch_size=8,
        bootstrap_iters=1000,
        seed=0,
        eval_time_sec=1.0,
    )


def test_compare_and_export_rows_of_task_accuracy() -> None:
    from llenergymeasure.results.collection import LoadedResult
    from llenergymeasure.results.records import result_record
    from llenergymeasure.results.views import compare_table
    from tests import factories as f

    results = [
        f.experiment_result().model_copy(update={"task_accuracy": _accuracy(0.5, 0.0354)}),
        f.experiment_result().model_copy(update={"task_accuracy": _accuracy(0.25, 0.0307)}),
        f.experiment_result(),
    ]
    table = compare_table(
        [LoadedResult(Path(f"/x/{i}/result.json"), r) for i, r in enumerate(results)]
    )
    row = next(r for r in table.rows if r[0] == f"{SHIPPED_TASK} acc (lm-eval)")
    assert row[1:] == ("0.5000 ± 0.035", "0.2500 ± 0.031 (x0.5)", "-", "higher")
    assert result_record(results[0])["task_accuracy"] == f"{SHIPPED_TASK} acc=0.5000±0.0354 (n=200)"
    assert result_record(results[2])["task_accuracy"] is None
