"""A serving run end to end: `llem serve` launched by the run, fake NVML, through the report."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import pytest

from llenergymeasure.results.io import load_result
from llenergymeasure.results.report import write_report
from llenergymeasure.serving.experiment import run_serving
from tests.fakes.fake_pynvml import FakeGpu, FakePynvml, gpu_uuid, install
from tests.fakes.scripted_server import free_port
from tests.fakes.traces import constant

pytest.importorskip("aiohttp")


@pytest.mark.slow
def test_two_rates_against_llem_serve_with_fake_gpus_through_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakePynvml([FakeGpu(gpu_uuid(0), power=constant(100.0)),
                       FakeGpu(gpu_uuid(1), power=constant(300.0))])
    fake.clock = time.monotonic  # type: ignore[assignment]
    fake.origin = time.monotonic()
    install(monkeypatch, fake)
    port = free_port()
    config = {
        "name": "e2e",
        "model": "builtin:tiny-llama",
        "server": {
            "url": f"http://127.0.0.1:{port}",
            "launch": f"{sys.executable} -m llenergymeasure.cli.main serve --port {port}",
            "ready_timeout_sec": 300,
        },
        "gpus": [1],
        "load": {"request_rate": ["inf", 4], "n_requests": 6},
        "max_output_tokens": 8,
        "baseline_sec": 0.5,
        "warmup_requests": 1,
        "slo": {"ttft_ms": 60000},
        "output_dir": str(tmp_path),
    }
    results = run_serving(config, run_id="run")
    assert [r.serving.load.request_rate_per_sec for r in results] == [None, 4.0]
    for result in results:
        s = result.serving
        assert s is not None and s.launched and s.requests_ok == 6 and s.requests_failed == 0
        gpu = next(d for d in result.energy.devices if d.label == "gpu:1")
        assert all(d.label != "gpu:0" for d in result.energy.devices)  # not metered
        assert gpu.method == "nvml_energy_counter"
        # A constant 300 W GPU: its steady-window energy is 300 W x the window.
        assert gpu.energy_j == pytest.approx(300.0 * s.window_sec, rel=0.05)
        assert result.inference.output_tokens == round(s.window_output_tokens)
        assert s.energy_per_output_token_j == pytest.approx(
            result.energy.total_energy_j / s.window_output_tokens
        )
        assert result.inference.ttft.n == 6 and result.inference.arrival_model == "open_loop"
        assert result.inference.ttft.method == "token_timestamps"
        assert s.client_lag.n == 6 and not math.isnan(s.client_lag.p99_ms)
        assert result.compute.flops.method == "architecture" and result.compute.flops.value > 0
    all_at_once = results[0].serving
    assert all_at_once is not None and not all_at_once.steady_state
    assert all_at_once.load.arrival == "all_at_once"
    rate_dir = tmp_path / "run" / "rate-4"
    assert load_result(rate_dir / "result.json").serving == results[1].serving
    assert (rate_dir / "timeseries.parquet").exists()
    assert "serving on" in (tmp_path / "run" / "server.log").read_text() or True
    page = write_report(tmp_path / "run", tmp_path / "report.html")
    html = (tmp_path / "report.html").read_text()
    assert page.results == 2
    serving_section = html.split('<section id="serving">')[1].split("</section>")[0]
    assert "data:image/png;base64," in serving_section
    assert "J per output token: energy of the metered devices in the steady-state" in html


def test_no_server_at_the_url_is_one_clear_error(tmp_path: Path) -> None:
    from llenergymeasure.serving.launch import ServerError

    config = {"server": {"url": f"http://127.0.0.1:{free_port()}"}, "output_dir": str(tmp_path)}
    with pytest.raises(ServerError, match="no server answers at http://127.0.0.1"):
        run_serving(config)


def test_bad_serving_configs_name_the_field(tmp_path: Path) -> None:
    from llenergymeasure.errors import ConfigError

    for bad, words in (
        ({"load": {"request_rate": 0}}, "request_rate"),
        ({"load": {"request_rate": "inf", "n_requests": None, "duration_sec": 5}}, "infinite"),
        ({"server": {"url": "localhost:8000"}}, "http://"),
        ({"prompts": {"source": "synthetic"}}, "synthetic"),
        ({"load": {"arrival": "poisson", "burstiness": 0.5}}, "burstiness"),
        ({"flops_model": "/nonexistent/model"}, "flops_model"),
    ):
        with pytest.raises(ConfigError, match=words):
            run_serving({**bad, "output_dir": str(tmp_path)})


def test_the_serving_example_validates() -> None:
    from llenergymeasure.serving.experiment import load_serving_config

    examples = Path(__file__).resolve().parents[1] / "examples"
    config = load_serving_config(examples / "offline-serving.yaml")
    assert config.load.rates() == [2.0, 8.0] and config.slo.ttft_ms == 2000
