"""`llem results ...` and `llem report` from the command line: output, warnings, exit codes."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from llenergymeasure.cli.console import console, error_console
from llenergymeasure.cli.main import main
from tests import factories as f
from tests.cli_helpers import ROOT, run_llem, source_env


@pytest.fixture
def study(tmp_path: Path) -> Path:
    root = tmp_path / "study"
    f.write_study(root, batch_sizes=(2, 8), cycles=2, throttled_batch=8)
    bad = root / "zz-damaged" / "result.json"
    bad.parent.mkdir()
    bad.write_text('{"schema_version": "0.3", "experiment_id": "old"}')
    return root


@pytest.fixture
def llem(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run `llem ARGS` in this process; returns (exit code, stdout, stderr)."""
    monkeypatch.setattr(console.get(), "_width", 200)  # type: ignore[attr-defined]
    monkeypatch.setattr(error_console.get(), "_width", 200)  # type: ignore[attr-defined]

    def run(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as info:
            main(list(args))
        out, err = capsys.readouterr()
        return int(info.value.code or 0), out, err

    return run


def test_list_warns_about_the_damaged_file_and_lists_the_rest(study: Path) -> None:
    done = run_llem("results", "list", str(study), COLUMNS="200")
    assert done.returncode == 0, done.stderr
    damaged = study / "zz-damaged" / "result.json"
    assert f"warning: skipped {damaged}: has schema_version 0.3" in done.stderr
    ids = {p.parent.name for p in study.rglob("result.json") if p.parent.name != "zz-damaged"}
    assert len(ids) == 4
    for experiment_id in ids:
        assert experiment_id in done.stdout
    assert "yes: thermal" in done.stdout and "4 result(s)" in done.stdout
    assert "Traceback" not in done.stderr


def test_report_command_writes_the_page_and_warns(study: Path, tmp_path: Path) -> None:
    out = tmp_path / "r" / "report.html"
    out.parent.mkdir()  # a file's folder must exist (a missing one is a one-line error)
    done = run_llem("report", str(study), "-o", str(out), "--max-telemetry", "1")
    assert done.returncode == 0, done.stderr
    assert "zz-damaged/result.json" in done.stderr
    assert f"wrote {out}: 4 result(s), 2 configuration(s)" in done.stdout
    html = out.read_text()
    assert 'id="warnings"' in html and "zz-damaged/result.json" in html
    assert html.count("<img") == 4  # energy/throughput, batch size, 1 telemetry, warmup


def test_user_mistakes_are_one_line_and_exit_2(study: Path, tmp_path: Path, llem) -> None:  # type: ignore[no-untyped-def]
    for args, message in [
        (("results", "show", "nope", "--dir", str(study)), "no result with experiment id 'nope'"),
        (("results", "show", "x", "--dir", str(tmp_path / "no")), "does not exist"),
        (("results", "compare", "only-one"), "at least two results"),
        (("results", "export", str(tmp_path / "missing")), "no such file or directory"),
        (("report", str(tmp_path / "missing")), "no such file or directory"),
    ]:
        code, _, err = llem(*args)
        assert code == 2, args
        assert message in err and err.count("error:") == 1, err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "nothing to export" in llem("results", "export", str(empty))[2]
    code, _, err = llem("results", "list", str(empty))
    assert code == 0 and "no readable result.json" in err


def test_show_by_id_and_by_path(study: Path, llem) -> None:  # type: ignore[no-untyped-def]
    path = next(p for p in study.rglob("result.json") if "damaged" not in str(p))
    experiment_id = path.parent.name
    code, out, err = llem("results", "show", experiment_id, "--dir", str(study))
    assert code == 0 and "schema_version 0.3" in err
    for heading in ("experiment", "energy", "latency (ms)", "compute", "thermal", "warmup"):
        assert heading in out
    assert "nvml_energy_counter+rapl (medium confidence)" in out
    assert "architecture (medium confidence)" in out
    code, by_path, err = llem("results", "show", str(path.parent))
    assert code == 0 and err == "" and experiment_id in by_path


def test_compare_prints_ratios(study: Path, llem) -> None:  # type: ignore[no-untyped-def]
    ids = sorted({p.parent.name for p in study.rglob("result.json") if "damaged" not in str(p)})
    code, out, _ = llem("results", "compare", ids[0], ids[-1], "--dir", str(study))
    assert code == 0
    assert "ratios to the first result" in out
    assert "J per output token" in out and "(x" in out


def test_export_formats_and_suffix_inference(study: Path, tmp_path: Path, llem) -> None:  # type: ignore[no-untyped-def]
    code, out, err = llem("results", "export", str(study), "-o", str(tmp_path / "a.parquet"))
    assert code == 0 and "(4 row(s), parquet)" in out and "schema_version 0.3" in err
    assert pq.read_table(tmp_path / "a.parquet").num_rows == 4
    target = tmp_path / "b.txt"
    code, out, _ = llem("results", "export", str(study), "--format", "csv", "-o", str(target))
    assert code == 0
    with target.open(newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 4


def test_results_commands_do_not_import_matplotlib_or_torch(study: Path) -> None:
    code = (
        "import sys; from llenergymeasure.cli.main import main\n"
        "try: main(['results', 'list', sys.argv[1]])\n"
        "except SystemExit: pass\n"
        "heavy = [m for m in ('torch', 'matplotlib') if m in sys.modules]; assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code, str(study)], check=True, cwd=ROOT,
                   env=source_env(), capture_output=True)  # fmt: skip
