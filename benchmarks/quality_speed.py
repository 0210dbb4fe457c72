"""Quality evaluation speed: tokens scored per second by llem against a bare forward-pass loop.

Both score the same windows of the same text with the same model. llem's path is the measured
run's (NLL, KL against cached reference scores, top-1 agreement); the bare loop only calls the
model, for every logit of each window. llem asks a float model only for the logits of the
positions it scores (``logits_to_keep``; the first ``window - stride`` positions of every
window after the first are context only), a saving a plain loop does not make:
``--lean-bare`` gives the bare loop the same saving, so the ratio then shows llem's scoring
overhead alone. Rounds are paired and alternate which goes first; the ratio llem / bare
(goal >= 0.9) is estimated by ``_paired.run_paired``.

Run from the repository root:
    PYTHONPATH=src HF_HUB_OFFLINE=1 nice python benchmarks/quality_speed.py --threads 1 [--save]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _paired import run_paired, save_estimates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin:shakespeare")
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--max-sec", type=float, default=180.0, help="time cap of the rounds")
    parser.add_argument("--save", action="store_true", help="write benchmarks/results/*.json")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: perf_counter; cpu: process CPU time (steadier on a shared machine)",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument(
        "--lean-bare",
        action="store_true",
        help="the bare loop also computes only the scored positions' logits",
    )
    args = parser.parse_args()

    import torch
    import transformers

    if args.threads:
        torch.set_num_threads(args.threads)

    from llenergymeasure.config.experiment import ExperimentConfig
    from llenergymeasure.quality.evaluate import model_source, plan
    from llenergymeasure.quality.scoring import score_measured, score_reference
    from llenergymeasure.quality.text import load_reference_text

    config = ExperimentConfig(
        model=args.model,
        quality={"enabled": True, "window": args.window, "max_tokens": args.tokens},
    )
    source = model_source(config)
    tokenizer = transformers.AutoTokenizer.from_pretrained(source)
    model = transformers.AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32).eval()
    text = load_reference_text(config.quality).text
    ids, windows, window, stride = plan(config, tokenizer, model.config, text)
    reference = score_reference(model, ids, windows, config.quality.kl_top_k)
    scored = len(ids) - 1
    tensor = torch.tensor(ids)

    clock = time.process_time if args.clock == "cpu" else time.perf_counter

    def llem() -> float:
        start = clock()
        score_measured(model, ids, windows, reference)
        return scored / (clock() - start)

    def bare() -> float:
        start = clock()
        with torch.inference_mode():
            for w in windows:
                rows = w.end - w.first_scored + 1  # as llem: from the first predictor on
                keep = {"logits_to_keep": rows} if args.lean_bare else {}
                model(input_ids=tensor[w.begin : w.end].unsqueeze(0), use_cache=False, **keep)
        return scored / (clock() - start)

    llem(), bare()  # warm up both

    def one_pair(i: int) -> tuple[float, float]:
        if i % 2:
            b = bare()
            return llem(), b
        return llem(), bare()

    estimate = run_paired(
        "quality scoring / bare forward" + (" (scored logits only)" if args.lean_bare else ""),
        one_pair,
        max_sec=args.max_sec,
        meaning="tokens scored per second, llem's quality pass / a bare forward-pass loop",
    )
    print(
        f"{args.model}: {scored} tokens, {len(windows)} windows of {window} (stride {stride}), "
        f"{args.clock} clock, {torch.get_num_threads()} thread(s)"
    )
    print(estimate.line())
    print(f"goal >= 0.9: {'met' if estimate.ratio >= 0.9 else 'NOT met'}")
    if args.save:
        command = "PYTHONPATH=src python " + " ".join(sys.argv)
        what = "quality pass tokens/s vs bare forward loop (builtin:shakespeare)"
        name = "quality_speed_lean" if args.lean_bare else "quality_speed"
        print(f"saved {save_estimates(name, command, [estimate], what=what)}")


if __name__ == "__main__":
    main()
