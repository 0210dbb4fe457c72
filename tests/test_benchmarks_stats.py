"""The statistics behind every benchmark figure, and README's table generated from the files."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from benchmarks import update_readme
from benchmarks._paired import RatioEstimate, ratio_interval, run_paired, save_estimates
from hypothesis import given
from hypothesis import strategies as st

from tests.cli_helpers import source_env

positive = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False)


def test_constant_ratio_has_a_zero_width_interval() -> None:
    pairs = [(2.0 * b, b) for b in (1.0, 5.0, 7.5, 100.0)]
    centre, low, high = ratio_interval(pairs)
    assert centre == pytest.approx(2.0) and low == pytest.approx(2.0) and high == pytest.approx(2.0)


def test_ratio_is_the_geometric_mean_so_reciprocal_ratios_cancel() -> None:
    centre, low, high = ratio_interval([(0.9, 1.0), (1.0, 0.9)])
    assert centre == pytest.approx(1.0)
    assert low < 1.0 < high


def test_one_pair_has_no_interval() -> None:
    centre, low, high = ratio_interval([(3.0, 2.0)])
    assert centre == pytest.approx(1.5) and math.isnan(low) and math.isnan(high)


@given(st.lists(st.tuples(positive, positive), min_size=2, max_size=30), positive)
def test_interval_holds_the_ratio_and_scales_with_the_measured_side(
    pairs: list[tuple[float, float]], k: float
) -> None:
    centre, low, high = ratio_interval(pairs)
    assert low <= centre * (1 + 1e-9) and centre <= high * (1 + 1e-9)
    ratios = [a / b for a, b in pairs]
    assert min(ratios) * (1 - 1e-9) <= low and high <= max(ratios) * (1 + 1e-9)
    scaled = ratio_interval([(a * k, b) for a, b in pairs])
    assert scaled[0] == pytest.approx(centre * k, rel=1e-6)
    assert scaled[1] == pytest.approx(low * k, rel=1e-6)
    assert scaled[2] == pytest.approx(high * k, rel=1e-6)


def test_rounds_stop_when_the_interval_is_within_target() -> None:
    estimate = run_paired("steady", lambda i: (0.99 * (10 + i), 10 + i), verbose=False)
    assert estimate.stopped_by == "precision" and estimate.rounds == 6
    assert estimate.ratio == pytest.approx(0.99) and estimate.half_width < 0.02


def test_rounds_stop_at_the_time_cap_and_say_so() -> None:
    noisy = [(1.3, 1.0), (1.0, 1.3)]
    estimate = run_paired("noisy", lambda i: noisy[i % 2], max_sec=0.0, min_rounds=2, verbose=False)
    assert estimate.stopped_by == "time cap" and estimate.rounds == 2  # the minimum, cap or not
    assert "time cap" in estimate.line()
    capped = run_paired("noisy", lambda i: noisy[i % 2], max_rounds=8, verbose=False)
    assert capped.stopped_by == "time cap" and capped.rounds == 8 and capped.half_width > 0.02


def test_readme_table_is_generated_from_saved_figures(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import benchmarks._paired as paired

    monkeypatch.setattr(paired, "RESULTS_DIR", tmp_path)
    estimate = RatioEstimate("a/b", 0.995, 0.985, 1.004, 12, "precision", 0.02, 3.0)
    save_estimates("demo", "python benchmarks/demo.py", [estimate], what="demo figure")
    saved = json.loads((tmp_path / "demo.json").read_text())
    assert saved["estimates"][0]["half_width"] == pytest.approx((1.004 - 0.985) / 2 / 0.995)
    text = update_readme.table(tmp_path)
    assert "| `python benchmarks/demo.py` | demo figure | a/b: **0.995** [0.985-1.004], " in text
    assert "12 rounds (within +-2%)" in text
    readme = f"intro\n{update_readme.BEGIN}\nold\n{update_readme.END}\nafter\n"
    once = update_readme.rewrite(readme, text)
    assert once == update_readme.rewrite(once, text) and "old" not in once and "after" in once


def test_readme_benchmark_table_matches_the_saved_figures() -> None:
    readme = update_readme.README.read_text(encoding="utf-8")
    assert readme == update_readme.rewrite(readme, update_readme.table()), (
        "README's benchmark table was edited by hand: run python benchmarks/update_readme.py"
    )


def test_help_imports_neither_rich_nor_torch() -> None:
    probe = (
        "import sys\n"
        "from llenergymeasure.cli.main import app\n"
        "try:\n    app(args=['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'rich', 'markdown_it', 'pygments', 'torch', 'pydantic', 'numpy'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=source_env(), check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_readme_commands_do_not_depend_on_where_the_checkout_lives() -> None:
    from benchmarks.update_readme import _relative

    wanted = "PYTHONPATH=src python benchmarks/quality_speed.py --threads 1 --save"
    for root in ("/work/main", "/tmp/fresh-venv-check.R8AwRy/project"):
        saved = f"PYTHONPATH=src python {root}/benchmarks/quality_speed.py --threads 1 --save"
        assert _relative(saved) == wanted
    assert _relative(wanted) == wanted
