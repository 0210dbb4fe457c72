"""Rewrite README's benchmark table from the figures the benchmarks saved (never by hand).

Each benchmark run with ``--save`` leaves ``benchmarks/results/<name>.json``; this script turns
them into the table between README's ``<!-- benchmarks:begin -->`` and ``<!-- benchmarks:end -->``
markers. ``--check`` exits 1 when README's table differs from what the files say.

    python benchmarks/update_readme.py [--check]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
BEGIN, END = "<!-- benchmarks:begin -->", "<!-- benchmarks:end -->"


def figure(estimate: dict) -> str:
    """One estimate as `ratio [low-high]`, its rounds and whether it met the +-target."""
    stop = (
        f"within +-{estimate['target']:.0%}"
        if estimate["stopped_by"] == "precision"
        else f"time cap, +-{estimate['half_width']:.1%}"
    )
    # a small share (the telemetry thread's CPU) as a percentage, else 0.004 [0.004-0.005]
    spec = ".3%" if estimate["ratio"] < 0.05 else ".3f"
    return (
        f"{estimate['name']}: **{estimate['ratio']:{spec}}** "
        f"[{estimate['low']:{spec}}-{estimate['high']:{spec}}], {estimate['rounds']} rounds "
        f"({stop})"
    )


def _relative(command: str) -> str:
    """The command as run from the repository root: saved commands hold the absolute path of
    the checkout they ran in (``/any/where/benchmarks/x.py`` -> ``benchmarks/x.py``)."""
    return re.sub(r"(?<![\w.])/\S*?/(benchmarks/)", r"\1", command)


def table(results_dir: Path = RESULTS_DIR) -> str:
    rows = [
        "| command | what | measured (95% CI from paired rounds) | when, where |",
        "|---|---|---|---|",
    ]
    for path in sorted(results_dir.glob("*.json")):
        data = json.loads(path.read_text())
        figures = "<br>".join([*(figure(e) for e in data["estimates"]), *data.get("notes", [])])
        rows.append(
            f"| `{_relative(data['command'])}` | {data['what']} | {figures} | {data['date']}, "
            f"{data['machine']} |"
        )
    return "\n".join(rows)


def rewrite(readme_text: str, new_table: str) -> str:
    if BEGIN not in readme_text or END not in readme_text:
        raise SystemExit(f"README has no {BEGIN} ... {END} block")
    head, rest = readme_text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{new_table}\n{END}{tail}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README is stale")
    args = parser.parse_args()
    text = README.read_text(encoding="utf-8")
    updated = rewrite(text, table())
    if args.check:
        if updated != text:
            stale = "README's benchmark table differs from benchmarks/results/*.json"
            print(stale, file=sys.stderr)
            sys.exit(1)
        print("README's benchmark table is current")
        return
    README.write_text(updated, encoding="utf-8")
    print(f"rewrote the benchmark table in {README}")


if __name__ == "__main__":
    main()
