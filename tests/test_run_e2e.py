"""`llem run` end to end on the built-in tiny models: results, files, bad input, Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from llenergymeasure import run_experiment
from llenergymeasure.results.io import load_process_result, load_result
from tests.cli_helpers import ROOT, run_llem, source_env

FAST = {"baseline_sec": 0, "warmup": {"mode": "fixed", "n": 2}}


def only_result(out: Path) -> Path:
    found = list(out.glob("*/result.json"))
    assert len(found) == 1, found
    return found[0]


def test_quickstart_no_arguments(tmp_path: Path) -> None:
    proc = run_llem("run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = load_result(only_result(tmp_path / "results"))
    assert result.config["model"] == "builtin:tiny-llama"
    assert result.inference.output_tokens == 16 * 32
    assert "J" in proc.stdout and "tok/s" in proc.stdout and "FLOPs per output token" in proc.stdout


def test_tiny_gpt2_with_flags(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_llem(
        "run", "--model", "builtin:tiny-gpt2", "--batch-size", "4", "-n", "16", "-o", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    path = only_result(out)
    result = load_result(path)
    inf = result.inference
    assert (result.config["model"], result.config["batch_size"]) == ("builtin:tiny-gpt2", 4)
    assert inf.num_requests == 16 and inf.output_tokens == 16 * 32
    assert inf.ttft.n == 16 and inf.itl.n == 16 * 31 and inf.request_latency.n == 16
    assert inf.tokens_per_second == pytest.approx(inf.output_tokens / inf.inference_time_sec)
    assert 0 < inf.ttft.p50_ms <= inf.request_latency.p50_ms
    # energy: the estimate here, labelled so; raw beside adjusted
    assert result.energy.method == "estimate" and result.energy.confidence == "low"
    assert result.energy.total_energy_j > 0
    assert any("estimate" in w for w in result.warnings)
    # FLOPs with provenance, split, per token
    compute = result.compute
    assert compute.flops.value == pytest.approx(compute.prefill_flops + compute.decode_flops)
    assert compute.flops_per_output_token == pytest.approx(compute.flops.value / inf.output_tokens)
    assert compute.precision.compute == "fp32"
    norm = result.normalised
    assert norm.tokens_per_joule == pytest.approx(inf.output_tokens / result.energy.total_energy_j)
    assert result.warmup and result.warmup[0].iterations_completed >= 1
    # files beside the result
    directory = path.parent
    proc0 = load_process_result(directory / "process_0.json")
    assert result.process_results == [proc0]
    assert (directory / "process_0.done").exists()
    assert json.loads((directory / "config.json").read_text())["batch_size"] == 4
    table = pq.read_table(directory / "timeseries.parquet")
    assert table.num_rows > 0
    assert "run.log" in {p.name for p in directory.iterdir()}


def test_python_api_and_natural_stopping(tmp_path: Path) -> None:
    config = {
        "model": "builtin:tiny-llama",
        "n_prompts": 6,
        "batch_size": 3,
        "max_output_tokens": 8,
        "fixed_length": False,
        "output_dir": str(tmp_path),
        **FAST,
    }
    result = run_experiment(config)
    assert result == load_result(only_result(tmp_path))
    assert 6 <= result.inference.output_tokens <= 6 * 8


def _config_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (lambda t: [_config_file(t, "batchsize: 4\n")], "did you mean 'batch_size'"),
        (
            lambda t: ["--batch-size", "-4"],
            "batch_size: Input should be greater than or equal to 1",
        ),
        (
            lambda t: [_config_file(t, "prompts:\n  source: file\n  path: /nope/p.jsonl\n")],
            "prompt file not found: /nope/p.jsonl",
        ),
        (
            lambda t: ["--model", "nobody/no-such-model", "--baseline-sec", "0"],
            "could not be loaded from the Hugging Face hub",
        ),
        (lambda t: [str(t / "missing.yaml")], "config file not found"),
        (lambda t: ["--energy", "nvml", "--baseline-sec", "0"], "instrument 'nvml' is unavailable"),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path: Path, args, expected: str) -> None:  # type: ignore[no-untyped-def]
    proc = run_llem("run", *args(tmp_path), "-o", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert expected in proc.stderr
    assert len([line for line in proc.stderr.splitlines() if line.startswith("error:")]) == 1
    assert not list((tmp_path / "out").glob("*/result.json"))


def test_ctrl_c_writes_no_result_and_keeps_earlier_ones(tmp_path: Path) -> None:
    out = tmp_path / "out"
    earlier = out / "earlier-experiment"
    earlier.mkdir(parents=True)
    (earlier / "result.json").write_text("{}")
    config = _config_file(
        tmp_path,
        "n_prompts: 64\nmax_output_tokens: 64\nbaseline_sec: 0\nwarmup: {mode: fixed, n: 200}\n",
    )
    child = subprocess.Popen(
        [sys.executable, "-m", "llenergymeasure.cli.main", "run", config, "-o", str(out), "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=source_env(),
        cwd=ROOT,
        # A shell that starts a job in the background makes it ignore SIGINT, and Python keeps
        # an inherited "ignore"; restore the default so the child sees Ctrl-C as a user would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while not any(p.name != "earlier-experiment" for p in out.iterdir()):
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.2)
    time.sleep(3)  # well into loading or warmup
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert [p.parent.name for p in out.glob("*/result.json")] == ["earlier-experiment"]
    assert (earlier / "result.json").read_text() == "{}"


def test_two_processes_aggregate_to_sums_over_wall_time(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_llem(
        "run",
        "--model",
        "builtin:tiny-llama",
        "--processes",
        "2",
        "-n",
        "8",
        "--baseline-sec",
        "0",
        "-o",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    path = only_result(out)
    result = load_result(path)
    raws = [load_process_result(path.parent / f"process_{i}.json") for i in range(2)]
    assert [r.process_index for r in raws] == [0, 1]
    assert result.process_results == raws
    assert result.inference.output_tokens == sum(r.inference.output_tokens for r in raws) == 8 * 32
    assert result.energy.total_energy_j == pytest.approx(sum(r.energy.total_energy_j for r in raws))
    assert result.compute.flops.value == pytest.approx(sum(r.compute.flops.value for r in raws))
    wall = (result.end_time - result.start_time).total_seconds()
    assert result.inference.inference_time_sec == pytest.approx(wall)
    assert result.inference.tokens_per_second == pytest.approx(
        result.inference.output_tokens / wall
    )
    # the host is metered once: by process 0 only
    assert raws[0].energy.devices and not raws[1].energy.devices
    assert len(result.warmup) == 2
    # `llem aggregate` redoes it from the raw files, identically
    (path).unlink()
    again = run_llem("aggregate", str(path.parent))
    assert again.returncode == 0, again.stderr
    assert load_result(path).model_dump(exclude={"environment"}) == result.model_dump(
        exclude={"environment"}
    )
