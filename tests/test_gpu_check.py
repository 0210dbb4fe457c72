"""The GPU check (benchmarks/gpu_check.py): its maths, its table, and its dry run end to end.

The dry run plays the whole check through the wrapper (benchmarks/gpu_check.sh) on this CPU
against a fake H200 (tests/fakes/gpu_process.py: power readings 0.3 s late, the energy counter
updated every 0.1 s) and a fake nvidia-smi playing the same trace, so the check cannot rot
between the rare sessions that have a GPU.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.cli_helpers import ROOT, source_env
from tests.fakes.fake_nvidia_smi import smi_timestamp
from tests.fakes.gpu_process import read_mirror

sys.path.insert(0, str(ROOT / "benchmarks"))

import _gpu_analysis as gi
from _gpu_summary import Summary, fmt, pct

# ---- analysis maths -----------------------------------------------------------------------------

times = st.lists(st.floats(0.001, 1.0), min_size=2, max_size=40).map(
    lambda steps: [math.fsum(steps[: i + 1]) for i in range(len(steps))]
)


@given(times, st.floats(1.0, 1000.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_integral_of_constant_power_is_power_times_span(
    ts: list[float], watts: float, a: float, b: float
) -> None:
    lo, hi = sorted((a, b))
    t0 = ts[0] + lo * (ts[-1] - ts[0])
    t1 = ts[0] + hi * (ts[-1] - ts[0])
    got = gi.integrate_clipped([(t, watts) for t in ts], t0, t1)
    if t1 <= t0:
        assert got is None
    else:
        assert got == pytest.approx(watts * (t1 - t0), rel=1e-9, abs=1e-9)


@given(times, st.floats(-100.0, 100.0), st.floats(100.0, 500.0), st.floats(0.05, 0.95))
def test_integral_of_linear_power_is_exact_and_additive(
    ts: list[float], slope: float, offset: float, split: float
) -> None:
    samples = [(t, offset + slope * t) for t in ts]
    t0, t1 = ts[0], ts[-1]
    exact = offset * (t1 - t0) + slope * (t1**2 - t0**2) / 2
    assert gi.integrate_clipped(samples, t0, t1) == pytest.approx(exact, rel=1e-9, abs=1e-6)
    mid = t0 + split * (t1 - t0)
    parts = gi.integrate_clipped(samples, t0, mid), gi.integrate_clipped(samples, mid, t1)
    if None not in parts:
        assert parts[0] + parts[1] == pytest.approx(exact, rel=1e-9, abs=1e-6)


def test_integral_needs_samples_covering_both_edges() -> None:
    samples = [(1.0, 100.0), (2.0, 100.0)]
    assert gi.integrate_clipped(samples, 0.5, 2.0) is None
    assert gi.integrate_clipped(samples, 1.0, 2.5) is None
    assert gi.integrate_clipped(samples[:1], 1.0, 1.0) is None


@given(st.floats(0.02, 0.2), st.floats(50.0, 700.0), st.floats(0.001, 0.01))
def test_counter_update_period_and_power_from_a_stepping_counter(
    update_sec: float, watts: float, poll_sec: float
) -> None:
    """A counter that moves every ``update_sec`` at constant power, polled every ``poll_sec``."""
    n = int(3.0 / poll_sec)
    polls = [i * poll_sec for i in range(n)]
    counter = [math.floor(t / update_sec) * update_sec * watts * 1000.0 for t in polls]
    periods = gi.update_periods(gi.counter_updates(polls, counter))
    assert len(periods) >= 3
    for p in periods:
        assert abs(p - update_sec) <= poll_sec + 1e-9
    for _, w in gi.counter_power(polls, counter):
        assert w == pytest.approx(watts, rel=2 * poll_sec / update_sec + 1e-9)


@given(st.floats(0.0, 1.0), st.floats(0.005, 0.05))
def test_step_delay_finds_a_late_step(lag: float, every: float) -> None:
    edge = 2.0
    ticks = [i * every for i in range(int(5 / every))]
    samples = [(t, 100.0 if t < edge + lag else 400.0) for t in ticks]
    delay = gi.step_delay(samples, edge, (1.0, edge), (4.0, 5.0))
    assert delay is not None and lag - 1e-9 <= delay <= lag + every + 1e-9
    falling = [(t, 500.0 - p) for t, p in samples]
    assert gi.step_delay(falling, edge, (1.0, edge), (4.0, 5.0)) == pytest.approx(delay)


def test_step_delay_is_none_without_a_step() -> None:
    flat = [(i * 0.1, 200.0) for i in range(50)]
    assert gi.step_delay(flat, 2.0, (1.0, 2.0), (3.0, 4.0)) is None


def test_nvidia_smi_lines_parse_back_to_the_time_they_were_printed() -> None:
    wall = 1_790_000_000.123
    parsed = gi.parse_smi_line(f"{smi_timestamp(wall)}, 123.45")
    assert parsed is not None and parsed[0] == pytest.approx(wall, abs=1e-3)
    assert parsed[1] == 123.45
    assert gi.parse_smi_line("timestamp, power.draw [W]") is None
    assert gi.parse_smi_line("2026/11/29 10:00:00.000, [N/A]") is None


# ---- the summary table --------------------------------------------------------------------------


@given(
    prefill=st.floats(0.0, 2.0),
    step=st.floats(1e-4, 0.1),
    n_short=st.integers(1, 16),
    extra=st.integers(1, 64),
    new_tokens=st.integers(1, 512),
)
def test_batch_seconds_separates_prefill_from_decode_steps(
    prefill: float, step: float, n_short: int, extra: int, new_tokens: int
) -> None:
    import _gpu_runs

    n_long = n_short + extra
    got = _gpu_runs.batch_seconds(
        prefill + n_short * step, n_short, prefill + n_long * step, n_long, new_tokens
    )
    assert got == pytest.approx(prefill + new_tokens * step, rel=1e-6, abs=1e-9)


def test_batch_seconds_falls_back_to_scaling_when_noise_makes_a_step_free() -> None:
    import _gpu_runs

    assert _gpu_runs.batch_seconds(1.0, 8, 0.9, 32, 128) == pytest.approx(0.9 / 32 * 128)


def test_throttle_text_names_causes_and_share_of_the_window() -> None:
    from _gpu_check_runs import _throttle_text

    throttle = {
        "throttle_duration_sec": 3.1,
        "throttle_intervals": [
            {"start_sec": 2.9, "end_sec": 3.2, "cause": "sw_power_cap"},
            {"start_sec": 7.1, "end_sec": 7.3, "cause": "sw_power_cap"},
        ],
    }
    assert _throttle_text(throttle, 27.0) == "throttled: sw_power_cap 3.1 s of 27 s (11%), 2 spells"
    assert _throttle_text(None, 27.0) == "throttled"


def test_summary_table_wraps_counts_and_refuses_unknown_status(tmp_path: Path) -> None:
    summary = Summary()
    summary.add("2 instruments", "nvml_power_polling vs counter", "1.0 J (+2.0%)", "5%", "ok")
    summary.add("3 runs", "llem run bf16-bs8", "x " * 80 + "a | b", "", "FAIL")
    text = summary.table()
    lines = text.splitlines()
    assert lines[0] == "GPU CHECK SUMMARY" and lines[-1] == "1 ok, 1 FAIL"
    assert max(len(line) for line in lines) < 190
    assert summary.failed()
    summary.write(tmp_path)
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["counts"]["FAIL"] == 1 and saved["rows"][0]["status"] == "ok"
    markdown = (tmp_path / "summary.md").read_text()
    assert "| 3 runs | llem run bf16-bs8 |" in markdown and "a \\| b |  | FAIL |" in markdown
    with pytest.raises(ValueError, match="status 'great'"):
        summary.add("x", "y", "z", "", "great")
    assert fmt(None) == "n/a" and fmt(0.000123, "J", 2) == "0.000123 J" and fmt(12.345) == "12.3"
    assert pct(0.0123, signed=True) == "+1.2%" and pct(None) == "n/a"


# ---- the dry run, end to end --------------------------------------------------------------------


@pytest.mark.slow
def test_dry_run_through_the_wrapper(tmp_path: Path) -> None:
    results, returned = tmp_path / "results", tmp_path / "returned"
    returned.mkdir()
    env = source_env(
        GPU_CHECK_OUT=str(results),
        OUT=str(returned),
        GPU_BUNDLE=str(tmp_path / "no-bundle"),
        PYTHON=sys.executable,
    )
    proc = subprocess.run(
        # a budget far above the ~1 min a free CI machine needs: a loaded one still finishes
        ["bash", "benchmarks/gpu_check.sh", "--dry-run", "--budget-sec", "1500"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    rows = json.loads((results / "summary.json").read_text())["rows"]
    fails = [r for r in rows if r["status"] == "FAIL"]
    # Issue 11's telemetry columns are one definition now: the report reads every run's file,
    # so any failure is a broken check.
    assert not fails, fails
    assert proc.returncode == (1 if fails else 0), proc.stderr[-2000:]
    # the table is printed last
    out_lines = [line for line in proc.stdout.splitlines() if line.strip()]
    table_at = out_lines.index("GPU CHECK SUMMARY")
    assert out_lines[-1].startswith(f"{sum(r['status'] == 'ok' for r in rows)} ok")
    assert out_lines[table_at + 1].split() == ["part", "check", "value", "expected", "status"]
    by_check = {r["check"]: r for r in rows}

    # 1. environment, through the fake NVML
    assert by_check["GPU (NVML)"]["value"] == "NVIDIA H200"
    assert by_check["llem doctor: auto instruments"]["status"] == "ok"

    # 2. instruments: the check measures what the fake was scripted to do
    figures = json.loads((results / "instruments.json").read_text())
    assert 0.09 <= figures["counter_update_median_sec"] <= 0.12
    assert 0.25 <= figures["power_rise_delay_sec"] <= 0.40
    assert 0.25 <= figures["power_fall_delay_sec"] <= 0.40
    assert figures["counter_rise_delay_sec"] <= 0.25
    assert figures["idle_power_w"] == 90.0 and figures["busy_power_w"] == 600.0
    t0, t1 = figures["window_monotonic_sec"]
    exact = _trace_energy(read_mirror(results / "fake_power_trace.txt"), t0, t1)
    counter = figures["energies_j"]["nvml_energy_counter"]
    assert abs(counter - exact) <= 600.0 * 0.1 + 1e-6  # at most one counter update's worth
    for name in ("nvml_power_polling", "nvidia_smi"):
        assert abs(figures["energy_vs_counter"][name]) < 0.15, name

    # the telemetry thread's share of a core, over the fake NVML here
    shares = json.loads((results / "telemetry_thread.json").read_text())["shares"]
    assert len(shares) == 5 and all(0 < s < 0.5 for s in shares)
    assert "telemetry thread CPU at 10 Hz" in " ".join(by_check)

    # 3. runs: 2 batch sizes x 2 dtypes, each a result read back, then one report
    run_rows = [r for r in rows if r["check"].startswith("llem run ")]
    assert [r["check"] for r in run_rows] == [
        "llem run fp32-bs2",
        "llem run fp32-bs4",
        "llem run bf16-bs2",
        "llem run bf16-bs4",
    ]
    assert all(r["status"] in ("ok", "warn") for r in run_rows), run_rows
    saved_runs = json.loads((results / "runs.json").read_text())
    for run in saved_runs:
        assert run["gpu_methods"] == ["nvml_energy_counter"]
        assert run["telemetry_rows"] > 0
        assert run["record"]["output_tokens"] == run["record"]["num_requests"] * 8
        if run["window_sec"] >= 1.0:  # a 0.1 s window holds one or two 100 ms samples
            assert run["telemetry_gpu_j"] == pytest.approx(run["gpu_energy_j"], rel=0.1)
    assert by_check["llem report runs/"]["status"] == "ok"
    assert (results / "report.html").stat().st_size > 10_000
    assert len((results / "runs.md").read_text().splitlines()) == 2 + 4

    # 4. harness vs bare: paired figures with intervals, the default harness first
    harness = json.loads((results / "harness_vs_bare.json").read_text())
    estimates = harness["estimates"]
    assert estimates[0]["name"] == "harness/bare [full]"
    for e in estimates:
        assert e["rounds"] >= 6 and len(e["pairs"]) == e["rounds"]
        assert 0 < e["low"] <= e["ratio"] <= e["high"]
        assert e["stopped_by"] in ("precision", "time cap")
    assert by_check["harness/bare tok/s (fp32 bs2, one batch per pair)"]["value"].startswith(
        f"{estimates[0]['ratio']:.3f} [95% CI"
    )

    # 5. one folder; the summary, runs table, log and an archive copied to $OUT
    assert {p.name for p in returned.iterdir()} == {
        "summary.md",
        "runs.md",
        "gpu_check.log",
        "gpu-check.tar.gz",
    }
    assert os.path.getsize(returned / "gpu-check.tar.gz") > 1000


def _trace_energy(points: list[tuple[float, float]], t0: float, t1: float) -> float:
    """Exact energy of a piecewise-constant trace over [t0, t1]."""
    total = 0.0
    for i, (start, watts) in enumerate(points):
        end = points[i + 1][0] if i + 1 < len(points) else math.inf
        lo, hi = max(start, t0), min(end, t1)
        if hi > lo:
            total += watts * (hi - lo)
    return total


def test_the_real_check_refuses_a_machine_without_cuda(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    proc = subprocess.run(
        [sys.executable, "benchmarks/gpu_check.py", "--out", str(tmp_path / "out")],
        cwd=ROOT,
        env=source_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "no CUDA device here; use --dry-run" in proc.stdout
    assert not (tmp_path / "out").exists()
