"""From a real run (built-in tiny model) through result.json to the commands that read it:
energy by kind, useful FLOPs, warmup mode (issue 11, items 12, 14, 15), `results --json`
(item 20), and messages printed without markup (item 16)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from llenergymeasure import run_experiment
from llenergymeasure.cli.console import console, error_console
from llenergymeasure.cli.main import main
from llenergymeasure.cli.run_cmd import summary_table
from llenergymeasure.domain.results import ExperimentResult
from llenergymeasure.errors import ConfigError
from llenergymeasure.results.io import load_result
from tests.cli_helpers import ROOT, run_llem
from tests.test_study_stats import _render

CONFIG = {
    "model": "builtin:tiny-llama",
    "n_prompts": 6,
    "batch_size": 3,
    "max_output_tokens": 6,
    "baseline_sec": 0.5,
    "energy": "estimate",
    "warmup": {"mode": "fixed", "n": 2},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[ExperimentResult, Path]:
    out = tmp_path_factory.mktemp("numbers")
    result = run_experiment({**CONFIG, "output_dir": str(out)})
    return result, out / result.experiment_id / "result.json"


@pytest.fixture
def llem(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(console.get(), "_width", 250)  # type: ignore[attr-defined]
    monkeypatch.setattr(error_console.get(), "_width", 250)  # type: ignore[attr-defined]

    def invoke(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as info:
            main(list(args))
        out, err = capsys.readouterr()
        return int(info.value.code or 0), out, err

    return invoke


def test_real_run_records_useful_flops_below_executed(run: tuple[ExperimentResult, Path]) -> None:
    _, path = run
    stored = load_result(path)
    compute = stored.compute
    assert compute.useful_flops is not None
    # builtin prompts differ in length: padded positions are executed, not useful
    assert 0 < compute.useful_flops.value < compute.flops.value
    if compute.flops.method == "calflops":  # one generation per prompt length is too slow
        assert compute.useful_flops.method == "architecture"
        assert "useful FLOPs by the architecture formula" in (compute.useful_flops.notes or "")
    else:
        assert compute.useful_flops.method == compute.flops.method
    assert compute.useful_flops_per_sec == pytest.approx(
        compute.useful_flops.value / stored.inference.inference_time_sec
    )


def test_real_run_records_the_warmup_mode_and_no_convergence_warning(
    run: tuple[ExperimentResult, Path],
) -> None:
    result, _ = run
    (warmup,) = result.warmup
    assert warmup.mode == "fixed" and warmup.iterations_completed == 2
    assert warmup.stopped_by == "n" and warmup.max_sec == 20.0 and warmup.elapsed_sec > 0
    assert not any("converge" in w for w in result.warnings)
    summary = _render(summary_table(result))
    assert "fixed: 2 requests (CV" in summary and "not converged" not in summary


def test_real_run_breaks_energy_down_by_kind(
    run: tuple[ExperimentResult, Path],
    llem,  # type: ignore[no-untyped-def]
) -> None:
    result, path = run
    kinds = {k.kind: k for k in result.energy.by_kind()}
    assert set(kinds) == {"cpu", "ram"} and all(k.estimated for k in kinds.values())
    assert result.adjusted_energy_per_output_token_j is not None
    summary = _render(summary_table(result))
    assert "CPU " in summary and "RAM " in summary and "estimated" in summary
    code, out, _ = llem("results", "show", str(path))
    assert code == 0
    assert "energy by kind" in out and "tokens per joule (idle-adjusted)" in out
    assert "FLOPs useful (tokens kept)" in out and "fixed: 2 requests" in out
    ram_row = next(line for line in out.splitlines() if line.lstrip("│ ").startswith("RAM"))
    assert ram_row.rstrip(" │").endswith("yes")  # estimated


def test_results_show_json_is_the_result_document(
    run: tuple[ExperimentResult, Path],
    llem,  # type: ignore[no-untyped-def]
) -> None:
    _, path = run
    code, out, err = llem("results", "show", str(path), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data == json.loads(path.read_text())
    assert ExperimentResult.model_validate(data) == load_result(path)


def test_results_list_json_has_the_export_columns(
    run: tuple[ExperimentResult, Path],
    llem,  # type: ignore[no-untyped-def]
) -> None:
    result, path = run
    root = path.parent.parent
    (path.parent.parent / "junk").mkdir(exist_ok=True)
    (root / "junk" / "result.json").write_text("{not json")
    code, out, err = llem("results", "list", str(root), "--json")
    assert code == 0
    rows = json.loads(out)  # stdout stays pure JSON; the damaged file is a warning on stderr
    assert "junk" in err and len(rows) == 1
    (row,) = rows
    assert row["path"] == str(path) and row["experiment_id"] == result.experiment_id
    assert row["energy_per_output_token_j"] == pytest.approx(result.energy_per_output_token_j)
    assert row["useful_flops"] == pytest.approx(result.compute.useful_flops.value)  # type: ignore[union-attr]
    assert row["warmup_mode"] == "fixed"
    empty = root / "empty"
    empty.mkdir(exist_ok=True)
    assert json.loads(llem("results", "list", str(empty), "--json")[1]) == []


def test_report_of_the_real_run_shows_energy_by_kind(run: tuple[ExperimentResult, Path]) -> None:
    _, path = run
    out = path.parent / "report.html"
    done = run_llem("report", str(path.parent), "-o", str(out))
    assert done.returncode == 0, done.stderr
    page = out.read_text()
    assert "energy by kind" in page and "RAM " in page and "estimated" in page
    assert "J/out tok (idle-adjusted)" in page and "useful FLOPs share" in page


def test_messages_with_brackets_print_intact(llem, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from llenergymeasure.cli import results_cmd

    def broken(*_: object, **__: object) -> None:
        raise ConfigError("install it: pip install 'llenergymeasure[report]' [bold]not a tag[/]")

    monkeypatch.setattr("llenergymeasure.results.collection.load_results", broken)
    code, _, err = llem("results", "list", "x")
    assert code == 2
    assert "error: install it: pip install 'llenergymeasure[report]' [bold]not a tag[/]" in err
    results_cmd.warn(["config value [1, 2] and [red]x[/red]"])
    assert "warning: config value [1, 2] and [red]x[/red]" in capsys.readouterr().err


def test_missing_matplotlib_message_keeps_its_brackets(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    _, path = run
    blocker = tmp_path / "block"
    (blocker / "matplotlib").mkdir(parents=True)
    (blocker / "matplotlib" / "__init__.py").write_text("raise ImportError('blocked for a test')\n")
    done = run_llem(
        "report", str(path.parent), "-o", str(tmp_path / "r.html"),
        PYTHONPATH=os.pathsep.join([str(blocker), str(ROOT / "src"), str(ROOT)]),
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "pip install 'llenergymeasure[report]'" in done.stderr
    assert "Traceback" not in done.stderr
