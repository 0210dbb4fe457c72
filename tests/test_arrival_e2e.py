"""Arrival models on the real transformers engine, through the file to `llem results show`."""

from __future__ import annotations

from pathlib import Path

import pytest

from llenergymeasure import run_experiment
from llenergymeasure.results.io import load_result
from tests.cli_helpers import run_llem

FAST = {"baseline_sec": 0, "warmup": {"mode": "fixed", "n": 1}, "energy": "estimate"}


@pytest.mark.parametrize("arrival", ["closed", "all_at_once"])
def test_static_batches_under_each_arrival_model(tmp_path: Path, arrival: str) -> None:
    result = run_experiment(
        {
            "model": "builtin:tiny-gpt2",
            "n_prompts": 8,
            "batch_size": 4,
            "max_output_tokens": 6,
            "arrival": arrival,
            "output_dir": str(tmp_path),
            **FAST,
        }
    )
    inf = load_result(next(tmp_path.glob("*/result.json"))).inference
    assert inf == result.inference
    assert inf.arrival_model == arrival and inf.latency_method == "decode_step_timestamps"
    assert inf.ttft.n == inf.tpot.n == inf.request_latency.n == 8
    assert inf.itl.n == 8 * 5 and inf.itl.method == "token_timestamps"
    ttft, e2e = inf.ttft.samples_ms, inf.request_latency.samples_ms
    # requests of one static batch share its step times: one TTFT per batch, repeated per request
    assert ttft[:4] == [ttft[0]] * 4 and ttft[4:] == [ttft[4]] * 4
    if arrival == "closed":
        # nobody waited behind another batch: each request's clock starts with its own batch
        assert all(t < e for t, e in zip(ttft, e2e, strict=True))
        assert max(e2e[4:]) < inf.inference_time_sec * 1e3 - min(e2e[:4]) + 1e-6
    else:
        # the second batch's requests arrived at the window start and waited for the first
        assert ttft[4] > max(e2e[:4])
        assert max(e2e) <= inf.inference_time_sec * 1e3 + 1e-6
    tpot = [(e - t) / 5 for t, e in zip(ttft, e2e, strict=True)]
    assert inf.tpot.samples_ms == pytest.approx(tpot)
    if arrival == "all_at_once":
        shown = run_llem("results", "show", str(next(tmp_path.glob("*/result.json"))))
        assert shown.returncode == 0, shown.stderr
        assert "all_at_once arrivals" in shown.stdout
        assert "time per output token" in shown.stdout
