"""Regenerate docs/report-example.png: `llem report` of a synthetic study, as Chromium shows it.

The study comes from the test factories (made-up figures, three batch sizes x three cycles, one
throttled run, one unconverged warmup, one damaged file), so the picture shows every section.
Run from the repository root (needs matplotlib and Debian's `chromium`):

    PYTHONPATH=src:. python docs/report_example.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import matplotlib.image
import numpy as np
from tests import factories
from tests.headless_chromium import screenshot

from llenergymeasure.results.report import write_report

OUTPUT = Path(__file__).resolve().parent / "report-example.png"


def main() -> None:
    """Build the study, write its report, screenshot it, trim the blank bottom."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "study"
        factories.write_study(root, batch_sizes=(1, 4, 16), cycles=3)
        (root / "bs4" / "interrupted").mkdir(parents=True)
        (root / "bs4" / "interrupted" / "result.json").write_text('{"schema_version": "1.0",')
        page = Path(tmp) / "report.html"
        write_report(root, page, max_telemetry=1, title="Example report (synthetic study data)")
        shot = screenshot(page, Path(tmp) / "shot.png", 1280, 5000)
        pixels = matplotlib.image.imread(shot)[:, :, :3]
        used = np.nonzero((pixels < 0.96).any(axis=(1, 2)))[0]
        bottom = min(len(pixels), int(used[-1]) + 40)
        matplotlib.image.imsave(OUTPUT, pixels[:bottom])
    print(f"wrote {OUTPUT} (1280 x {bottom})")


if __name__ == "__main__":
    main()
