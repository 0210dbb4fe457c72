"""Warmup (issue 11, items 12 and 18): a fixed warmup is not a failure, and a time limit
bounds warmup on a machine where latency never settles."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from llenergymeasure.config.experiment import ExperimentConfig, WarmupConfig
from llenergymeasure.domain.metrics import WarmupResult
from llenergymeasure.engines.base import BatchOutput
from llenergymeasure.measure.warmup import run_warmup
from llenergymeasure.results.collection import load_results
from llenergymeasure.results.io import save_result
from llenergymeasure.results.report import build_report, report_warnings
from llenergymeasure.results.views import list_table, show_tables
from tests import factories as f


class SlowClock:
    """A clock that moves only when a scripted request 'takes' its time."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def scripted(latencies_ms: Sequence[float], clock: SlowClock):  # type: ignore[no-untyped-def]
    """generate() test double: each request takes its scripted time on ``clock``."""
    it = iter(latencies_ms)

    def generate(batch: object) -> BatchOutput:
        ms = next(it)
        start = clock.now
        clock.now += ms / 1e3
        return BatchOutput([], start, clock.now, [clock.now])

    return generate


def test_time_limit_stops_a_warmup_that_never_settles_and_is_recorded() -> None:
    clock = SlowClock()
    jumpy = [400.0, 900.0] * 100  # a busy machine: CV never reaches 0.05
    config = WarmupConfig(max_prompts=50, max_sec=3.0)
    result = run_warmup(scripted(jumpy, clock), [[[1]]], config, clock=clock)
    # 400+900+400+900 = 2.6 s < 3 s, the 5th request starts at 2.6 s and ends at 3.0 s
    assert result.iterations_completed == 5 and result.stopped_by == "max_sec"
    assert result.max_sec == 3.0 and result.elapsed_sec == pytest.approx(3.0)
    assert not result.converged and result.mode == "cv"
    assert result.warning() == (
        f"warmup did not converge: CV {result.final_cv:.3f} > target 0.05 after 5 requests "
        "(time limit 3 s reached)"
    )


def test_count_limit_and_convergence_are_told_apart() -> None:
    clock = SlowClock()
    by_count = run_warmup(
        scripted([10.0, 20.0] * 30, clock), [[[1]]], WarmupConfig(max_prompts=12), clock=clock
    )
    assert (
        by_count.stopped_by == "max_prompts" and "(max_prompts 12 reached)" in by_count.describe()
    )
    steady = run_warmup(scripted([10.0] * 30, clock), [[[1]]], WarmupConfig(), clock=clock)
    assert steady.stopped_by == "converged" and steady.converged and steady.warning() is None
    assert steady.describe().startswith("converged: CV 0.000 <= target 0.05 after 5 requests")


def test_the_first_request_always_runs() -> None:
    clock = SlowClock()
    result = run_warmup(
        scripted([5000.0] * 3, clock), [[[1]]], WarmupConfig(max_sec=0.001), clock=clock
    )
    assert result.iterations_completed == 1 and result.stopped_by == "max_sec"


def test_fixed_warmup_says_fixed_and_warns_nothing() -> None:
    clock = SlowClock()
    result = run_warmup(
        scripted([10.0, 30.0] * 5, clock), [[[1]]], WarmupConfig(mode="fixed", n=6), clock=clock
    )
    # converged keeps the seed's meaning (CV <= target), whatever the mode
    assert result.mode == "fixed" and not result.converged and result.final_cv > 0.05
    assert result.describe() == f"fixed: 6 requests (CV {result.final_cv:.3f})"
    assert result.status == "fixed" and result.warning() is None
    short = run_warmup(
        scripted([2000.0] * 6, clock),
        [[[1]]],
        WarmupConfig(mode="fixed", n=6, max_sec=3.0),
        clock=clock,
    )
    assert short.iterations_completed == 2
    assert short.warning() == (
        "warmup ran fewer requests than asked: fixed: 2 requests (CV 0.000), "
        "time limit 3 s reached before n=6"
    )


def _fixed_result() -> object:
    warmup = WarmupResult(
        converged=False,
        final_cv=0.081,
        iterations_completed=5,
        target_cv=0.05,
        max_prompts=5,
        latencies_ms=[30.0, 12.0, 11.0, 13.5, 11.2],
        mode="fixed",
        max_sec=20.0,
        elapsed_sec=0.08,
        stopped_by="n",
    )
    proc = f.process_result(warmup=warmup)
    return f.experiment_result(process=proc)


def test_cli_views_and_report_say_fixed_not_did_not_converge(tmp_path: Path) -> None:
    from llenergymeasure.cli.run_cmd import summary_table
    from tests.test_study_stats import _render

    result = _fixed_result()
    save_result(result, tmp_path / "x" / "result.json")  # type: ignore[arg-type]
    found = load_results(tmp_path)
    summary = _render(summary_table(found.results[0]))
    assert "fixed: 5 requests (CV 0.081)" in summary and "not converged" not in summary
    (row,) = list_table(found.loaded).rows
    assert row[8] == "fixed"
    warmup = next(t for t in show_tables(found.loaded[0]) if t.title == "warmup")
    assert warmup.rows[0][1] == "fixed: 5 requests (CV 0.081)"
    assert warmup.rows[0][-1] == "n=5, 20.00 s"
    assert not any("converge" in w for w in report_warnings(found, []))
    page = build_report(found).html
    assert "did not converge" not in page and "ran a fixed number of requests" in page


def test_old_warmup_results_load_as_cv_mode() -> None:
    old = f.warmup().model_dump()
    for key in ("mode", "max_sec", "elapsed_sec", "stopped_by"):
        old.pop(key)
    loaded = WarmupResult.model_validate(old)
    assert loaded.mode == "cv" and loaded.max_sec is None and loaded.stopped_by is None


def test_default_time_limit_is_in_the_config_and_the_hash() -> None:
    config = ExperimentConfig()
    assert config.warmup.max_sec == 20.0
    assert ExperimentConfig(warmup={"max_sec": 5}).config_hash() != config.config_hash()
    assert ExperimentConfig(warmup={"max_sec": None}).warmup.max_sec is None
    with pytest.raises(ValueError, match="max_sec"):
        ExperimentConfig(warmup={"max_sec": 0})


def test_idle_openmp_threads_sleep_unless_the_user_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from llenergymeasure.measure.environment import prefer_passive_omp_wait

    monkeypatch.delitem(sys.modules, "torch", raising=False)  # as in a fresh `llem` process
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    prefer_passive_omp_wait()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    prefer_passive_omp_wait()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
