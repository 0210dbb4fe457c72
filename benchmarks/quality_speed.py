"""Quality evaluation speed: tokens scored per second by llem against a bare forward-pass loop.

Both score the same windows of the same text with the same model. llem's path is the measured
run's (NLL, KL against cached reference scores, top-1 agreement); the bare loop only calls the
model. Rounds are paired and alternate which goes first; the ratio is llem / bare (goal >= 0.9).

Run from the repository root:
    PYTHONPATH=src HF_HUB_OFFLINE=1 nice python benchmarks/quality_speed.py [--model M]
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin:shakespeare")
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: perf_counter; cpu: process CPU time (steadier on a shared machine)",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
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
                model(input_ids=tensor[w.begin : w.end].unsqueeze(0), use_cache=False)
        return scored / (clock() - start)

    llem(), bare()  # warm up both
    ratios, llem_rates, bare_rates = [], [], []
    for round_ in range(args.rounds):
        if round_ % 2:
            b, a = bare(), llem()
        else:
            a, b = llem(), bare()
        llem_rates.append(a)
        bare_rates.append(b)
        ratios.append(a / b)
    median = statistics.median(ratios)
    print(
        f"{args.model}: {scored} tokens, {len(windows)} windows of {window} (stride {stride}), "
        f"{args.rounds} paired rounds, {args.clock} clock, {torch.get_num_threads()} thread(s)"
    )
    print(f"  llem scoring : {statistics.median(llem_rates):9.0f} tokens/s (median)")
    print(f"  bare forward : {statistics.median(bare_rates):9.0f} tokens/s (median)")
    print(
        f"  ratio llem/bare: median {median:.3f} (min {min(ratios):.3f}, max {max(ratios):.3f}); "
        f"goal >= 0.9: {'met' if median >= 0.9 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
