"""Quality through the real path: `llem run` (fp32 and torch-int8) -> result.json -> show,
compare, export and the report's energy-against-quality section."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from llenergymeasure import run_experiment
from llenergymeasure.results.collection import load_results
from llenergymeasure.results.io import load_result
from llenergymeasure.results.report import build_report
from tests.cli_helpers import run_llem

TEXT = "It is a tale told by an idiot, full of sound and fury, signifying nothing. " * 12


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("quality-e2e")
    patch = pytest.MonkeyPatch()
    cache = root / "quality-cache"
    patch.setattr("llenergymeasure.quality.evaluate._cache_dir", lambda: cache)
    text = root / "tale.txt"
    text.write_text(TEXT)
    base = {
        "model": "builtin:tiny-llama",
        "n_prompts": 4,
        "batch_size": 2,
        "max_output_tokens": 4,
        "baseline_sec": 0,
        "warmup": {"mode": "fixed", "n": 1},
        "output_dir": str(root / "results"),
        "quality": {
            "enabled": True,
            "source": "file",
            "path": str(text),
            "window": 32,
            "stride": 16,
            "max_tokens": 120,
            "block_tokens": 8,
            "bootstrap_samples": 100,
        },
    }

    run_experiment({**base, "name": "fp32"}, experiment_id="a-fp32")
    run_experiment({**base, "quantization": "torch-int8", "name": "int8"}, experiment_id="b-int8")
    patch.undo()
    return root / "results"


def test_result_json_holds_quality_and_the_precision_its_degradation(runs: Path) -> None:
    fp32 = load_result(runs / "a-fp32" / "result.json")
    int8 = load_result(runs / "b-int8" / "result.json")
    assert fp32.quality is not None and int8.quality is not None
    assert fp32.quality.is_reference and fp32.quality.perplexity_degradation == 0.0
    assert fp32.compute.precision.perplexity_degradation == 0.0
    q = int8.quality
    assert not q.is_reference and q.reference.dtype == "float32"
    # the reference was scored once, for the first run, and cached for the second
    assert not fp32.quality.reference.cached and q.reference.cached
    assert q.reference_perplexity == pytest.approx(fp32.quality.perplexity, rel=1e-12)
    assert int8.compute.precision.perplexity_degradation == q.perplexity_degradation
    assert q.perplexity / q.reference_perplexity - 1 == pytest.approx(q.perplexity_degradation)
    assert q.mean_kl_nats > 0 and q.top1_agreement < 1
    assert q.text.source == "file" and q.tokens_evaluated == 119
    # torch-int8: precision int8 and FLOPs counted (on the float model) at int8
    p = int8.compute.precision
    assert (p.weights, p.compute, p.quantization_method) == ("int8", "int8", "torch-dynamic-int8")
    assert int8.compute.flops.precision == "int8"
    assert int8.compute.flops.value == pytest.approx(fp32.compute.flops.value, rel=1e-9)
    # quality is outside the energy window: the inference window is unchanged by it
    assert int8.inference.inference_time_sec < q.eval_time_sec + int8.inference.inference_time_sec


def test_show_compare_export_and_report_read_the_quality(runs: Path, tmp_path: Path) -> None:
    show = run_llem("results", "show", str(runs / "b-int8" / "result.json"), COLUMNS="250")
    assert show.returncode == 0, show.stderr
    assert "perplexity degradation" in show.stdout and "top-1 agreement" in show.stdout
    assert "reference float32 (cached)" in show.stdout

    compare = run_llem(
        "results",
        "compare",
        str(runs / "a-fp32" / "result.json"),
        str(runs / "b-int8" / "result.json"),
        COLUMNS="250",
    )
    assert compare.returncode == 0, compare.stderr
    assert "perplexity degradation" in compare.stdout and "mean KL per token" in compare.stdout

    out = tmp_path / "rows.csv"
    export = run_llem("results", "export", str(runs), "-o", str(out))
    assert export.returncode == 0, export.stderr
    rows = {r["experiment_id"]: r for r in csv.DictReader(out.open())}
    int8 = load_result(runs / "b-int8" / "result.json").quality
    assert float(rows["b-int8"]["perplexity_degradation"]) == pytest.approx(
        int8.perplexity_degradation
    )
    assert float(rows["b-int8"]["mean_kl_nats_ci_high"]) == pytest.approx(int8.mean_kl_ci.high)
    assert rows["a-fp32"]["quality_reference_dtype"] == "float32"

    report = build_report(load_results(runs))
    assert 'id="energy-quality"' in report.html
    assert "J per output token against perplexity degradation" in report.html
    assert "Pareto" in report.html
