"""The serving client's own lag: can it keep an open-loop schedule at a high request rate?

A fast scripted server (one token, no delay) runs in its own process on 127.0.0.1; the client
sends a seeded Poisson schedule of ``--requests`` requests at ``--rate`` requests/s and records,
per request, how late it started against its schedule. Each round is one such schedule (a new
seed per round). Two figures:

- the achieved dispatch rate over the schedule's own rate, paired per round (``_paired``: rounds
  are added until its 95% interval is within +-2% or the time cap);
- the p99 of the client's lag, per round, with a bootstrap 95% interval over the rounds, and
  the client's CPU time per request.

Goal: >= 200 requests/s with p99 lag under 5 ms on the 2-core machine.

    PYTHONPATH=src:. python benchmarks/serving_client.py [--rate 200] [--requests 1000]
        [--min-rounds 12] [--max-sec 120] [--save]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(ROOT / "benchmarks")]

from _paired import run_paired, save_estimates  # noqa: E402
from tests.fakes.scripted_server import free_port  # noqa: E402

from llenergymeasure.serving.arrivals import arrival_offsets_sec  # noqa: E402
from llenergymeasure.serving.client import RequestSpec, Target, run_load  # noqa: E402


def bootstrap_mean(values: list[float], seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``values`` and its 95% percentile-bootstrap interval."""
    rng = np.random.default_rng(seed)
    boots = rng.choice(values, size=(4000, len(values))).mean(axis=1)
    low, high = np.percentile(boots, [2.5, 97.5])
    return float(np.mean(values)), float(low), float(high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--min-rounds", type=int, default=12)
    parser.add_argument("--max-sec", type=float, default=120.0, help="time cap of the rounds")
    parser.add_argument("--save", action="store_true", help="write benchmarks/results/*.json")
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.scripted_server", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        target = Target(f"http://127.0.0.1:{port}", "scripted")
        specs = [RequestSpec("p", 1)] * args.requests
        p99s: list[float] = []
        cpu_ms: list[float] = []
        failed = 0

        def one_round(i: int) -> tuple[float, float]:
            nonlocal failed
            offsets = arrival_offsets_sec(args.requests, args.rate, seed=i)
            cpu_start = time.process_time()
            _, records = asyncio.run(run_load(target, specs, offsets))
            cpu_ms.append((time.process_time() - cpu_start) / len(records) * 1e3)
            lags = np.array([r.lag_sec for r in records]) * 1e3
            p99s.append(float(np.percentile(lags, 99)))
            failed += sum(not r.ok for r in records)
            dispatched = [r.dispatch_sec for r in records]
            achieved = (len(records) - 1) / (max(dispatched) - min(dispatched))
            scheduled = (len(records) - 1) / (max(offsets) - min(offsets))
            print(
                f"  round {i + 1}: lag p50 {np.percentile(lags, 50):.2f} ms, "
                f"p99 {p99s[-1]:.2f} ms, client CPU {cpu_ms[-1]:.2f} ms/request",
                flush=True,
            )
            return achieved, scheduled

        estimate = run_paired(
            f"dispatched/scheduled rate at {args.rate:.0f} req/s",
            one_round,
            min_rounds=args.min_rounds,
            max_sec=args.max_sec,
            meaning="the client's achieved send rate over its schedule's own rate",
        )
        p99, low, high = bootstrap_mean(p99s)
        cpu = float(np.mean(cpu_ms))
        verdict = "met" if high < 5 else "NOT met"
        lag_note = (
            f"p99 lag: **{p99:.2f} ms** [{low:.2f}-{high:.2f}] (mean of {len(p99s)} rounds' p99 of "
            f"{args.requests} requests; goal < 5 ms: {verdict}); client CPU {cpu:.2f} ms/request"
        )
        print(estimate.line())
        print(lag_note.replace("**", ""))
        if failed:
            print(f"{failed} requests failed")
        if args.save:
            command = "PYTHONPATH=src:. python " + " ".join(sys.argv)
            what = (
                f"open-loop client against a local one-token server, Poisson at {args.rate:.0f} "
                "req/s, on the same 2 cores as the server"
            )
            saved = save_estimates("serving_client", command, [estimate], what=what,
                                   notes=[lag_note])  # fmt: skip
            print(f"saved {saved}")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
