"""Run every ratio benchmark twice in a row and say whether the two intervals agree.

For each benchmark: two runs with ``--save`` one after the other; after each, the figures it
saved in ``benchmarks/results/<name>.json`` are kept. A figure *holds* when its two 95%
intervals overlap and each run either reached its +-target or says it hit its time cap. The
second run's file stays as the saved figure, and README's table is regenerated from all of them
(``update_readme.py``). Prints one line per figure and writes the whole comparison to
``benchmarks/results/run_twice.log`` beside the benchmarks' own output.

    PYTHONPATH=src:. python benchmarks/run_twice.py [--only harness_overhead_parts ...]
        [--cap-scale 1.0]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"

#: name of the saved file -> the benchmark's arguments (time caps in seconds, per figure)
BENCHMARKS: dict[str, list[str]] = {
    "cli_startup": ["cli_startup.py", "--max-sec", "40"],
    "telemetry_overhead": ["telemetry_overhead.py", "--max-sec", "60"],
    "telemetry_overhead_constant": [
        "telemetry_overhead.py",
        "--fake",
        "constant",
        "--max-sec",
        "60",
    ],
    "serving_client": ["serving_client.py", "--max-sec", "90"],
    "quality_speed": ["quality_speed.py", "--threads", "1", "--max-sec", "90"],
    "quality_speed_lean": ["quality_speed.py", "--threads", "1", "--lean-bare", "--max-sec", "90"],
    "harness_overhead_parts": ["harness_overhead.py", "--parts", "--max-sec", "120"],
    "harness_overhead": [
        "harness_overhead.py",
        "--max-sec",
        "600",
        "--max-rounds",
        "2000",
        "--target",
        "0.01",
    ],
    "study_overhead": ["study_overhead.py", "--max-sec", "150"],
}


def _scaled(args: list[str], scale: float) -> list[str]:
    out = list(args)
    for i, a in enumerate(out[:-1]):
        if a == "--max-sec":
            out[i + 1] = f"{float(out[i + 1]) * scale:g}"
    return out


def run(name: str, args: list[str], log: Path) -> dict:
    env = os.environ | {"PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, str(HERE / args[0]), *args[1:], "--save"]
    with log.open("a") as sink:
        sink.write(f"\n$ {' '.join(cmd)}\n")
        sink.flush()
        done = subprocess.run(cmd, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
    if done.returncode:
        raise SystemExit(f"{name} failed (exit {done.returncode}); see {log}")
    return json.loads((RESULTS / f"{name}.json").read_text())


def verdict(first: dict, second: dict) -> str:
    overlap = first["low"] <= second["high"] and second["low"] <= first["high"]
    stops = [
        f"+-{e['half_width']:.1%} ({'within' if e['stopped_by'] == 'precision' else 'cap'})"
        for e in (first, second)
    ]
    return (
        f"{first['name']}: {first['ratio']:.3f} [{first['low']:.3f}-{first['high']:.3f}] "
        f"then {second['ratio']:.3f} [{second['low']:.3f}-{second['high']:.3f}]; "
        f"{' / '.join(stops)}; intervals {'overlap' if overlap else 'DO NOT overlap'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), default=None)
    parser.add_argument("--cap-scale", type=float, default=1.0, help="multiply every time cap")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    log = RESULTS / "run_twice.log"
    if not args.only:  # a full pass starts the log afresh; --only adds to it
        log.write_text("")
    lines = []
    for name in args.only or BENCHMARKS:
        bench = _scaled(BENCHMARKS[name], args.cap_scale)
        print(f"{name}: first run ...", flush=True)
        first = run(name, bench, log)
        print(f"{name}: second run ...", flush=True)
        second = run(name, bench, log)
        for a, b in zip(first["estimates"], second["estimates"], strict=True):
            lines.append(verdict(a, b))
            print("  " + lines[-1], flush=True)
        for note_a, note_b in zip(first.get("notes", []), second.get("notes", []), strict=True):
            lines.append(f"{name} notes: {note_a} | then {note_b}".replace("**", ""))
            print("  " + lines[-1], flush=True)
    with log.open("a") as sink:
        sink.write("\n# summary\n" + "\n".join(lines) + "\n")
    subprocess.run([sys.executable, str(HERE / "update_readme.py")], check=True)


if __name__ == "__main__":
    main()
