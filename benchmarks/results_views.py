"""How long the result views take as a study grows: load, export, report (one run, printed).

Builds synthetic studies with the test factories (each result with a 10 s telemetry series at
10 Hz), then times each step. Run from the repository root:

    PYTHONPATH=src:. python benchmarks/results_views.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tests import factories

from llenergymeasure.results.collection import load_results
from llenergymeasure.results.export import write_export
from llenergymeasure.results.report import build_report

STUDIES = (((1, 4, 16), 3), ((1, 2, 4, 8, 16, 32), 5), (tuple(range(1, 31)), 3))


def measure(root: Path) -> tuple[int, float, float, float, float, float]:
    """(results, load s, CSV s, Parquet s, report s, report MB) for the study under ``root``."""
    t0 = time.perf_counter()
    found = load_results(root)
    t1 = time.perf_counter()
    write_export(found.results, root / "x.csv", "csv")
    t2 = time.perf_counter()
    write_export(found.results, root / "x.parquet", "parquet")
    t3 = time.perf_counter()
    report = build_report(found)
    t4 = time.perf_counter()
    return len(found), t1 - t0, t2 - t1, t3 - t2, t4 - t3, len(report.html.encode()) / 1e6


def main() -> None:
    """Print seconds per step for studies of 9, 30 and 90 results."""
    print(f"{'results':>8} {'load s':>8} {'csv s':>8} {'parquet s':>10} {'report s':>9} {'MB':>6}")
    for batches, cycles in STUDIES:
        with tempfile.TemporaryDirectory() as tmp:
            factories.write_study(Path(tmp), batch_sizes=batches, cycles=cycles)
            n, load_s, csv_s, pq_s, report_s, size_mb = measure(Path(tmp))
        print(f"{n:>8} {load_s:>8.3f} {csv_s:>8.3f} {pq_s:>10.3f} {report_s:>9.2f} {size_mb:>6.2f}")


if __name__ == "__main__":
    main()
