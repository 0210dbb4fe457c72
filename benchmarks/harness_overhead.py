"""Harness overhead: tokens/s of the measured window against a bare ``model.generate`` loop.

One process, the model loaded once, the same padded batches on the device. Each paired round
runs the bare loop and the harness's own window code (``measure.experiment._measurement_window``
with the energy meter and the telemetry thread running, as in ``llem run``) on the *same batch*
(round i uses batch i mod n), in alternating order so that drift hits both alike. A round is
one batch rather than a whole pass because on a shared machine the speed drifts within a
second: pairs a quarter of a second apart cancel more of it, and four times as many fit in the
time (``--grain pass`` pairs whole passes instead). A one-batch window pays the meter's edges
and the telemetry thread's start and stop once per batch instead of once per run, so the
figure is, if anything, pessimistic. Rounds are added until the 95% interval of the ratio is
within +-2% (``--target``) or the time cap is reached (see ``_paired.py``). Goal: >= 0.99.

``--clock cpu`` divides by the process's CPU time (all its threads, the telemetry thread
included) instead of wall time: steadier when other work shares the cores, and an upper bound
of the cost in wall time whenever the harness's threads can run beside generation.

``--parts`` also measures the harness with parts switched off, each paired with the bare loop:

- ``engine``: ``engine.generate`` alone (per-step timestamps through the streamer, the host
  copy of the generated ids, token counting), no meter, no telemetry thread;
- ``window``: the measurement window with the meter's edges (device sync, counter reads), no
  telemetry thread;
- ``full``: the window with the telemetry thread sampling every ``telemetry_interval_sec``.

    python benchmarks/harness_overhead.py [--parts] [--max-sec 240] [--batch-size 8]
        [--new-tokens 64] [--grain batch|pass] [--clock wall|cpu] [--threads N] [--target 0.02]
        [--max-rounds 200]
        [--with-progress] [--save]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _bare import bare_tokens_per_second
from _paired import CLOCKS, RatioEstimate, run_paired, save_estimates

from llenergymeasure.threads import prefer_passive_omp_wait

prefer_passive_omp_wait()  # as `llem run` does, before torch is imported

from llenergymeasure.config.experiment import ExperimentConfig  # noqa: E402

#: What each harness variant runs, paired with the bare loop.
VARIANTS: dict[str, str] = {
    "engine": "engine.generate alone (timestamps, host copy)",
    "window": "window with meter edges, no telemetry",
    "full": "the harness as `llem run` measures",
}


class Harness:
    """The engine and meter of one experiment, driven window by window."""

    def __init__(self, config: ExperimentConfig, with_progress: bool, clock: str) -> None:
        from llenergymeasure.energy import create_meter
        from llenergymeasure.measure.experiment import create_engine
        from llenergymeasure.measure.prompts import batched, load_prompt_ids

        self.config = config
        self.clock = CLOCKS[clock]
        self.engine = create_engine(config)
        self.engine.load()
        ids, _ = load_prompt_ids(config, self.engine)
        self.batches = [self.engine.prepare(b) for b in batched(ids, config.batch_size)]
        self.meter = create_meter(
            config.energy, gpu_indices=self.engine.gpu_indices(), include_host=True
        )
        self.reporter = self._reporter(with_progress)

    def _reporter(self, with_progress: bool) -> Any:
        from llenergymeasure.measure.progress import NullReporter

        if not with_progress:
            return NullReporter()
        from rich.console import Console

        from llenergymeasure.cli.run_cmd import RichReporter

        sink = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the benchmark
        reporter = RichReporter(Console(file=sink, force_terminal=True, width=100))
        reporter.__enter__()
        reporter.stage("measurement", total=len(self.batches))
        return reporter

    def bare_inputs(self) -> list[tuple[Any, Any]]:
        return [b.inputs for b in self.batches]

    def engine_only(self, batches: list[Any]) -> float:
        start = self.clock()
        tokens = sum(sum(self.engine.generate(b).output_tokens) for b in batches)
        return tokens / (self.clock() - start)

    def window(self, batches: list[Any], telemetry: bool) -> float:
        from llenergymeasure.energy import TelemetrySampler
        from llenergymeasure.measure.experiment import _measurement_window

        sampler = TelemetrySampler(self.meter, interval_sec=self.config.telemetry_interval_sec)
        if telemetry:
            sampler.start()
        try:
            start = self.clock()
            outputs, *_ = _measurement_window(self.engine, batches, self.meter, self.reporter)
            elapsed = self.clock() - start
        finally:
            if telemetry:
                sampler.stop()
        return sum(sum(o.output_tokens) for o in outputs) / elapsed

    def _chosen(self, i: int, grain: str) -> slice:
        n = len(self.batches)
        return slice(i % n, i % n + 1) if grain == "batch" else slice(0, n)

    def bare(self, i: int, new_tokens: int, grain: str) -> float:
        """Tokens/s of the bare ``generate`` loop on round ``i``'s batches."""
        pad_id = self.engine.tokenizer.pad_token_id
        inputs = [b.inputs for b in self.batches[self._chosen(i, grain)]]
        return bare_tokens_per_second(
            self.engine.model, inputs, pad_id, new_tokens, clock=self.clock
        )

    def measured(self, variant: str, i: int, grain: str) -> float:
        """Tokens/s of one harness variant (a key of ``VARIANTS``) on round ``i``'s batches."""
        batches = self.batches[self._chosen(i, grain)]
        if variant == "engine":
            return self.engine_only(batches)
        return self.window(batches, telemetry=variant == "full")

    def warm(self, new_tokens: int, grain: str, rounds: int | None = None) -> None:
        """Run both paths (allocator, kernels) before any pair counts: every batch twice by
        default."""
        for i in range(2 * len(self.batches) if rounds is None else rounds):
            self.bare(i, new_tokens, grain)
            self.measured("full", i, grain)

    def pair_runner(
        self, variant: str, new_tokens: int, grain: str
    ) -> Callable[[int], tuple[float, float]]:
        """``one_pair(i) -> (harness, bare)`` for ``run_paired``, alternating which goes first
        (with one batch per round, each batch is seen in both orders)."""
        n = len(self.batches)

        def one_pair(i: int) -> tuple[float, float]:
            if (i // n) % 2 if grain == "batch" else i % 2:
                b = self.bare(i, new_tokens, grain)
                return self.measured(variant, i, grain), b
            m = self.measured(variant, i, grain)
            return m, self.bare(i, new_tokens, grain)

        return one_pair

    def close(self) -> None:
        self.meter.close()
        self.engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--n-prompts", type=int, default=32)
    parser.add_argument("--model", default="builtin:tiny-llama")
    parser.add_argument("--max-sec", type=float, default=240.0, help="time cap per figure")
    parser.add_argument("--target", type=float, default=0.02, help="interval half-width goal")
    parser.add_argument("--max-rounds", type=int, default=200, help="pairs per figure at most")
    parser.add_argument("--parts", action="store_true", help="also measure with parts off")
    parser.add_argument(
        "--grain", choices=("batch", "pass"), default="batch", help="what one paired round runs"
    )
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: as llem run)")
    parser.add_argument("--with-progress", action="store_true", help="draw the CLI's bars")
    parser.add_argument("--save", action="store_true", help="write benchmarks/results/*.json")
    args = parser.parse_args()

    config = ExperimentConfig(
        model=args.model,
        batch_size=args.batch_size,
        n_prompts=args.n_prompts,
        max_output_tokens=args.new_tokens,
        baseline_sec=0,
        warmup={"mode": "fixed", "n": 3},
        output_dir=Path(tempfile.mkdtemp(prefix="llem-bench-")),
    )
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    harness = Harness(config, args.with_progress, args.clock)
    harness.warm(args.new_tokens, args.grain)
    chosen = ["engine", "window", "full"] if args.parts else ["full"]
    estimates: list[RatioEstimate] = []
    for key in chosen:
        estimate = run_paired(
            f"harness/bare [{key}]",
            harness.pair_runner(key, args.new_tokens, args.grain),
            target=args.target,
            max_sec=args.max_sec,
            max_rounds=args.max_rounds,
            meaning=VARIANTS[key],
        )
        estimates.append(estimate)
        print(estimate.line(), flush=True)
    harness.close()

    mode = "with progress bars" if args.with_progress else "no progress bars"
    setup = (
        f"{mode}; batch {args.batch_size}, {args.new_tokens} new tokens, {args.n_prompts} "
        f"prompts, {args.model}; one {args.grain} per round; {args.clock} clock; "
        f"{torch.get_num_threads()} torch thread(s)"
    )
    print(f"\nharness/bare tokens/s ({setup}):")
    for e in estimates:
        print(f"  {e.line()}  -- {e.meaning}")
    if args.save:
        name = "harness_overhead_parts" if args.parts else "harness_overhead"
        command = "python " + " ".join(sys.argv)
        what = (
            "tokens/s of the measured window vs a bare `model.generate` loop, paired in one "
            f"process ({setup})"
        )
        print(f"saved {save_estimates(name, command, estimates, what=what)}")


if __name__ == "__main__":
    main()
