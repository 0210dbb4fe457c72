"""Grouping by configuration: cycles pooled by config hash, mean/std/CI from the results."""

from __future__ import annotations

import math
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from llenergymeasure.domain.stats import confidence_interval, mean, stdev, student_t_ppf
from llenergymeasure.results.collection import LoadedResult, load_results
from llenergymeasure.results.groups import MetricSummary, group_by_config
from tests import factories as f


def _loaded(*results):  # type: ignore[no-untyped-def]
    return [LoadedResult(Path(f"/x/{r.experiment_id}/result.json"), r) for r in results]


def test_cycles_are_pooled_per_config_and_summaries_match_the_stats(tmp_path: Path) -> None:
    f.write_study(tmp_path, batch_sizes=(16, 1, 4), cycles=3, telemetry=False)
    groups = group_by_config(load_results(tmp_path))
    assert [g.batch_size for g in groups] == [1, 4, 16]  # sorted by batch within a series
    assert [g.label for g in groups] == ["batch_size=1", "batch_size=4", "batch_size=16"]
    for group in groups:
        assert len(group.members) == 3
        assert len({m.result.config_hash for m in group.members}) == 1
        values = [m.result.energy_per_output_token_j for m in group.members]
        summary = group.energy_per_token
        assert summary.n == 3
        assert summary.mean == mean(values)
        assert summary.std == stdev(values)
        assert (summary.ci95_low, summary.ci95_high) == confidence_interval(values, 0.95)
        # Student t with n-1 = 2 degrees of freedom: half-width = 4.3027 s / sqrt(3).
        assert math.isclose(summary.half_width, 4.302652729911 * stdev(values) / math.sqrt(3))
        tps = [m.result.inference.tokens_per_second for m in group.members]
        assert group.tokens_per_second.mean == mean(tps)
    # Bigger batches cost fewer joules per token in the sweep factory; the groups show it.
    assert groups[0].energy_per_token.mean > groups[1].energy_per_token.mean


def test_single_result_has_no_interval_width() -> None:
    (group,) = group_by_config(_loaded(f.sweep_result(8)))
    summary = group.energy_per_token
    assert summary.n == 1 and summary.mean == group.first.energy_per_output_token_j
    # One run gives no spread: absent, never a std of 0 or a zero-width interval.
    assert summary.std is None and summary.half_width is None
    assert (summary.ci95_low, summary.ci95_high) == (None, None)
    assert group.label == "tiny-llama"  # nothing varies: the model names it


def test_labels_name_the_fields_that_differ_and_ignore_per_run_fields() -> None:
    results = [
        f.sweep_result(4, cycle, dtype=dtype, engine=engine)
        for dtype, engine in (("fp16", "transformers"), ("bf16", "transformers"), ("fp16", "vllm"))
        for cycle in range(2)
    ]
    groups = group_by_config(_loaded(*results))
    assert sorted(g.label for g in groups) == [
        "dtype=bf16, engine=transformers",
        "dtype=fp16, engine=transformers",
        "dtype=fp16, engine=vllm",
    ]
    assert all("cycle" not in g.label for g in groups)
    assert {g.series for g in groups} == {
        "tiny-llama / transformers / fp16",
        "tiny-llama / transformers / bf16",
        "tiny-llama / vllm / fp16",
    }


def test_a_run_without_tokens_is_left_out_of_energy_per_token() -> None:
    good = f.sweep_result(4)
    empty = f.experiment_result(
        process=f.process_result(
            experiment_id="empty", config_hash=good.config_hash, inference=f.inference(0)
        ),
        config=good.config,
    )
    assert empty.energy_per_output_token_j == 0.0
    (group,) = group_by_config(_loaded(good, empty))
    assert len(group.members) == 2
    assert group.energy_per_token.n == 1
    assert group.energy_per_token.mean == good.energy_per_output_token_j
    assert group.tokens_per_second.n == 2


def test_identical_labels_are_told_apart_by_hash() -> None:
    a = f.sweep_result(4)
    b = a.model_copy(update={"config_hash": "ffff0000ffff0000", "experiment_id": "other"})
    labels = sorted(g.label for g in group_by_config(_loaded(a, b)))
    assert labels == [f"tiny-llama [{a.config_hash[:8]}]", "tiny-llama [ffff0000]"]


def test_config_without_the_usual_keys_shows_dashes() -> None:
    plain = f.experiment_result(config={"model": "m"})
    groups = group_by_config(_loaded(plain, f.sweep_result(2)))
    assert [(g.series, g.batch_size) for g in groups] == [
        ("m / - / -", None),
        ("tiny-llama / transformers / fp16", 2),
    ]


@given(st.lists(st.floats(min_value=0.001, max_value=1e3), min_size=2, max_size=30))
def test_interval_brackets_the_mean_and_matches_t(values: list[float]) -> None:
    s = MetricSummary.of(values)
    assert s.ci95_low <= s.mean <= s.ci95_high
    expected = student_t_ppf(0.975, len(values) - 1) * stdev(values) / math.sqrt(len(values))
    assert math.isclose(s.half_width, expected, rel_tol=1e-9, abs_tol=1e-12)


def test_another_engines_section_does_not_enter_the_label() -> None:
    hf = f.experiment_result(
        experiment_id="hf",
        config={
            "model": "m",
            "engine": "transformers",
            "transformers": {"attn_implementation": "auto"},
        },
    )
    vllm = [
        f.experiment_result(
            experiment_id=f"v{n}",
            config={"model": "m", "engine": "vllm", "vllm": {"max_num_seqs": n, "stream": False}},
        ).model_copy(update={"config_hash": f"bbbb00000000000{n}"})
        for n in (4, 8)
    ]
    labels = sorted(g.label for g in group_by_config(_loaded(hf, *vllm)))
    assert labels == [
        "engine=transformers",
        "engine=vllm, max_num_seqs=4",
        "engine=vllm, max_num_seqs=8",
    ]
