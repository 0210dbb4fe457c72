"""Time one `architecture` FLOPs estimate (goal: under 1 ms) and, for scale, one calflops count.

Run from the repository root: PYTHONPATH=src python benchmarks/flops_speed.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def _per_call_sec(call: Callable[[], object], repeats: int, rounds: int = 7) -> tuple[float, float]:
    """(median, min) seconds per call over ``rounds`` rounds of ``repeats`` calls each."""
    call()  # warm caches and lazy imports
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            call()
        samples.append((time.perf_counter() - start) / repeats)
    return statistics.median(samples), min(samples)


def main() -> None:
    from transformers import LlamaConfig, MixtralConfig

    from llenergymeasure.compute.flops import estimate_flops

    workload = dict(batch_size=8, input_tokens=512, output_tokens=256)
    configs = {
        "Llama-2-7B shape": LlamaConfig(),
        "Mixtral-8x7B shape": MixtralConfig(),
    }
    print("architecture estimate (config only, one call):")
    for name, config in configs.items():
        median, best = _per_call_sec(
            lambda c=config: estimate_flops(c, method="architecture", **workload), repeats=500
        )
        value = estimate_flops(config, method="architecture", **workload).value
        verdict = "under" if median < 1e-3 else "OVER"
        print(
            f"  {name:20s} {median * 1e6:8.1f} us median ({best * 1e6:.1f} us best), "
            f"{verdict} the 1 ms goal; {value:.4g} FLOPs"
        )
    print("  with 8 distinct prompt lengths (one per sequence):")
    lengths = [100, 200, 300, 400, 500, 600, 700, 800]
    median, _ = _per_call_sec(
        lambda: estimate_flops(
            configs["Llama-2-7B shape"],
            method="architecture",
            batch_size=8,
            input_tokens=lengths,
            output_tokens=256,
        ),
        repeats=500,
    )
    print(f"  {'Llama-2-7B shape':20s} {median * 1e6:8.1f} us median")

    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(1)  # tiny matrices: threads only add scheduling noise
    torch.manual_seed(0)
    tiny = LlamaConfig(
        vocab_size=97,
        hidden_size=48,
        intermediate_size=80,
        num_hidden_layers=2,
        num_attention_heads=6,
        num_key_value_heads=2,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    model = AutoModelForCausalLM.from_config(tiny).eval()
    small = dict(batch_size=4, input_tokens=32, output_tokens=16)
    arch, _ = _per_call_sec(
        lambda: estimate_flops(model, method="architecture", **small), repeats=200
    )
    cal, _ = _per_call_sec(
        lambda: estimate_flops(model, method="calflops", **small), repeats=1, rounds=3
    )
    print(
        f"tiny Llama (hidden 48, 2 layers), batch 4 x 32 prompt + 16 new tokens: "
        f"architecture {arch * 1e6:.1f} us, calflops {cal * 1e3:.1f} ms ({cal / arch:.0f}x)"
    )


if __name__ == "__main__":
    main()
