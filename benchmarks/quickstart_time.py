"""Wall time of the quickstart (`llem run`, no arguments) on an idle machine and with one core
kept busy by another process, alternated (idle, busy, idle, busy, ...) so drift hits both.

Each run starts in a fresh directory with a fresh cache holding only the already-built
builtin models (so the idle baseline is measured, as on a first run, and nothing else is
reused). Prints per run: wall seconds, warmup seconds / requests / how it ended, and the load
average; then the median of each condition.

    PYTHONPATH=src python benchmarks/quickstart_time.py [--rounds 2] [--models-from DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUSY_LOOP = "while True: pass"


def default_models() -> Path:
    root = Path(os.environ.get("LLEM_CACHE_DIR", Path.home() / ".cache" / "llenergymeasure"))
    return root / "models"


def quickstart(models: Path, busy: bool) -> dict[str, object]:
    """One `llem run` in a fresh directory; a busy-loop process beside it when ``busy``."""
    work = Path(tempfile.mkdtemp(prefix="llem-quickstart-"))
    cache = work / "cache"
    cache.mkdir()
    if models.is_dir():
        (cache / "models").symlink_to(models.resolve())
    env = {**os.environ, "LLEM_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
    hog = subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) if busy else None
    try:
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "llenergymeasure.cli.main", "run", "--quiet"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - start
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    row: dict[str, object] = {
        "condition": "one core busy" if busy else "idle",
        "wall_sec": wall,
        "exit": done.returncode,
        "load_1min": os.getloadavg()[0],
    }
    results = list(work.glob("results/*/result.json"))
    if results:
        data = json.loads(results[0].read_text())
        warmup = data["warmup"][0]
        row.update(
            warmup_sec=warmup.get("elapsed_sec"),
            warmup_requests=warmup["iterations_completed"],
            warmup_stopped_by=warmup.get("stopped_by"),
            window_sec=data["inference"]["inference_time_sec"],
        )
    else:
        row["stderr_tail"] = done.stderr[-400:]
    shutil.rmtree(work, ignore_errors=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--models-from", type=Path, default=default_models())
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}; models from {args.models_from}")
    rows = []
    for i in range(args.rounds):
        for busy in (False, True):
            row = quickstart(args.models_from, busy)
            rows.append(row)
            print(f"round {i + 1}: " + json.dumps(row, default=str), flush=True)
    for condition in ("idle", "one core busy"):
        walls = [r["wall_sec"] for r in rows if r["condition"] == condition]
        print(f"{condition}: median {statistics.median(walls):.1f} s over {len(walls)} run(s)")


if __name__ == "__main__":
    main()
