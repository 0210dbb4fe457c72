"""The cells `llem results list / show / compare` print, checked against the results' figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from llenergymeasure.results.collection import LoadedResult
from llenergymeasure.results.views import (
    LIST_HEADERS,
    compare_table,
    fmt,
    list_table,
    ratio_text,
    show_tables,
    throttle_text,
)
from tests import factories as f


def _item(result) -> LoadedResult:  # type: ignore[no-untyped-def]
    return LoadedResult(Path(f"/r/{result.experiment_id}/result.json"), result)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        (True, "yes"),
        (False, "no"),
        (1234, "1,234"),
        (0.0, "0"),
        (0.123456, "0.1235"),
        (12.3456, "12.35"),
        (1593.7, "1,594"),
        (2.2e9, "2.200e+09"),
        (1.5e-5, "1.500e-05"),
        (float("nan"), "-"),
        ("fp16", "fp16"),
    ],
)
def test_fmt(value: object, text: str) -> None:
    assert fmt(value) == text


def test_list_row_has_the_headline_figures() -> None:
    hot = f.sweep_result(16, thermal=f.throttled(), warmup_converged=False)
    cool = f.sweep_result(1)
    table = list_table([_item(hot), _item(cool)])
    assert table.headers == LIST_HEADERS
    row = dict(zip(LIST_HEADERS, table.rows[0], strict=True))
    assert row["id"] == hot.experiment_id
    assert (row["model"], row["engine"], row["dtype"], row["batch"]) == (
        "tiny-llama",
        "transformers",
        "fp16",
        "16",
    )
    assert row["J/out tok"] == fmt(hot.energy_per_output_token_j)
    assert float(row["tok/s"].replace(",", "")) == pytest.approx(
        hot.inference.tokens_per_second, rel=1e-3
    )
    assert row["throttled"] == "yes: thermal"
    assert row["warmup"] == "not converged"
    assert row["energy method"] == "nvml_energy_counter+rapl"
    assert table.rows[1][7:9] == ("no", "converged")


def test_list_of_foreign_config_shows_dashes() -> None:
    result = f.experiment_result(config={})
    row = list_table([_item(result)]).rows[0]
    assert row[1:5] == ("-", "-", "-", "-")
    assert row[8] == "converged"  # factory warmup converged


def test_show_gives_every_group_with_provenance() -> None:
    result = f.sweep_result(4, thermal=f.throttled(), warnings=["clock locked"])
    tables = {t.title.split(" —")[0]: t for t in show_tables(_item(result))}
    assert set(tables) >= {
        "experiment",
        "energy",
        "energy per device",
        "inference",
        "latency (ms)",
        "compute",
        "normalised",
        "thermal",
        "warmup",
        "warnings",
    }
    energy = {row[0]: row for row in tables["energy"].rows}
    assert energy["total energy (J)"][1] == fmt(result.energy.total_energy_j)
    assert energy["total energy (J)"][2] == "nvml_energy_counter+rapl (medium confidence)"
    assert energy["idle-adjusted energy (J)"][2] == "baseline measured"
    devices = {row[0]: row for row in tables["energy per device"].rows}
    assert devices["cpu:package-0"][-1] == "rapl (medium confidence)"
    compute = {row[0]: row for row in tables["compute"].rows}
    assert compute["FLOPs executed"][2] == "architecture (medium confidence)"
    assert compute["prefill / decode FLOPs share"][1] == "25.0% / 75.0%"
    latency = next(t for t in show_tables(_item(result)) if t.title.startswith("latency"))
    assert "decode_step_timestamps (high confidence)" in latency.title
    ttft = latency.rows[0]
    assert ttft[3] == fmt(result.inference.ttft.p50_ms)
    assert {row[0]: row[1] for row in tables["thermal"].rows}["throttled"] == "yes: thermal"
    assert tables["warnings"].rows == [("clock locked",)]
    assert ("config.batch_size", "4") in tables["experiment"].rows


def test_compare_gives_ratios_to_the_first() -> None:
    small, big = f.sweep_result(1), f.sweep_result(16)
    table = compare_table([_item(small), _item(big)])
    assert table.headers == ("figure", small.experiment_id, big.experiment_id, "better")
    rows = {row[0]: row for row in table.rows}
    ratio = big.energy_per_output_token_j / small.energy_per_output_token_j
    assert rows["J per output token"] == (
        "J per output token",
        fmt(small.energy_per_output_token_j),
        f"{fmt(big.energy_per_output_token_j)} (x{ratio:.3g})",
        "lower",
    )
    assert rows["tokens per second"][3] == "higher"
    assert rows["batch size"][1:3] == ("1", "16")
    assert rows["MFU"][1:3] == ("-", "-")  # unknown peak: no ratio invented


def test_ratio_text_and_throttle_text() -> None:
    assert ratio_text(2.0, 4.0) == "x0.5"
    assert ratio_text(1.0, 0.0) == ratio_text(None, 1.0) == ratio_text(1.0, None) == ""
    assert throttle_text(f.experiment_result()) == "no"
    power = f.throttled().model_copy(update={"power": True})
    assert throttle_text(f.sweep_result(2, thermal=power)) == "yes: thermal, power"


def test_show_says_how_the_baseline_was_obtained() -> None:
    """Issue 11 item 5: `results show` gives the baseline's provenance beside its power."""
    from datetime import timedelta

    from llenergymeasure.domain.energy import BaselineInfo

    result = f.sweep_result(4)
    info = BaselineInfo(
        method="cached",
        duration_sec=10.0,
        samples=100,
        settle_sec=5.0,
        measured_at=result.start_time - timedelta(seconds=600),
        age_sec=600.0,
    )
    result = result.model_copy(
        update={"energy": result.energy.model_copy(update={"baseline": info})}
    )
    tables = {t.title: t for t in show_tables(_item(result))}
    energy = {row[0]: row for row in tables["energy"].rows}
    assert energy["idle baseline power (W)"][2] == (
        "baseline cached: 10.0 s, 100 samples, after 5 s at rest, 600 s old"
    )
