"""The five core domain types: every rule of the seed spec, checked with numbers."""

from __future__ import annotations

import itertools
import math

import pynvml
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from llenergymeasure.domain import metrics as m
from llenergymeasure.domain.intervals import ThrottleInterval
from llenergymeasure.domain.metrics import (
    FlopsResult,
    NormalisedMetrics,
    PrecisionMetadata,
    ThermalThrottleInfo,
    WarmupResult,
)
from tests.factories import throttle_infos

# ---- FlopsResult ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "confidence"),
    [("calflops", "high"), ("architecture", "medium"), ("parameter_estimate", "low")],
)
def test_flops_confidence_derived_from_method(method: str, confidence: str) -> None:
    result = FlopsResult(value=1e9, method=method, precision="fp16")
    assert result.confidence == confidence
    # stating the matching confidence is fine
    assert FlopsResult(value=1e9, method=method, confidence=confidence, precision="fp16")


def test_flops_confidence_contradicting_method_is_rejected() -> None:
    with pytest.raises(ValidationError, match="contradicts method 'parameter_estimate'"):
        FlopsResult(value=1.0, method="parameter_estimate", confidence="high", precision="fp32")


def test_flops_negative_value_rejected_and_is_valid() -> None:
    with pytest.raises(ValidationError):
        FlopsResult(value=-1.0, method="calflops", precision="fp32")
    assert not FlopsResult(value=0.0, method="calflops", precision="fp32").is_valid
    assert FlopsResult(value=0.5, method="calflops", precision="fp32").is_valid


def test_flops_unknown_method_rejected() -> None:
    with pytest.raises(ValidationError):
        FlopsResult(value=1.0, method="guess", precision="fp32")


# ---- PrecisionMetadata -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("compute", "factor"),
    [("fp32", 1.0), ("fp16", 1.0), ("bf16", 1.0), ("tf32", 1.0), ("fp8", 0.5), ("int8", 0.5)],
)
def test_precision_factor_by_compute(compute: str, factor: float) -> None:
    assert PrecisionMetadata(compute=compute).precision_factor == factor


def test_precision_factor_table_matches_seed() -> None:
    assert m.PRECISION_FACTORS == {
        "fp32": 1.0, "fp16": 1.0, "bf16": 1.0, "tf32": 1.0,
        "fp8": 0.5, "int8": 0.5, "int4": 0.25, "mixed": 0.75,
    }  # fmt: skip


def test_precision_storage_defaults_follow_compute() -> None:
    p = PrecisionMetadata(compute="fp16")
    assert (p.weights, p.activations) == ("fp16", "fp16")
    assert PrecisionMetadata(compute="tf32").weights == "fp32"
    q = PrecisionMetadata(weights="int4", compute="bf16", quantization_method="bitsandbytes")
    assert (q.weights, q.activations, q.compute) == ("int4", "bf16", "bf16")
    assert PrecisionMetadata().compute == "fp32"


def test_precision_breakdown_weighted_mean() -> None:
    p = PrecisionMetadata(compute="fp16", mixed_precision_breakdown={"fp16": 0.5, "int4": 0.5})
    assert p.precision_factor == pytest.approx(0.625)
    q = PrecisionMetadata(mixed_precision_breakdown={"int8": 0.25, "fp32": 0.25, "mixed": 0.5})
    assert q.precision_factor == pytest.approx(0.25 * 0.5 + 0.25 * 1.0 + 0.5 * 0.75)


