"""The CLI shell: light imports, `llem schema`, the checked-in schema, error handling."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llenergymeasure.cli.main import main
from llenergymeasure.cli.schema_cmd import schema_text
from tests.cli_helpers import run_llem, source_env

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_FILE = ROOT / "schemas" / "experiment_result.schema.json"


def test_import_and_help_do_not_import_torch() -> None:
    code = (
        "import sys; import llenergymeasure; from llenergymeasure.cli.main import app;"
        "from typer.testing import CliRunner; r = CliRunner().invoke(app, ['--help']);"
        "assert r.exit_code == 0, r.output; heavy = [m for m in ('torch', 'transformers',"
        " 'matplotlib', 'pandas') if m in sys.modules]; assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=source_env())


def test_checked_in_schema_is_current() -> None:
    assert SCHEMA_FILE.read_text() == schema_text(), (
        "schemas/experiment_result.schema.json is stale: run "
        "`llem schema -o schemas/experiment_result.schema.json`"
    )


def test_llem_schema_prints_experiment_schema(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["schema"])
    assert info.value.code == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "ExperimentResult"
    for field in (
        "schema_version",
        "normalised",
        "thermal",
        "warmup",
        "process_results",
        "energy_per_output_token_j",
    ):
        assert field in schema["properties"]


def test_llem_schema_process_kind(tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    with pytest.raises(SystemExit):
        main(["schema", "--kind", "process", "-o", str(out)])
    assert json.loads(out.read_text())["title"] == "RawProcessResult"


def test_bad_flag_exits_2_without_traceback() -> None:
    proc = run_llem("schema", "--kind", "nope")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "nope" in proc.stderr
