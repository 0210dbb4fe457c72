"""The report of a small study rendered by headless Chromium: not blank, every section there.

Needs Debian's `chromium` (CI: `apt-get install -y chromium`); skipped, saying so, without it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llenergymeasure.results.report import SECTIONS, write_report
from tests import factories as f
from tests.headless_chromium import dump_dom, find_chromium, screenshot

pytestmark = pytest.mark.skipif(
    find_chromium() is None,
    reason="chromium is not installed (Debian: apt-get install -y chromium)",
)

#: Marks, once the page has loaded, how wide each image decoded (0 = broken image).
_PROBE = (
    "<script>window.addEventListener('load', () => document.body.setAttribute("
    "'data-image-widths', Array.from(document.images).map(i => i.naturalWidth).join(',')));"
    "</script>"
)


def _pixels(png: Path) -> tuple[int, float]:
    """(distinct colours, share of pixels that are not white) of a PNG screenshot."""
    import matplotlib.image
    import numpy as np

    rgb = (matplotlib.image.imread(png)[:, :, :3] * 255).round().astype(np.uint8)
    flat = rgb.reshape(-1, 3)
    colours = len(np.unique(flat.view(np.dtype((np.void, 3)))))
    not_white = float((flat < 245).any(axis=1).mean())
    return colours, not_white


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("study")
    f.write_study(root, batch_sizes=(1, 4, 16), cycles=2)
    (root / "broken").mkdir()
    (root / "broken" / "result.json").write_text("{")
    page = write_report(root, root / "report.html", max_telemetry=2)
    assert page.results == 6
    png = screenshot(root / "report.html", root / "report.png", 1280, 4000)
    return root / "report.html", png


def test_screenshot_is_not_blank(rendered: tuple[Path, Path]) -> None:
    _, png = rendered
    colours, not_white = _pixels(png)
    assert colours > 200, f"only {colours} colours: the page looks blank"
    assert not_white > 0.05, f"only {not_white:.1%} of the pixels are not white"


def test_rendered_dom_has_every_section_and_every_image_decodes(
    rendered: tuple[Path, Path], tmp_path: Path
) -> None:
    html, _ = rendered
    # The report itself has no script (and its CSP forbids one); the probe goes in a copy whose
    # CSP is dropped, so only the probe is added to what Chromium renders.
    probed = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html.read_text())
    copy = tmp_path / "probed.html"
    copy.write_text(probed.replace("</body>", _PROBE + "</body>"))
    dom = dump_dom(copy)
    for section_id, heading in SECTIONS:
        match = re.search(rf'<section id="{section_id}"><h2>([^<]*)</h2>', dom)
        assert match and match.group(1) == heading, section_id
    widths = re.search(r'data-image-widths="([^"]*)"', dom)
    assert widths, "the load probe did not run"
    decoded = [int(w) for w in widths.group(1).split(",")]
    assert len(decoded) == 5  # energy/throughput, batch size, 2 telemetry, warmup
    assert all(w > 300 for w in decoded), decoded
    assert "broken/result.json" in dom and "not valid JSON" in dom


def test_csp_blocks_anything_not_embedded(rendered: tuple[Path, Path], tmp_path: Path) -> None:
    html, _ = rendered
    # With the report's own CSP in place, a script injected into it does not run.
    copy = tmp_path / "csp.html"
    copy.write_text(html.read_text().replace("</body>", _PROBE + "</body>"))
    assert 'data-image-widths="' not in dump_dom(copy)
