"""Carbon and cost through the real path: a run of the tiny builtin model -> result.json ->
`llem results show` / `compare` / `export` / `llem report`, recomputed for another region."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from llenergymeasure import run_experiment
from llenergymeasure.domain.results import ExperimentResult
from llenergymeasure.results.io import load_result
from llenergymeasure.results.views import fmt
from tests.cli_helpers import run_llem

FRANCE_G_PER_KWH = 56.039  # CodeCarbon 3.3.2 global_energy_mix.json, and llem's table
GERMANY_G_PER_KWH = 380.95


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ExperimentResult]:
    out = tmp_path_factory.mktemp("carbon") / "results"
    result = run_experiment(
        {
            "model": "builtin:tiny-llama",
            "n_prompts": 4,
            "batch_size": 4,
            "max_output_tokens": 8,
            "baseline_sec": 0,
            "warmup": {"mode": "fixed", "n": 1},
            "output_dir": str(out),
            "carbon": {"region": "DE", "pue": 1.2},
            "cost": {"usd_per_gpu_hour": 2.5, "usd_per_node_hour": 1.0},
        }
    )
    return out, result


def test_run_stores_carbon_and_cost_in_result_json(measured: tuple[Path, ExperimentResult]) -> None:
    out, result = measured
    stored = load_result(out / result.experiment_id)
    assert stored == result
    carbon, cost = stored.carbon, stored.cost
    assert carbon is not None and cost is not None
    energy_kwh = stored.energy.total_energy_j / 3.6e6
    assert carbon.co2e_g == pytest.approx(energy_kwh * 1.2 * GERMANY_G_PER_KWH)
    assert carbon.intensity.region == "DEU" and carbon.intensity.year == 2023
    assert carbon.confidence == "low"  # the CPU estimate meter here
    # CPU run: no GPU metered, so only the node is charged, over the window
    hours = stored.inference.inference_time_sec / 3600
    assert (cost.gpu_count, cost.node_count) == (0, 1)
    assert cost.cost_usd == pytest.approx(1.0 * hours)
    assert cost.cost_per_million_output_tokens_usd == pytest.approx(
        1.0 * hours / stored.inference.output_tokens * 1e6
    )


def _row(stdout: str, label: str) -> str:
    line = next(line for line in stdout.splitlines() if label in line)
    return re.sub(r"\s+", " ", line)


def test_results_show_prints_and_recomputes(measured: tuple[Path, ExperimentResult]) -> None:
    out, result = measured
    shown = run_llem("results", "show", result.experiment_id, "--dir", str(out), COLUMNS="250")
    assert shown.returncode == 0, shown.stderr
    assert result.carbon is not None
    assert fmt(result.carbon.co2e_per_output_token_g) in _row(shown.stdout, "gCO2e per output")
    assert "DEU (Germany)" in shown.stdout and "380.9" in shown.stdout
    assert result.cost is not None
    usd = fmt(result.cost.cost_per_million_output_tokens_usd)
    assert usd in _row(shown.stdout, "USD per million")

    france = run_llem(
        "results", "show", result.experiment_id, "--dir", str(out), "--region", "FR",
        COLUMNS="250",
    )  # fmt: skip
    assert france.returncode == 0, france.stderr
    hand = result.energy.total_energy_j / 3.6e6 * 1.2 * FRANCE_G_PER_KWH
    assert fmt(hand / result.inference.output_tokens) in _row(france.stdout, "gCO2e per output")
    assert fmt(hand) in _row(france.stdout, "gCO2e of the window")
    assert "FRA (France)" in france.stdout and "recomputed" in france.stdout
    assert usd in _row(france.stdout, "USD per million")  # cost untouched
    assert load_result(out / result.experiment_id) == result  # the file is not rewritten


def test_bad_recompute_flags_exit_2_with_one_line(measured: tuple[Path, ExperimentResult]) -> None:
    out, result = measured
    for flags, expected in (
        (["--region", "ZZ"], "carbon.region: 'ZZ' is not in"),
        (["--pue", "0.5"], "--pue: 0.5 is invalid"),
    ):
        done = run_llem("results", "show", result.experiment_id, "--dir", str(out), *flags)
        assert done.returncode == 2, done.stderr
        assert expected in done.stderr and "Traceback" not in done.stderr


def test_export_and_report_recompute(
    measured: tuple[Path, ExperimentResult], tmp_path: Path
) -> None:
    out, result = measured
    csv_path = tmp_path / "fr.csv"
    done = run_llem("results", "export", str(out), "-o", str(csv_path), "--region", "FR")
    assert done.returncode == 0, done.stderr
    (row,) = list(csv.DictReader(csv_path.read_text().splitlines()))
    hand = result.energy.total_energy_j / 3.6e6 * 1.2 * FRANCE_G_PER_KWH
    assert float(row["co2e_g"]) == pytest.approx(hand)
    assert row["carbon_region"] == "FRA" and row["carbon_intensity_year"] == "2023"
    assert float(row["total_energy_j"]) == result.energy.total_energy_j

    page = tmp_path / "report.html"
    done = run_llem("report", str(out), "-o", str(page))
    assert done.returncode == 0, done.stderr
    text = page.read_text()
    assert 'id="carbon-cost"' in text and "Carbon and cost per output token" in text
    assert result.carbon is not None and result.cost is not None
    assert fmt(result.carbon.co2e_per_output_token_g) in text
    assert fmt(result.cost.cost_per_million_output_tokens_usd) in text
    done = run_llem("report", str(out), "-o", str(page), "--intensity", "100")
    assert done.returncode == 0, done.stderr
    per_token = result.energy.total_energy_j / 3.6e6 * 1.2 * 100 / result.inference.output_tokens
    assert fmt(per_token) in page.read_text()

    compared = run_llem(
        "results", "compare", str(out / result.experiment_id), str(out / result.experiment_id),
        COLUMNS="250",
    )  # fmt: skip
    assert compared.returncode == 0, compared.stderr
    assert "gCO2e per output token" in compared.stdout and "USD per 1M" in compared.stdout


def test_unknown_region_fails_before_measuring(tmp_path: Path) -> None:
    from llenergymeasure.config.study import StudyConfig
    from llenergymeasure.errors import ConfigError
    from llenergymeasure.study.runner import run_study

    config = {"output_dir": str(tmp_path / "r"), "carbon": {"region": "ZZ"}}
    with pytest.raises(ConfigError, match="carbon.region: 'ZZ'"):
        run_experiment(config)
    study = StudyConfig.model_validate(
        {"base": {"n_prompts": 4}, "sweep": {"carbon.region": ["FR", "ZZ"]}}
    )
    with pytest.raises(ConfigError, match="carbon.region: 'ZZ'"):
        run_study(study, output_dir=tmp_path / "s")
    assert not (tmp_path / "r").exists() and not (tmp_path / "s").exists()


def test_run_summary_shows_carbon_and_cost(measured: tuple[Path, ExperimentResult]) -> None:
    from llenergymeasure.cli.run_cmd import summary_table

    _, result = measured
    table = summary_table(result)
    cells = {
        str(label): (value, how)
        for label, value, how in zip(
            table.columns[0].cells, table.columns[1].cells, table.columns[2].cells, strict=True
        )
    }
    assert result.carbon is not None and result.cost is not None
    value, how = cells["carbon per output token"]
    assert value == f"{result.carbon.co2e_per_output_token_g:.4g} gCO2e"
    assert "DEU: 380.9 gCO2e/kWh x PUE 1.2" in str(how)
    value, _ = cells["cost per 1M output tokens"]
    assert value == f"{result.cost.cost_per_million_output_tokens_usd:.4g} USD"
