"""The vLLM engine driven through the real harness by the fake ``vllm`` in tests/fakes."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from llenergymeasure import run_experiment
from llenergymeasure.config.engines import VLLMSection
from llenergymeasure.config.experiment import ExperimentConfig
from llenergymeasure.engines import builtin
from llenergymeasure.engines.registry import create_engine
from llenergymeasure.errors import ConfigError, LlemError
from llenergymeasure.results.io import load_result
from tests.cli_helpers import ROOT, run_llem

FAKES = ROOT / "tests" / "fakes"
FAST = {"baseline_sec": 0, "warmup": {"mode": "fixed", "n": 1}, "energy": "estimate"}


def _forget_vllm() -> None:
    for name in [m for m in sys.modules if m == "vllm" or m.startswith("vllm.")]:
        del sys.modules[name]


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    _forget_vllm()
    monkeypatch.syspath_prepend(str(FAKES))
    import vllm

    assert "fakes" in str(vllm.__file__)
    vllm.CREATED.clear()
    yield vllm
    _forget_vllm()


def vllm_config(tmp_path: Path, **overrides: object) -> ExperimentConfig:
    data: dict[str, object] = {
        "engine": "vllm",
        "model": "builtin:tiny-llama",
        "n_prompts": 12,
        "batch_size": 4,
        "max_output_tokens": 16,
        "output_dir": str(tmp_path),
        "vllm": {"max_num_seqs": 4, "gpu_memory_utilization": 0.5},
        **FAST,
    }
    data.update(overrides)
    return ExperimentConfig.model_validate(data)


def test_offline_run_gives_per_request_latencies(tmp_path: Path, fake_vllm: object) -> None:
    result = run_experiment(vllm_config(tmp_path))
    loaded = load_result(next(tmp_path.glob("*/result.json")))
    assert loaded == result
    inf = result.inference
    assert inf.arrival_model == "all_at_once" and inf.latency_method == "vllm_request_metrics"
    assert inf.num_requests == 12 and inf.output_tokens == 12 * 16
    assert inf.ttft.n == inf.tpot.n == inf.request_latency.n == 12
    assert inf.ttft.method == inf.tpot.method == "first_last_token"
    assert inf.itl.method == "not_reported" and inf.itl.n == 0
    # 12 requests, 4 at a time: the last ones queued behind the first, so TTFT spreads out
    assert inf.ttft.max_ms > 3 * inf.ttft.min_ms
    assert inf.ttft.max_ms <= inf.request_latency.max_ms
    assert inf.request_latency.max_ms <= inf.inference_time_sec * 1e3 + 1e-6
    assert result.compute.flops.method == "architecture"  # calflops cannot see inside vLLM
    assert result.compute.precision.compute == "fp32"
    assert result.environment.engine == "vllm"
    assert result.config["vllm"]["max_num_seqs"] == 4 and "transformers" not in result.config
    built = fake_vllm.CREATED[-1]  # type: ignore[attr-defined]
    assert built["disable_log_stats"] is False and built["max_num_seqs"] == 4
    assert built["model"] == str(builtin.builtin_path("builtin:tiny-llama"))


def test_traces_follow_vllm_metrics_and_show_preemption(fake_vllm: object) -> None:
    config = ExperimentConfig(
        engine="vllm", max_output_tokens=16, vllm={"max_num_seqs": 8, "gpu_memory_utilization": 0.1}
    )
    engine = create_engine(config)
    engine.load()
    prompts = [engine.tokenize([f"prompt number {i} about the sea"])[0] for i in range(8)]
    out = engine.generate(engine.prepare(prompts))
    assert [t.input_tokens for t in out.requests] == [len(p) for p in prompts]
    assert all(t.output_tokens == 16 and not t.token_times_sec for t in out.requests)
    # 102 KV tokens cannot hold 8 growing requests: some were preempted and recomputed
    assert sum(t.num_preemptions for t in out.requests) > 0
    for t in out.requests:
        assert out.start_sec <= t.arrival_sec <= t.scheduled_sec <= t.first_token_sec
        assert t.first_token_sec <= t.finish_sec <= out.end_sec + 1e-3
    engine.close()


def test_streaming_records_every_token(tmp_path: Path, fake_vllm: object) -> None:
    config = vllm_config(tmp_path, fixed_length=False, vllm={"max_num_seqs": 4, "stream": True})
    inf = run_experiment(config).inference
    assert inf.latency_method == "vllm_step_outputs" and inf.itl.method == "token_timestamps"
    assert inf.ttft.method == "token_timestamps"
    assert inf.output_tokens < 12 * 16  # some requests met EOS (the fake emits it early)
    assert inf.itl.n == inf.output_tokens - inf.num_requests


def test_closed_arrivals_submit_one_batch_at_a_time(tmp_path: Path, fake_vllm: object) -> None:
    config = vllm_config(tmp_path, arrival="closed")
    inf = run_experiment(config).inference
    assert inf.arrival_model == "closed"
    # each batch of 4 fits max_num_seqs: no request waits behind another batch
    assert inf.ttft.max_ms < inf.request_latency.min_ms


def test_missing_vllm_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    _forget_vllm()
    monkeypatch.setitem(sys.modules, "vllm", None)
    engine = create_engine(ExperimentConfig(engine="vllm"))
    with pytest.raises(LlemError, match=r"engine 'vllm' needs the vllm package: pip install"):
        engine.load()


def test_old_vllm_is_one_clear_error(fake_vllm: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fake_vllm, "__version__", "0.6.3")
    with pytest.raises(LlemError, match=r"needs vllm >= 0\.10, found 0\.6\.3"):
        create_engine(ExperimentConfig(engine="vllm")).load()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("gpu_memory_utilization", 0.3),
        ("max_num_seqs", 8),
        ("max_num_batched_tokens", 512),
        ("tensor_parallel_size", 2),
        ("enforce_eager", True),
        ("kv_cache_dtype", "fp8"),
        ("quantization", "awq"),
        ("enable_prefix_caching", True),
        ("max_model_len", 256),
        ("stream", True),
    ],
)
def test_every_vllm_option_is_in_the_config_hash(field: str, value: object) -> None:
    assert field in VLLMSection.model_fields
    base = ExperimentConfig(engine="vllm")
    changed = ExperimentConfig(engine="vllm", vllm={field: value})
    assert base.config_hash() != changed.config_hash()
    # a section of an engine not in use neither changes the hash nor is stored
    other = ExperimentConfig(vllm={field: value})
    assert other.config_hash() == ExperimentConfig().config_hash()
    assert "vllm" not in other.resolved()


def test_engine_sections_are_validated_by_their_own_class() -> None:
    with pytest.raises(ValueError, match="gpu_memory_utilization"):
        ExperimentConfig(engine="vllm", vllm={"gpu_memory_utilization": 1.5})
    with pytest.raises(ValueError, match="bogus"):
        ExperimentConfig(engine="vllm", vllm={"bogus": 1})
    with pytest.raises(ValueError, match="bitsandbytes.*set vllm.quantization"):
        ExperimentConfig(engine="vllm", quantization="bnb-8bit")
    with pytest.raises(ValueError, match="processes 2: data-parallel workers are for the"):
        ExperimentConfig(engine="vllm", processes=2, n_prompts=4)
    assert ExperimentConfig(engine="vllm").arrival == "all_at_once"
    assert ExperimentConfig().arrival == "closed"


def test_unknown_engine_is_rejected() -> None:
    with pytest.raises(ConfigError, match="engine 'sglang' is not one of transformers, vllm"):
        from llenergymeasure.engines.registry import engine_class

        engine_class("sglang")


def test_cli_run_vllm_then_compare_with_transformers(tmp_path: Path) -> None:
    """`llem run --engine vllm` (fake vllm on the path), then compare with transformers."""
    model = str(builtin.builtin_path("builtin:tiny-llama"))
    config = tmp_path / "experiment.yaml"
    config.write_text("warmup: {mode: fixed, n: 1}\nvllm: {max_num_seqs: 4}\n")
    common = [str(config), "--model", model, "-n", "8", "--max-output-tokens", "8"]
    common += ["--baseline-sec", "0", "--energy", "estimate", "-q", "-o", str(tmp_path / "out")]
    with_fake = os.pathsep.join([str(ROOT / "src"), str(ROOT), str(FAKES)])
    vllm_run = run_llem("run", "--engine", "vllm", *common, PYTHONPATH=with_fake)
    assert vllm_run.returncode == 0, vllm_run.stderr
    assert "all_at_once arrivals" in vllm_run.stdout and "first_last_token" in vllm_run.stdout
    hf_run = run_llem("run", *common)
    assert hf_run.returncode == 0, hf_run.stderr
    results = sorted((tmp_path / "out").glob("*/result.json"))
    assert len(results) == 2
    engines = {load_result(p).config["engine"] for p in results}
    assert engines == {"vllm", "transformers"}
    compare = run_llem("results", "compare", *map(str, results))
    assert compare.returncode == 0, compare.stderr
    for text in ("engine", "vllm", "transformers", "arrival model", "all_at_once", "TPOT p50"):
        assert text in compare.stdout
    # vLLM offline reports no ITL: an empty cell, not 0 and not a ratio
    itl_row = next(line for line in compare.stdout.splitlines() if "ITL p50" in line)
    assert "x0" not in itl_row and " - " in itl_row


def test_gpus_are_the_first_tensor_parallel_ranks_of_the_visible_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from llenergymeasure.engines.vllm_engine import visible_gpu_indices

    assert visible_gpu_indices(2, cuda=False) == []
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert visible_gpu_indices(2, cuda=True) == [0, 1]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5,6")
    assert visible_gpu_indices(2, cuda=True) == [3, 5]
    with pytest.raises(ConfigError, match="tensor_parallel_size 4 needs that many GPUs"):
        visible_gpu_indices(4, cuda=True)


@pytest.mark.parametrize(
    ("dtype", "quantization", "expected"),
    [
        ("float32", None, ("fp32", "fp32", None)),
        ("bfloat16", None, ("bf16", "bf16", None)),
        ("float16", "fp8", ("fp8", "fp8", "fp8")),
        ("float16", "awq", ("mixed", "fp16", "awq")),
    ],
)
def test_precision_from_dtype_and_quantization(
    fake_vllm: object, dtype: str, quantization: str | None, expected: tuple
) -> None:
    engine = create_engine(
        ExperimentConfig(engine="vllm", dtype=dtype, vllm={"quantization": quantization})
    )
    engine.load()
    p = engine.precision()
    assert (p.weights, p.compute, p.quantization_method) == expected
    assert engine.memory_mb() == (None, None) and engine.gpu_indices() == []


@pytest.mark.skipif(
    importlib.util.find_spec("vllm") is not None, reason="a real vllm is installed here"
)
def test_cli_without_vllm_is_one_line_exit_2(tmp_path: Path) -> None:
    proc = run_llem("run", "--engine", "vllm", "--baseline-sec", "0", "-o", str(tmp_path))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "engine 'vllm' needs the vllm package" in errors[0]
    assert not list(tmp_path.glob("*/result.json"))