@pytest.mark.parametrize(
    ("breakdown", "message"),
    [
        ({"fp16": 0.5, "int3": 0.5}, "unknown precision"),
        ({"fp16": 1.5, "int4": -0.5}, ">= 0"),
        ({"fp16": 0.5, "int4": 0.4}, "sum to 1"),
        ({}, "empty"),
    ],
)
def test_precision_breakdown_rejected(breakdown: dict[str, float], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PrecisionMetadata(mixed_precision_breakdown=breakdown)


def test_precision_breakdown_tolerance() -> None:
    PrecisionMetadata(mixed_precision_breakdown={"fp16": 0.5, "int8": 0.5 + 9e-7})
    with pytest.raises(ValidationError):
        PrecisionMetadata(mixed_precision_breakdown={"fp16": 0.5, "int8": 0.5 + 2e-6})


@given(
    st.dictionaries(st.sampled_from(sorted(m.PRECISION_FACTORS)), st.integers(1, 100), min_size=1)
)
def test_precision_breakdown_factor_within_bounds(weights: dict[str, int]) -> None:
    total = sum(weights.values())
    shares = {k: v / total for k, v in weights.items()}
    factor = PrecisionMetadata(mixed_precision_breakdown=shares).precision_factor
    used = [m.PRECISION_FACTORS[k] for k in shares]
    assert min(used) - 1e-12 <= factor <= max(used) + 1e-12


# ---- NormalisedMetrics -----------------------------------------------------------------------


def test_normalised_from_metrics_issue_example() -> None:
    n = NormalisedMetrics.from_metrics(
        100, 10.0, 50.0, 5.0, 2e12, PrecisionMetadata(compute="int8")
    )
    assert n.tokens_per_joule == pytest.approx(10.0)
    assert n.effective_flops == pytest.approx(1e12)
    assert n.tokens_per_effective_pflop == pytest.approx(1e5)
    assert n.tokens_per_second_per_watt == pytest.approx(0.4)
    assert n.theoretical_flops == 2e12
    assert n.precision is not None and n.precision.compute == "int8"


def test_normalised_without_precision_uses_factor_one() -> None:
    n = NormalisedMetrics.from_metrics(100, 10.0, 50.0, 5.0, 2e12)
    assert n.effective_flops == 2e12
    assert n.tokens_per_effective_pflop == pytest.approx(5e4)


def test_normalised_zero_denominators_give_zero() -> None:
    n = NormalisedMetrics.from_metrics(100, 0.0, 0.0, 0.0, 0.0)
    assert (n.tokens_per_joule, n.tokens_per_effective_pflop, n.tokens_per_second_per_watt) == (
        0.0, 0.0, 0.0,
    )  # fmt: skip
    only_power_zero = NormalisedMetrics.from_metrics(100, 10.0, 0.0, 5.0, 1e15)
    assert only_power_zero.tokens_per_second_per_watt == 0.0
    assert only_power_zero.tokens_per_joule == 10.0


@pytest.mark.parametrize("index", range(5))
def test_normalised_negative_inputs_rejected(index: int) -> None:
    args: list[float] = [100, 10.0, 50.0, 5.0, 2e12]
    args[index] = -1
    with pytest.raises(ValueError, match="must be a finite number >= 0"):
        NormalisedMetrics.from_metrics(*args)  # type: ignore[arg-type]


# ---- ThermalThrottleInfo ---------------------------------------------------------------------


def test_reason_constants_match_nvidia_ml_py() -> None:
    pairs = {
        m.REASON_GPU_IDLE: pynvml.nvmlClocksEventReasonGpuIdle,
        m.REASON_APPLICATIONS_CLOCKS_SETTING: pynvml.nvmlClocksEventReasonApplicationsClocksSetting,
        m.REASON_SW_POWER_CAP: pynvml.nvmlClocksEventReasonSwPowerCap,
        m.REASON_HW_SLOWDOWN: pynvml.nvmlClocksEventReasonHwSlowdown,
        m.REASON_SYNC_BOOST: pynvml.nvmlClocksEventReasonSyncBoost,
        m.REASON_SW_THERMAL_SLOWDOWN: pynvml.nvmlClocksEventReasonSwThermalSlowdown,
        m.REASON_HW_THERMAL_SLOWDOWN: pynvml.nvmlClocksEventReasonHwThermalSlowdown,
        m.REASON_HW_POWER_BRAKE_SLOWDOWN: pynvml.nvmlClocksEventReasonHwPowerBrakeSlowdown,
        m.REASON_DISPLAY_CLOCK_SETTING: pynvml.nvmlClocksEventReasonDisplayClockSetting,
    }
    for ours, theirs in pairs.items():
        assert ours == theirs


FLAGS = ("detected", "thermal", "power", "sw_thermal", "hw_thermal", "hw_power")


def flags(info: ThermalThrottleInfo) -> dict[str, bool]:
    return {f: getattr(info, f) for f in FLAGS if getattr(info, f)}


@pytest.mark.parametrize(
    ("mask", "expected"),
    [
        (0, set()),
        (pynvml.nvmlClocksEventReasonGpuIdle, set()),
        (pynvml.nvmlClocksEventReasonApplicationsClocksSetting, set()),
        (pynvml.nvmlClocksEventReasonSyncBoost, set()),
        (pynvml.nvmlClocksEventReasonDisplayClockSetting, set()),
        (pynvml.nvmlClocksEventReasonSwThermalSlowdown, {"detected", "thermal", "sw_thermal"}),
        (pynvml.nvmlClocksEventReasonHwThermalSlowdown, {"detected", "thermal", "hw_thermal"}),
        (pynvml.nvmlClocksEventReasonHwPowerBrakeSlowdown, {"detected", "power", "hw_power"}),
        (pynvml.nvmlClocksEventReasonSwPowerCap, {"detected", "power"}),
        # HwSlowdown alone: the power-draw cause; recorded as power, not as the power brake
        (pynvml.nvmlClocksEventReasonHwSlowdown, {"detected", "power"}),
        (
            pynvml.nvmlClocksEventReasonHwSlowdown | pynvml.nvmlClocksEventReasonHwThermalSlowdown,
            {"detected", "thermal", "hw_thermal"},
        ),
        (
            pynvml.nvmlClocksEventReasonSwThermalSlowdown
            | pynvml.nvmlClocksEventReasonSwPowerCap
            | pynvml.nvmlClocksEventReasonGpuIdle,
            {"detected", "thermal", "power", "sw_thermal"},
        ),
    ],
)
def test_from_reasons(mask: int, expected: set[str]) -> None:
    assert set(flags(ThermalThrottleInfo.from_reasons(mask))) == expected


def test_from_reasons_all_benign_bits_together() -> None:
    benign = (m.REASON_GPU_IDLE | m.REASON_APPLICATIONS_CLOCKS_SETTING | m.REASON_SYNC_BOOST
              | m.REASON_DISPLAY_CLOCK_SETTING)  # fmt: skip
    assert not ThermalThrottleInfo.from_reasons(benign).detected
    assert ThermalThrottleInfo.from_reasons(pynvml.nvmlClocksEventReasonAll).detected
    with pytest.raises(ValueError):
        ThermalThrottleInfo.from_reasons(-1)


def test_throttle_detected_never_inconsistent() -> None:
    assert ThermalThrottleInfo(sw_thermal=True).detected
    assert ThermalThrottleInfo(sw_thermal=True).thermal
    assert ThermalThrottleInfo(hw_power=True).power
    assert not ThermalThrottleInfo().detected
    with pytest.raises(ValidationError, match="detected=True contradicts"):
        ThermalThrottleInfo(detected=True)
    with pytest.raises(ValidationError, match="detected=False contradicts"):
        ThermalThrottleInfo(detected=False, power=True)
    with pytest.raises(ValidationError, match="thermal=False contradicts"):
        ThermalThrottleInfo(thermal=False, hw_thermal=True)


@given(st.integers(0, 0x1FF))
def test_from_reasons_detected_iff_throttling_bit(mask: int) -> None:
    info = ThermalThrottleInfo.from_reasons(mask)
    assert info.detected == bool(mask & m.THROTTLING_REASONS_MASK)
    assert info.thermal == (info.sw_thermal or info.hw_thermal)


def test_merge_example() -> None:
    a = ThermalThrottleInfo(
        sw_thermal=True,
        throttle_duration_sec=2.0,
        max_temperature_c=84.0,
        throttle_timestamps=[3.0, 1.0],
    )
    b = ThermalThrottleInfo(
        power=True,
        throttle_duration_sec=5.0,
        max_temperature_c=None,
        throttle_timestamps=[2.0, 3.0],
    )
    c = ThermalThrottleInfo(max_temperature_c=90.0)
    merged = ThermalThrottleInfo.merge([a, b, c])
    assert set(flags(merged)) == {"detected", "thermal", "sw_thermal", "power"}
    assert merged.throttle_duration_sec == 5.0
    assert merged.max_temperature_c == 90.0
    assert merged.throttle_timestamps == [1.0, 2.0, 3.0]
    assert ThermalThrottleInfo.merge([]) == ThermalThrottleInfo()


@given(st.lists(throttle_infos(), max_size=6), st.randoms())
def test_merge_properties(infos: list[ThermalThrottleInfo], rnd) -> None:  # type: ignore[no-untyped-def]
    merged = ThermalThrottleInfo.merge(infos)
    for flag in FLAGS:
        assert getattr(merged, flag) == any(getattr(i, flag) for i in infos)
    assert merged.throttle_duration_sec == max((i.throttle_duration_sec for i in infos), default=0)
    assert merged.throttle_timestamps == sorted(merged.throttle_timestamps)
    assert set(merged.throttle_timestamps) == {t for i in infos for t in i.throttle_timestamps}
    shuffled = list(infos)
    rnd.shuffle(shuffled)
    assert ThermalThrottleInfo.merge(shuffled) == merged  # order does not matter
    assert ThermalThrottleInfo.merge([merged, merged]) == merged  # idempotent
    if infos:
        assert ThermalThrottleInfo.merge(infos[:1]).detected == infos[0].detected


def _interval(start: float, end: float, cause: str = "hw_thermal") -> ThrottleInterval:
    return ThrottleInterval(start_sec=start, end_sec=end, cause=cause)  # type: ignore[arg-type]


def test_merge_puts_processes_on_one_time_origin() -> None:
    """Issue 11 item 8: process 1's window began 2 s after process 0's. Its throttling at
    0-1 s of its own window is 2-3 s of the experiment; with process 0's 2.5-4 s the union
    is 2-4 s, 2 s (not the max 1.5 s of the two, nor 2.5 s from unshifted timestamps)."""
    p0 = ThermalThrottleInfo(
        hw_thermal=True,
        throttle_duration_sec=1.5,
        throttle_timestamps=[2.5],
        throttle_intervals=[_interval(2.5, 4.0)],
    )
    p1 = ThermalThrottleInfo(
        sw_thermal=True,
        throttle_duration_sec=1.0,
        throttle_timestamps=[0.0],
        throttle_intervals=[_interval(0.0, 1.0, "sw_thermal")],
    )
    merged = ThermalThrottleInfo.merge([p0, p1], [0.0, 2.0])
    assert merged.throttle_duration_sec == pytest.approx(2.0)
    assert [(i.start_sec, i.end_sec, i.cause) for i in merged.throttle_intervals] == [
        (2.0, 3.0, "sw_thermal"),
        (2.5, 4.0, "hw_thermal"),
    ]
    assert merged.throttle_timestamps == [2.0, 2.5]  # interval starts, on the common origin
    assert merged.hw_thermal and merged.sw_thermal


def _covered_length(spans: list[tuple[float, float]]) -> float:
    """Length of a union by brute force: each elementary piece between endpoints, if covered."""
    points = sorted({p for span in spans for p in span})
    return math.fsum(
        b - a
        for a, b in itertools.pairwise(points)
        if any(lo <= (a + b) / 2 <= hi for lo, hi in spans)
    )


_spans = st.lists(
    st.tuples(st.floats(0, 100, allow_nan=False), st.floats(0, 20, allow_nan=False)).map(
        lambda p: (p[0], p[0] + p[1])
    ),
    max_size=6,
)


@given(
    st.lists(st.tuples(_spans, st.floats(0, 50, allow_nan=False)), min_size=1, max_size=4),
    st.sampled_from(["hw_thermal", "sw_power_cap"]),
)
def test_merged_duration_is_the_union_of_intervals(processes, cause: str) -> None:  # type: ignore[no-untyped-def]
    """Issue 11 item 8: the merged duration is the length of the union of every process's
    intervals on the common origin; never more than their sum, never less than the longest."""
    infos, offsets, shifted = [], [], []
    for spans, offset in processes:
        intervals = [_interval(a, b, cause) for a, b in spans]
        infos.append(
            ThermalThrottleInfo(
                hw_thermal=bool(spans),
                throttle_duration_sec=_covered_length(spans),
                throttle_intervals=intervals,
            )
        )
        offsets.append(offset)
        shifted += [(a + offset, b + offset) for a, b in spans]
    merged = ThermalThrottleInfo.merge(infos, offsets)
    assert merged.throttle_duration_sec == pytest.approx(_covered_length(shifted), abs=1e-5)
    total = math.fsum(i.throttle_duration_sec for i in infos)
    longest = max(i.throttle_duration_sec for i in infos)
    assert longest - 1e-5 <= merged.throttle_duration_sec <= total + 1e-5
    # disjoint, sorted intervals; merging the merged result again changes nothing
    ends = [(i.start_sec, i.end_sec) for i in merged.throttle_intervals]
    assert all(b[0] > a[1] for a, b in itertools.pairwise(ends))
    again = ThermalThrottleInfo.merge([merged])
    assert again.throttle_duration_sec == pytest.approx(merged.throttle_duration_sec)


# ---- WarmupResult ----------------------------------------------------------------------------


def test_warmup_converged_only_below_target() -> None:
    ok = WarmupResult(
        converged=True, final_cv=0.05, iterations_completed=5, target_cv=0.05, max_prompts=50
    )
    assert ok.converged
    assert not WarmupResult(
        converged=False, final_cv=0.2, iterations_completed=50, target_cv=0.05, max_prompts=50
    ).converged
    with pytest.raises(ValidationError, match="final_cv"):
        WarmupResult(
            converged=True, final_cv=0.051, iterations_completed=5, target_cv=0.05, max_prompts=50
        )


def test_warmup_iterations_bounded_by_max_prompts() -> None:
    with pytest.raises(ValidationError, match="exceeds max_prompts"):
        WarmupResult(
            converged=False, final_cv=0.2, iterations_completed=51, target_cv=0.05, max_prompts=50
        )


def test_warmup_cv_curve() -> None:
    w = WarmupResult(
        converged=False,
        final_cv=0.0,
        iterations_completed=4,
        target_cv=0.05,
        max_prompts=10,
        latencies_ms=[10.0, 10.0, 20.0, 20.0],
        window_size=2,
    )
    curve = w.cv_curve()
    assert len(curve) == 3
    assert curve[0] == 0.0 and curve[2] == 0.0
    assert curve[1] == pytest.approx((50**0.5) / 15.0)
