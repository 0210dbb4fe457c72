"""Isolation overhead: tokens/s inside a study's experiment subprocess against a bare
``model.generate`` loop in a standalone process (same model, batch and prompts).

Alternates (bare process, study) for several rounds and prints the median ratio.
Goal: >= 0.97. A parent that stays busy while its child measures (polling loops, spinning
thread pools) slows the child severalfold on a small machine; this shows ours does not.

    python benchmarks/study_overhead.py [--rounds 3] [--batch-size 8] [--new-tokens 64]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")

BARE_SCRIPT = """
import json, sys
sys.path.insert(0, {here!r})
from _bare import bare_tokens_per_second, prepare
from llenergymeasure.config.experiment import ExperimentConfig
config = ExperimentConfig.model_validate_json({config!r})
model, batches, pad = prepare(config)
for _ in range(3):  # warm up like the harness does (fixed, 3 requests)
    bare_tokens_per_second(model, batches[:1], pad, config.max_output_tokens)
print(json.dumps(bare_tokens_per_second(model, batches, pad, config.max_output_tokens)))
"""


def main() -> None:
    from llenergymeasure.config.experiment import ExperimentConfig
    from llenergymeasure.config.study import StudyConfig
    from llenergymeasure.study.runner import run_study

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--n-prompts", type=int, default=32)
    parser.add_argument("--model", default="builtin:tiny-llama")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="llem-study-bench-"))
    base = {
        "model": args.model,
        "batch_size": args.batch_size,
        "n_prompts": args.n_prompts,
        "max_output_tokens": args.new_tokens,
        "baseline_sec": 0,
        "warmup": {"mode": "fixed", "n": 3},
    }
    config_json = ExperimentConfig.model_validate(base).model_dump_json()
    ratios = []
    print(f"{'round':>5} {'bare tok/s':>12} {'study tok/s':>12} {'ratio':>7}")
    for i in range(args.rounds):
        bare_proc = subprocess.run(
            [sys.executable, "-c", BARE_SCRIPT.format(here=str(HERE), config=config_json)],
            capture_output=True,
            text=True,
            check=True,
        )
        bare = float(json.loads(bare_proc.stdout.strip().splitlines()[-1]))
        study = StudyConfig(name=f"round{i}", base=base, output_dir=out)
        result = run_study(study)
        tps = result.summaries[0].tokens_per_second.mean
        ratios.append(tps / bare)
        print(f"{i + 1:>5} {bare:>12.1f} {tps:>12.1f} {tps / bare:>7.3f}")
    print(
        f"median ratio study-subprocess/bare-process: {statistics.median(ratios):.3f} "
        f"(batch {args.batch_size}, {args.new_tokens} new tokens, {args.model})"
    )


if __name__ == "__main__":
    main()
