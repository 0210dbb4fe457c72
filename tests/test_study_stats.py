"""Per-configuration statistics (issue 11, items 3 and 4): no spread from one run, and one
function behind the study summary and the report, with one rule for runs without tokens."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from llenergymeasure.cli.study_cmd import no_output_warnings, summary_table
from llenergymeasure.domain.stats import confidence_interval, mean, stdev
from llenergymeasure.domain.study import (
    NO_OUTPUT_RULE,
    ConfigurationStats,
    MetricSummary,
    RunRecord,
    StudyResult,
)
from llenergymeasure.results.collection import LoadedResult, load_results
from llenergymeasure.results.groups import group_by_config
from llenergymeasure.results.io import save_result
from llenergymeasure.results.report import build_report
from llenergymeasure.results.views import NO_SPREAD, spread_texts
from llenergymeasure.study.summary import summarise
from tests import factories as f

values = st.lists(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False), max_size=12
)


@given(values)
def test_spread_and_interval_exist_only_from_two_values(xs: list[float]) -> None:
    s = MetricSummary.of(xs)
    assert s.n == len(xs)
    if len(xs) < 2:
        assert (s.std, s.ci95_low, s.ci95_high, s.half_width) == (None, None, None, None)
        assert s.mean == (xs[0] if xs else None)
    else:
        assert s.mean == pytest.approx(mean(xs)) and s.std == pytest.approx(stdev(xs))
        assert (s.ci95_low, s.ci95_high) == confidence_interval(xs, 0.95)
    again = MetricSummary.model_validate_json(s.model_dump_json())
    assert again == s


def test_one_value_has_no_std_and_no_interval_in_json() -> None:
    data = json.loads(MetricSummary.of([2.5]).model_dump_json())
    assert data == {"n": 1, "mean": 2.5, "std": None, "ci95_low": None, "ci95_high": None}


def test_a_study_summary_of_schema_1_0_still_loads() -> None:
    old = {"n": 1, "mean": 2.5, "std": 0.0, "ci95_low": 2.5, "ci95_high": 2.5}
    assert MetricSummary.model_validate(old) == MetricSummary.of([2.5])
    empty = {"n": 0, "mean": 0.0, "std": 0.0, "ci95_low": 0.0, "ci95_high": 0.0}
    assert MetricSummary.model_validate(empty).mean is None


def test_two_values_require_the_spread() -> None:
    with pytest.raises(ValueError, match="required"):
        MetricSummary(n=2, mean=1.0)


def test_texts_say_n_a_for_one_run_and_never_plus_minus_zero() -> None:
    assert spread_texts(MetricSummary.of([0.25])) == (
        "0.2500",
        NO_SPREAD,
        NO_SPREAD,
        "0.2500 (n/a (1 run))",
    )
    assert spread_texts(MetricSummary.of([])) == ("-", "-", "-", "-")
    mean_text, std_text, interval, both = spread_texts(MetricSummary.of([1.0, 2.0, 3.0]))
    assert (mean_text, std_text) == ("2.000", "1.000") and both.startswith("2.000 ± ")
    assert interval.startswith("[") and interval.endswith("]")


def _records(results: list, config_index: int = 0) -> list[RunRecord]:  # type: ignore[type-arg]
    return [
        RunRecord(
            run_id=r.experiment_id,
            config_index=config_index,
            cycle=i,
            config_hash=r.config_hash,
            status="completed",
        )
        for i, r in enumerate(results)
    ]


def _study(results: list) -> StudyResult:  # type: ignore[type-arg]
    records = _records(results)
    return StudyResult(
        name="s",
        study_hash="h",
        directory="/tmp/s",
        runs=records,
        summaries=summarise(records, {r.experiment_id: r for r in results}),
    )


def _render(table: object) -> str:
    console = Console(width=250, record=True, markup=False)
    console.print(table)
    return console.export_text()


def test_cli_summary_of_one_cycle_says_n_a_not_plus_minus_zero() -> None:
    text = _render(summary_table(_study([f.sweep_result(4, 0)])))
    assert NO_SPREAD in text
    assert "± 0" not in text and not re.search(r"\[[-\d]", text)  # no [mean, mean]


def test_report_of_one_run_per_configuration_says_n_a(tmp_path: Path) -> None:
    save_result(f.sweep_result(4, 0), tmp_path / "a" / "result.json")
    report = build_report(load_results(tmp_path))
    table = report.html.split('id="energy-throughput"', 1)[1].split("</table>", 1)[0]
    assert f'<td class="num">{NO_SPREAD}</td>' in table  # the 95% CI and tok/s std cells
    assert "± 0" not in table


def _zero_output(cycle: int):  # type: ignore[no-untyped-def]
    """A cycle of batch 4 that generated nothing (its J per token reads 0.0)."""
    base = f.sweep_result(4, cycle)
    inference = f.inference(output_tokens=0, ttft=[])
    proc = base.process_results[0].model_copy(update={"inference": inference})
    return base.model_copy(
        update={"inference": inference, "process_results": [proc], "experiment_id": "empty"}
    )


def test_study_summary_and_report_agree_on_a_run_without_tokens() -> None:
    results = [f.sweep_result(4, 0), f.sweep_result(4, 1), _zero_output(2)]
    assert results[2].energy_per_output_token_j == 0.0
    (summary,) = _study(results).summaries
    (group,) = group_by_config(LoadedResult(Path(f"/r/{i}"), r) for i, r in enumerate(results))
    producing = [r.energy_per_output_token_j for r in results[:2]]
    for stats in (summary, group.stats):
        assert stats.energy_per_output_token_j.n == 2
        assert stats.energy_per_output_token_j.mean == pytest.approx(sum(producing) / 2)
        assert stats.ttft_p50_ms.n == 2  # no tokens, no first token: left out
        assert stats.tokens_per_second.n == 3  # 0 tokens/s is what it achieved
        assert stats.without_output_tokens == 1
    assert (
        ConfigurationStats.model_validate(
            summary.model_dump(include=set(ConfigurationStats.model_fields))
        )
        == group.stats
    )
    (line,) = no_output_warnings(_study(results))
    assert "1 run(s) generated no tokens" in line and NO_OUTPUT_RULE in line


@given(st.lists(st.integers(0, 3), min_size=1, max_size=6))
def test_one_function_gives_the_study_and_the_report_the_same_numbers(cycles: list[int]) -> None:
    results = [
        _zero_output(i) if kind == 0 else f.sweep_result(4, i) for i, kind in enumerate(cycles)
    ]
    results = [r.model_copy(update={"experiment_id": f"run{i}"}) for i, r in enumerate(results)]
    (summary,) = _study(results).summaries
    (group,) = group_by_config(LoadedResult(Path(f"/r/{i}"), r) for i, r in enumerate(results))
    for name in ConfigurationStats.model_fields:
        assert getattr(summary, name) == getattr(group.stats, name), name
    e = summary.energy_per_output_token_j
    assert e.n == sum(1 for k in cycles if k != 0)
    assert e.std is None or math.isfinite(e.std)
