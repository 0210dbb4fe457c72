"""Harness overhead: tokens/s of the measured window against a bare ``model.generate`` loop.

Same model, batch and prompts, alternated in one process (bare, harness, bare, harness, ...)
so that drift on a noisy machine hits both alike. Prints each round and the median ratio.
Goal: >= 0.97 at batch 8, 64 new tokens, on builtin:tiny-llama.

    python benchmarks/harness_overhead.py [--rounds 5] [--batch-size 8] [--new-tokens 64]
                                          [--with-progress]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _bare import bare_tokens_per_second, prepare

from llenergymeasure.config.experiment import ExperimentConfig
from llenergymeasure.measure.experiment import run_experiment


def measured_tokens_per_second(config: ExperimentConfig, with_progress: bool) -> float:
    """One run of the harness; with the CLI's progress bars drawn to a discarded console."""
    if not with_progress:
        return run_experiment(config).inference.tokens_per_second
    from rich.console import Console

    from llenergymeasure.cli.run_cmd import RichReporter

    with open(os.devnull, "w") as sink:
        console = Console(file=sink, force_terminal=True, width=100)
        with RichReporter(console) as reporter:
            return run_experiment(config, reporter=reporter).inference.tokens_per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--n-prompts", type=int, default=32)
    parser.add_argument("--model", default="builtin:tiny-llama")
    parser.add_argument(
        "--with-progress",
        action="store_true",
        help="draw the CLI's progress bars (to a discarded console), as `llem run` does",
    )
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="llem-bench-"))
    config = ExperimentConfig(
        model=args.model,
        batch_size=args.batch_size,
        n_prompts=args.n_prompts,
        max_output_tokens=args.new_tokens,
        baseline_sec=0,
        warmup={"mode": "fixed", "n": 3},
        output_dir=out,
    )
    model, batches, pad_id = prepare(config)
    bare_tokens_per_second(model, batches[:2], pad_id, args.new_tokens)  # warm the bare path
    ratios = []
    print(f"{'round':>5} {'bare tok/s':>12} {'harness tok/s':>14} {'ratio':>7}")
    for i in range(args.rounds):
        bare = bare_tokens_per_second(model, batches, pad_id, args.new_tokens)
        harness = measured_tokens_per_second(config, args.with_progress)
        ratios.append(harness / bare)
        print(f"{i + 1:>5} {bare:>12.1f} {harness:>14.1f} {harness / bare:>7.3f}")
    mode = "with progress bars" if args.with_progress else "no progress bars"
    print(
        f"median ratio harness/bare ({mode}): {statistics.median(ratios):.3f} "
        f"(batch {args.batch_size}, {args.new_tokens} new tokens, {args.model})"
    )


if __name__ == "__main__":
    main()
