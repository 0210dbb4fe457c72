"""CLI start time: `llem --help` against a bare `python -c pass`, in paired rounds.

Each round starts both commands once, in alternating order; rounds are added until the 95%
interval of the ratio is within +-2% or the time cap is reached. ``--importtime`` also prints
where `llem --help`'s import time goes (``python -X importtime``), by top-level package.

    python benchmarks/cli_startup.py [--max-sec 60] [--importtime] [--save]
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _paired import run_paired, save_estimates

HELP = [sys.executable, "-m", "llenergymeasure.cli.main", "--help"]
BARE = [sys.executable, "-c", "pass"]


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def import_breakdown(top: int = 12) -> list[tuple[str, float]]:
    """Self import time (ms) of `llem --help` summed per top-level package, largest first."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *HELP[1:]], capture_output=True, text=True, check=True
    )
    per_package: collections.Counter[str] = collections.Counter()
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, self_us, _, name = (part.strip() for part in line.replace(":", "|", 1).split("|"))
        if self_us.isdigit():
            per_package[name.split(".")[0]] += int(self_us) / 1e3
    return per_package.most_common(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-sec", type=float, default=60.0)
    parser.add_argument("--importtime", action="store_true")
    parser.add_argument("--save", action="store_true", help="write benchmarks/results/*.json")
    args = parser.parse_args()
    timed(HELP)  # warm the file cache

    def one_pair(i: int) -> tuple[float, float]:
        if i % 2:
            bare = timed(BARE)
            return timed(HELP), bare
        llem = timed(HELP)
        return llem, timed(BARE)

    estimate = run_paired(
        "llem --help / python -c pass",
        one_pair,
        max_sec=args.max_sec,
        verbose=False,
        meaning="start-up time ratio",
    )
    llem_ms = sorted(a for a, _ in estimate.pairs)[len(estimate.pairs) // 2] * 1e3
    bare_ms = sorted(b for _, b in estimate.pairs)[len(estimate.pairs) // 2] * 1e3
    print(f"median: llem --help {llem_ms:.0f} ms, python -c pass {bare_ms:.0f} ms")
    print(estimate.line())
    if args.importtime:
        print("import time of `llem --help` by top-level package (self ms, one run):")
        for name, ms in import_breakdown():
            print(f"  {name:<24} {ms:8.1f}")
    if args.save:
        command = "python " + " ".join(sys.argv)
        what = f"`llem --help` vs `python -c pass` (medians {llem_ms:.0f} ms vs {bare_ms:.0f} ms)"
        print(f"saved {save_estimates('cli_startup', command, [estimate], what=what)}")


if __name__ == "__main__":
    main()
