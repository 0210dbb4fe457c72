"""The serving client's own lag: can it keep an open-loop schedule at a high request rate?

A fast scripted server (one token, no delay) runs in its own process on 127.0.0.1; the client
sends a Poisson schedule at ``--rate`` requests/s and records, per request, how late it was
dispatched against its schedule. Repeated for ``--rounds`` rounds; prints the achieved rate and
the p50/p99 lag of each round and of all requests pooled, with a bootstrap 95% interval of the
p99 over rounds. Goal: >= 200 requests/s with p99 lag under 5 ms on the 2-core machine.

    PYTHONPATH=src:. python benchmarks/serving_client.py [--rate 200] [--requests 2000] [--rounds 5]
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
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.fakes.scripted_server import free_port  # noqa: E402

from llenergymeasure.serving.arrivals import arrival_offsets_sec  # noqa: E402
from llenergymeasure.serving.client import RequestSpec, Target, run_load  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
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
        p99s, lags_all = [], []
        for i in range(args.rounds):
            offsets = arrival_offsets_sec(args.requests, args.rate, seed=i)
            start = time.perf_counter()
            _, records = asyncio.run(run_load(target, specs, offsets))
            wall = time.perf_counter() - start
            lags = np.array([r.lag_sec for r in records]) * 1e3
            failed = sum(not r.ok for r in records)
            dispatched = max(r.dispatch_sec for r in records) - min(r.dispatch_sec for r in records)
            p50, p99 = np.percentile(lags, [50, 99])
            p99s.append(p99)
            lags_all.extend(lags)
            print(
                f"round {i + 1}: {len(records) / dispatched:6.1f} req/s dispatched "
                f"(scheduled {args.rate:.0f}), lag p50 {p50:.2f} ms p99 {p99:.2f} ms, "
                f"{failed} failed, {wall:.1f} s"
            )
        rng = np.random.default_rng(0)
        boots = [np.mean(rng.choice(p99s, len(p99s))) for _ in range(2000)]
        low, high = np.percentile(boots, [2.5, 97.5])
        pooled = np.percentile(lags_all, 99)
        verdict = "met" if high < 5 else "NOT met"
        print(
            f"p99 lag over {args.rounds} rounds of {args.requests} requests at {args.rate:.0f}/s: "
            f"mean {np.mean(p99s):.2f} ms [95% CI {low:.2f}-{high:.2f}], pooled {pooled:.2f} ms "
            f"-> goal p99 < 5 ms: {verdict}"
        )
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
