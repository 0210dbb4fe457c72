"""A real run (tiny builtin model) on a host whose NVML shows two fake GPUs, through the report.

Issue 11: a CPU engine meters no GPU (item 1); the telemetry file the run writes is the file
`llem report` reads and draws (item 2); the idle baseline is measured after a recorded rest,
without the cache when asked, and the result says how it was obtained (item 5).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from llenergymeasure.cli.main import app
from llenergymeasure.domain import timeseries as columns
from llenergymeasure.engines import builtin as builtin_models
from llenergymeasure.results.io import load_result
from tests.fakes.fake_pynvml import FakeGpu, gpu_uuid
from tests.fakes.rig import Rig, make_rig

#: Builtin models are already built in the shared test cache; the baseline cache goes elsewhere.
SHARED_MODELS = Path(os.environ["LLEM_CACHE_DIR"])

CONFIG = """\
model: builtin:tiny-llama
device_map: cpu
n_prompts: 4
batch_size: 2
max_output_tokens: 8
warmup: {mode: fixed, n: 1}
baseline_sec: 0.5
baseline_settle_sec: 0.2
telemetry_interval_sec: 0.05
"""


@pytest.fixture(scope="module")
def cpu_run_on_gpu_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Rig]]:
    """One `llem run` in this process, with the fake NVML installed (shared by the tests)."""
    tmp_path = tmp_path_factory.mktemp("fake-gpus")
    with pytest.MonkeyPatch.context() as monkeypatch:
        rig = make_rig(monkeypatch, tmp_path, [FakeGpu(gpu_uuid(0)), FakeGpu(gpu_uuid(1))])
        monkeypatch.setenv("LLEM_CACHE_DIR", str(tmp_path / "cache"))
        monkeypatch.setattr(builtin_models, "cache_root", lambda: SHARED_MODELS)
        config = tmp_path / "exp.yaml"
        config.write_text(CONFIG)
        out = tmp_path / "out"
        done = CliRunner().invoke(
            app, ["run", str(config), "-o", str(out), "-q", "--no-baseline-cache"]
        )
        assert done.exit_code == 0, done.output
        yield out, rig


def test_cpu_engine_meters_no_gpu(cpu_run_on_gpu_host: tuple[Path, Rig]) -> None:
    out, rig = cpu_run_on_gpu_host
    (path,) = out.glob("*/result.json")
    result = load_result(path)
    energy = result.energy
    assert [d.kind for d in energy.devices] == ["cpu", "ram"]  # the two idle GPUs left out
    assert energy.gpu_energy_j == 0.0 and energy.method == "estimate"
    assert any("engine runs on no GPU" in w for w in result.warnings)
    calls = rig.nvml.calls
    assert calls["nvmlDeviceGetTotalEnergyConsumption"] == 0
    assert calls["nvmlDeviceGetPowerUsage"] == 0


def test_baseline_provenance_is_recorded(cpu_run_on_gpu_host: tuple[Path, Rig]) -> None:
    out, _ = cpu_run_on_gpu_host
    (path,) = out.glob("*/result.json")
    result = load_result(path)
    info = result.energy.baseline
    assert info is not None and result.energy.baseline_method == "measured"
    assert info.method == "measured" and info.settle_sec == 0.2
    assert info.duration_sec == pytest.approx(0.5, abs=0.3)
    assert info.samples is not None and info.samples >= 3  # every 100 ms
    assert info.age_sec is not None and 0 <= info.age_sec < 60
    assert result.config["baseline_cache"] is False
    assert result.process_results[0].energy.baseline == info
    cache = out.parent / "cache"
    assert not list(cache.glob("idle_baseline*"))  # --no-baseline-cache: not read, not written


def test_report_draws_the_power_trace_of_a_real_run(
    cpu_run_on_gpu_host: tuple[Path, Rig], tmp_path: Path
) -> None:
    out, _ = cpu_run_on_gpu_host
    (path,) = out.glob("*/result.json")
    table = pq.read_table(path.parent / "timeseries.parquet")
    assert tuple(table.column_names) == columns.COLUMNS
    assert table.num_rows > 0 and table.column(columns.POWER_W).null_count < table.num_rows
    html_path = tmp_path / "report.html"
    done = CliRunner().invoke(app, ["report", str(out), "-o", str(html_path)])
    assert done.exit_code == 0, done.output
    html = html_path.read_text()
    experiment_id = path.parent.name
    assert re.search(
        rf'<img alt="power and temperature of {re.escape(experiment_id)}" '
        r'src="data:image/png;base64,[A-Za-z0-9+/=]{1000,}"',
        html,
    )
    assert "column" not in re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html)


@pytest.fixture(scope="module")
def gpu0_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Rig]]:
    """One `llem run` whose engine occupies (fake) GPU 0 of two; NVML counters in real time."""
    import time

    from llenergymeasure.measure import experiment
    from tests.fakes.fake_gpu_engine import FakeGpuEngine
    from tests.fakes.fake_pynvml import FakePynvml, install
    from tests.fakes.traces import constant

    tmp_path = tmp_path_factory.mktemp("gpu0")
    with pytest.MonkeyPatch.context() as monkeypatch:
        rig = make_rig(monkeypatch, tmp_path)
        gpus = [FakeGpu(gpu_uuid(0), power=constant(250.0)), FakeGpu(gpu_uuid(1))]
        rig.nvml = install(monkeypatch, FakePynvml(gpus, time.monotonic))  # type: ignore[arg-type]
        monkeypatch.setenv("LLEM_CACHE_DIR", str(tmp_path / "cache"))
        monkeypatch.setattr(builtin_models, "cache_root", lambda: SHARED_MODELS)
        monkeypatch.setattr(experiment, "create_engine", FakeGpuEngine)
        monkeypatch.setattr(experiment, "_device_names", lambda engine: [gpus[0].name])
        config = tmp_path / "exp.yaml"
        config.write_text(CONFIG.replace("device_map: cpu\n", ""))
        out = tmp_path / "out"
        done = CliRunner().invoke(
            app, ["run", str(config), "-o", str(out), "-q", "--no-baseline-cache"]
        )
        assert done.exit_code == 0, done.output
        yield out, rig


def test_gpu_run_meters_its_gpu_only_and_the_report_draws_it(
    gpu0_run: tuple[Path, Rig], tmp_path: Path
) -> None:
    """Items 1 and 2 with a GPU in use: only GPU 0 of two is metered (by its NVML counter,
    250 W x the window), and the report draws gpu:0's power from the run's own file."""
    out, _ = gpu0_run
    (path,) = out.glob("*/result.json")
    result = load_result(path)
    gpus = [d for d in result.energy.devices if d.kind == "gpu"]
    assert [(d.uid, d.method) for d in gpus] == [(gpu_uuid(0), "nvml_energy_counter")]
    duration = result.energy.duration_sec
    assert gpus[0].energy_j == pytest.approx(250.0 * duration, rel=0.02, abs=0.5)
    assert gpus[0].baseline_power_w == pytest.approx(250.0, rel=0.02)  # it never rests here
    table = pq.read_table(path.parent / "timeseries.parquet")
    rows = [r for r in table.to_pylist() if r[columns.DEVICE] == "gpu:0"]
    assert rows and {r[columns.POWER_W] for r in rows} == {250.0}
    assert all(r[columns.ENERGY_COUNTER_J] is not None for r in rows)
    html_path = tmp_path / "report.html"
    done = CliRunner().invoke(app, ["report", str(out), "-o", str(html_path)])
    assert done.exit_code == 0, done.output
    html = html_path.read_text()
    assert f'alt="power and temperature of {path.parent.name}"' in html
