"""The HTML report: every section, self-contained, honest about what it could not draw."""

from __future__ import annotations

import base64
import re
import sys
from html import escape as html_escape
from html.parser import HTMLParser
from pathlib import Path

import pytest

from llenergymeasure.domain.study import NO_OUTPUT_RULE
from llenergymeasure.results.collection import load_results
from llenergymeasure.results.io import save_result
from llenergymeasure.results.plots import ReportDependencyError
from llenergymeasure.results.report import (
    SECTIONS,
    Report,
    build_report,
    report_warnings,
    write_report,
)
from tests import factories as f

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class _Page(HTMLParser):
    """Collects section ids, their headings, image sources and every URL-bearing attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, str] = {}
        self.images: dict[str, list[str]] = {}
        self.urls: list[str] = []
        self._section: str | None = None
        self._in_h2 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "section":
            self._section = values["id"]
            self.sections[self._section or ""] = ""
        self._in_h2 = tag == "h2"
        if tag == "img" and self._section:
            self.images.setdefault(self._section, []).append(values["src"] or "")
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "action", "srcset")]

    def handle_data(self, data: str) -> None:
        if self._in_h2 and self._section:
            self.sections[self._section] += data

    def handle_endtag(self, tag: str) -> None:
        self._in_h2 = self._in_h2 and tag != "h2"


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report") / "study"
    f.write_study(root, batch_sizes=(1, 4, 16), cycles=3)
    broken = root / "bs4" / "interrupted" / "result.json"
    broken.parent.mkdir(parents=True)
    broken.write_text('{"schema_version": "1.0", "experiment_id": "half')
    return root


@pytest.fixture(scope="module")
def study_report(study: Path) -> tuple[Report, Path]:
    out = study.parent / "report.html"
    return write_report(study, out), out


def test_study_report_has_every_section_and_only_embedded_images(
    study_report: tuple[Report, Path],
) -> None:
    report, out = study_report
    html = out.read_text()
    page = _parse(html)
    assert page.sections == dict(SECTIONS)
    for section in ("energy-throughput", "batch-size", "telemetry", "warmup"):
        assert page.images[section], section
    for src in (s for images in page.images.values() for s in images):
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == PNG_MAGIC
    assert all(url.startswith("data:") or url.startswith("#") for url in page.urls)
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html)
    assert not re.search(r"(https?:|ftp:|file:)?//[a-z]", text, re.IGNORECASE)
    assert "url(" not in text and "@import" not in text and "<script" not in text
    assert "<link" not in text and "<iframe" not in text
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert (report.results, report.configurations) == (9, 3)


def test_report_numbers_and_warnings(study: Path, study_report: tuple[Report, Path]) -> None:
    found = load_results(study)
    report, out = study_report
    html = out.read_text()
    assert html == report.html
    # The per-configuration table holds the CI computed from the results.
    assert "± " in html and "95% CI" in html
    # The damaged file, the throttled run, its own warning and the unconverged warmup are listed.
    warnings = _parse(html)
    assert warnings.sections["warnings"] == "Warnings"
    broken = str(study / "bs4" / "interrupted" / "result.json")
    assert any(broken in w and "not valid JSON" in w for w in report.warnings)
    hot = next(r for r in found.results if r.thermal.detected)
    assert f"{hot.experiment_id}: throttled (thermal)" in report.warnings
    assert f"{hot.experiment_id}: power limit reached during the window" in report.warnings
    assert any("warmup did not converge" in w for w in report.warnings)
    section = html.split('id="warnings"', 1)[1]
    for line in report.warnings:
        assert html_escape(line, quote=True) in section
    # Provenance: one row per result with the energy and FLOPs methods and confidence.
    provenance = html.split('id="provenance"', 1)[1].split("</section>", 1)[0]
    assert provenance.count("<tr>") == 1 + 9
    assert provenance.count("nvml_energy_counter+rapl") == 9
    assert provenance.count("architecture") == 9
    # The throttled run is drawn first, with its shaded interval described.
    telemetry = html.split('id="telemetry"', 1)[1].split("</section>", 1)[0]
    assert "Shaded: throttled (1 interval(s), 2.000 s in total)" in telemetry
    assert telemetry.count("<img") == 6 and "3 more result(s) have telemetry" in telemetry


def test_single_experiment_without_telemetry_batch_or_warmup(tmp_path: Path) -> None:
    result = f.experiment_result(config={"model": "m"}, process=f.process_result(warmup=None))
    save_result(result, tmp_path / "exp" / "result.json")
    report = build_report(load_results(tmp_path / "exp"))
    page = _parse(report.html)
    assert page.sections == dict(SECTIONS)
    assert list(page.images) == ["energy-throughput"]
    assert "No result has a batch_size in its config" in report.html
    assert "1 result(s) have no telemetry time series" in report.html
    assert "No result records warmup latencies" in report.html
    assert "<p>No warnings.</p>" in report.html


def test_telemetry_without_power_or_temperature_is_a_note(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    result = f.sweep_result(4, timeseries_file="ts.parquet")
    save_result(result, tmp_path / "result.json")
    pq.write_table(f.telemetry_table(drop=("power_w", "temperature_c")), tmp_path / "ts.parquet")
    report = build_report(load_results(tmp_path))
    assert (
        f"{result.experiment_id}: telemetry has no power or temperature readings" in report.warnings
    )
    assert "telemetry" not in _parse(report.html).images


def test_nothing_readable_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "result.json").write_text("[]")
    with pytest.raises(Exception, match=r"holds no readable result\.json"):
        build_report(load_results(tmp_path))


def test_missing_matplotlib_is_a_clear_error(study: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(ReportDependencyError, match=r"pip install 'matplotlib>=3\.7'"):
        build_report(load_results(study))


def test_readme_shows_the_kept_screenshot() -> None:
    root = Path(__file__).resolve().parents[1]
    assert 'src="docs/report-example.png"' in (root / "README.md").read_text()
    assert "](report-example.png)" in (root / "docs" / "results.md").read_text()
    png = (root / "docs" / "report-example.png").read_bytes()
    assert png[:8] == PNG_MAGIC and len(png) > 50_000


def test_a_run_without_tokens_is_a_warning(tmp_path: Path) -> None:
    empty = f.experiment_result(process=f.process_result(inference=f.inference(0)))
    save_result(empty, tmp_path / "result.json")
    found = load_results(tmp_path)
    assert report_warnings(found, ["a note"]) == [
        f"{empty.experiment_id}: generated no tokens ({NO_OUTPUT_RULE})",
        "a note",
    ]


def test_latency_section_shows_each_figure_and_its_method(
    study: Path, study_report: tuple[Report, Path]
) -> None:
    _, out = study_report
    html = out.read_text()
    section = html.split('<section id="latency">', 1)[1].split("</section>", 1)[0]
    for header in ("TTFT p50 (ms)", "TPOT p50 (ms)", "ITL p50 (ms)", "E2E p50 (ms)", "closed"):
        assert header in section
    assert "TTFT/TPOT/E2E token_timestamps, ITL token_timestamps" in section
    # factories' TTFT samples are [10, 12, 11, 15]: median 11.5 in every result
    assert "11.5" in section
