"""Isolation overhead: tokens/s inside a study's experiment subprocess against a bare
``model.generate`` loop in a standalone process (same model, batch and prompts).

Paired rounds (bare process, study run; the order alternates) are added until the 95% interval
of the ratio is within +-2% or the time cap is hit. Goal: >= 0.97. A parent that stays busy
while its child measures (polling loops, spinning thread pools) slows the child severalfold on
a small machine; this shows ours does not. Both processes run with the OpenMP wait policy
llem sets (``llenergymeasure.threads``), so the ratio is the isolation's cost alone; that
policy's own cost on a quiet machine is in README ("CPU threads").

    python benchmarks/study_overhead.py [--max-sec 600] [--batch-size 8] [--new-tokens 64] [--save]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _paired import run_paired, save_estimates  # noqa: E402

BARE_SCRIPT = """
import json, sys
sys.path.insert(0, {here!r})
from llenergymeasure.threads import prefer_passive_omp_wait
prefer_passive_omp_wait()  # the OpenMP wait policy the study's child runs with
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
    parser.add_argument("--max-sec", type=float, default=600.0, help="time cap")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--n-prompts", type=int, default=32)
    parser.add_argument("--model", default="builtin:tiny-llama")
    parser.add_argument("--save", action="store_true", help="write benchmarks/results/*.json")
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

    def bare() -> float:
        done = subprocess.run(
            [sys.executable, "-c", BARE_SCRIPT.format(here=str(HERE), config=config_json)],
            capture_output=True,
            text=True,
            check=True,
        )
        return float(json.loads(done.stdout.strip().splitlines()[-1]))

    def study(i: int) -> float:
        result = run_study(StudyConfig(name=f"round{i}", base=base, output_dir=out))
        return result.summaries[0].tokens_per_second.mean

    def one_pair(i: int) -> tuple[float, float]:
        if i % 2:
            b = bare()
            return study(i), b
        s = study(i)
        return s, bare()

    estimate = run_paired(
        "study-subprocess/bare-process",
        one_pair,
        min_rounds=4,
        max_sec=args.max_sec,
        meaning="tokens/s inside a study's experiment subprocess / a standalone bare loop",
    )
    print(estimate.line())
    if args.save:
        what = (
            f"tokens/s inside a study's experiment subprocess vs a bare loop in a standalone "
            f"process (batch {args.batch_size}, {args.new_tokens} new tokens, {args.model})"
        )
        command = "python " + " ".join(sys.argv)
        print(f"saved {save_estimates('study_overhead', command, [estimate], what=what)}")


if __name__ == "__main__":
    main()
