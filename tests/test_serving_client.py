"""Serving mode's load generator: the arrival process, and traces against a scripted server."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest
from scipy import stats

from llenergymeasure.serving.arrivals import arrival_offsets_sec
from llenergymeasure.serving.client import RequestSpec, StreamedRequest, Target, run_load
from llenergymeasure.serving.metrics import Slo, goodput, meets, to_trace
from tests.fakes.scripted_server import Script, ScriptedServer, free_port

pytest.importorskip("aiohttp")


def test_poisson_gaps_pass_a_goodness_of_fit_test_and_the_rate_holds() -> None:
    rate = 20.0
    offsets = arrival_offsets_sec(4000, rate, seed=3)
    gaps = np.diff(offsets)
    assert stats.kstest(gaps, "expon", args=(0, 1 / rate)).pvalue > 0.01
    assert len(offsets) / offsets[-1] == pytest.approx(rate, rel=0.05)


def test_gamma_gaps_have_the_configured_burstiness() -> None:
    rate, burstiness = 10.0, 0.4
    gaps = np.diff(arrival_offsets_sec(4000, rate, burstiness=burstiness, seed=5))
    fit = stats.kstest(gaps, "gamma", args=(burstiness, 0, 1 / (rate * burstiness)))
    assert fit.pvalue > 0.01
    assert np.std(gaps) / np.mean(gaps) == pytest.approx(1 / math.sqrt(burstiness), rel=0.1)
    assert stats.kstest(gaps, "expon", args=(0, 1 / rate)).pvalue < 1e-6  # not Poisson


def test_schedules_are_seeded_bounded_and_all_at_once_for_inf() -> None:
    assert arrival_offsets_sec(50, 5.0, seed=1) == arrival_offsets_sec(50, 5.0, seed=1)
    assert arrival_offsets_sec(50, 5.0, seed=1) != arrival_offsets_sec(50, 5.0, seed=2)
    assert arrival_offsets_sec(4, math.inf) == [0.0] * 4
    by_time = arrival_offsets_sec(None, 50.0, duration_sec=2.0, seed=0)
    assert by_time[-1] < 2.0 and len(by_time) == pytest.approx(100, rel=0.3)
    with pytest.raises(ValueError, match="rate"):
        arrival_offsets_sec(3, 0.0)


def ttft_ms(r):  # type: ignore[no-untyped-def]
    return to_trace(r).ttft_ms()


def tpot_ms(r):  # type: ignore[no-untyped-def]
    return to_trace(r).tpot_ms()


def itl_ms(r):  # type: ignore[no-untyped-def]
    return to_trace(r).itl_ms()


def e2e_ms(r):  # type: ignore[no-untyped-def]
    return to_trace(r).e2e_ms()


def _run(url: str, n: int, offsets: list[float], tokens: int = 5, **kw: object):  # type: ignore[no-untyped-def]
    target = Target(url, "scripted")
    return asyncio.run(run_load(target, [RequestSpec("p", tokens)] * n, offsets, **kw))[1]


def test_measured_latencies_match_the_script() -> None:
    script = Script(first_token_sec=0.08, token_sec=0.02)
    with ScriptedServer(script) as url:
        records = _run(url, 6, [i * 0.15 for i in range(6)], tokens=6)
    # Sleeps guarantee the lower bounds; the upper bounds leave room for a busy machine.
    for r in records:
        assert r.ok and r.output_tokens == 6 and r.output_tokens_source == "usage"
        assert r.input_tokens == 5 and len(itl_ms(r)) == 5
        assert 80 <= ttft_ms(r) < 80 + 150
        assert 20 <= np.median(itl_ms(r)) < 20 + 30
        assert 20 <= tpot_ms(r) < 20 + 30
        assert e2e_ms(r) == pytest.approx(ttft_ms(r) + 5 * tpot_ms(r))
        assert 0 <= r.lag_sec < 0.1


def test_queueing_shows_in_ttft_when_the_concurrency_limit_is_reached() -> None:
    script = Script(first_token_sec=0.05, token_sec=0.01, concurrency=1)
    with ScriptedServer(script) as url:
        records = _run(url, 4, [0.0] * 4, tokens=3)
    service_ms = 50 + 2 * 10
    ttfts = sorted(ttft_ms(r) for r in records)
    for k, t in enumerate(ttfts):  # the k-th served waits for k services before its own start
        assert k * service_ms + 50 <= t < k * (service_ms + 60) + 50 + 150


def test_goodput_counts_exactly_the_requests_meeting_every_slo() -> None:
    script = Script(first_token_sec=0.05, token_sec=0.01, concurrency=1)
    with ScriptedServer(script) as url:
        records = _run(url, 4, [0.0] * 4, tokens=3)
    slo = Slo(ttft_ms=sorted(ttft_ms(r) for r in records)[1] + 1)
    assert [meets(r, slo) for r in records].count(True) == 2
    good, per_sec = goodput(records, slo, span_sec=2.0)
    assert good == 2 and per_sec == 1.0
    assert goodput(records, Slo(), 1.0)[0] == 4


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("http500", "HTTP 500"), ("malformed", "malformed stream"), ("truncated", "before [DONE]")],
)
def test_server_failures_are_recorded_per_request(mode: str, expected: str) -> None:
    with ScriptedServer(Script(first_token_sec=0.01, token_sec=0.0, mode=mode)) as url:
        records = _run(url, 3, [0.0, 0.01, 0.02], tokens=3)
    assert len(records) == 3
    assert all(not r.ok and expected in (r.error or "") for r in records)


def test_an_unreachable_server_is_recorded_not_raised() -> None:
    records = _run(f"http://127.0.0.1:{free_port()}", 2, [0.0, 0.0])
    assert [r.ok for r in records] == [False, False]
    assert all("Connect" in (r.error or "") or "refused" in (r.error or "") for r in records)


def test_llem_serve_streams_completions_and_chat_from_a_builtin_model() -> None:
    """End to end: `llem serve` as a subprocess, then the client against it."""
    import subprocess
    import sys
    import time
    import urllib.request

    from tests.cli_helpers import source_env

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llenergymeasure.cli.main", "serve", "--port", str(port)],
        env=source_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("llem serve never became ready")
        with urllib.request.urlopen(f"{url}/v1/models", timeout=5) as r:
            assert b"builtin:tiny-llama" in r.read()
        for endpoint in ("completions", "chat"):
            target = Target(url, "builtin:tiny-llama", endpoint=endpoint)
            specs = [RequestSpec("The cost of a token", 7)] * 3
            _, records = asyncio.run(run_load(target, specs, [0.0, 0.0, 0.0]))
            for r in records:
                assert r.ok, r.error
                assert r.output_tokens == 7 and len(r.token_times_sec) == 7
                assert r.output_tokens_source == "usage" and r.input_tokens
            # One at a time: the later requests queue behind the first.
            assert sorted(ttft_ms(r) for r in records)[2] > max(e2e_ms(records[0]) or 0, 0) * 0.5
    finally:
        proc.terminate()
        proc.wait(30)


def test_llem_serve_rejects_an_unknown_model_in_one_line() -> None:
    from tests.cli_helpers import run_llem

    done = run_llem("serve", "--model", "/nonexistent/model", "--port", str(free_port()))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "cannot load it" in done.stderr


def test_a_server_that_dies_mid_run_leaves_a_record_for_every_request() -> None:
    import threading

    server = ScriptedServer(Script(first_token_sec=0.01, token_sec=0.01))
    url = server.__enter__()
    threading.Timer(0.5, server.__exit__).start()
    records = _run(url, 8, [i * 0.15 for i in range(8)], tokens=2)
    assert len(records) == 8
    assert records[0].ok and not records[-1].ok
    assert all(r.ok or r.error for r in records)


def test_output_lengths_are_fixed_or_drawn_with_the_seed() -> None:
    from llenergymeasure.config.serving import ServingConfig

    assert ServingConfig(max_output_tokens=7).output_lengths(3) == [7, 7, 7]
    drawn = ServingConfig(max_output_tokens=20, min_output_tokens=5).output_lengths(200)
    assert min(drawn) >= 5 and max(drawn) <= 20 and len(set(drawn)) > 5
    again = ServingConfig(max_output_tokens=20, min_output_tokens=5).output_lengths(200)
    assert drawn == again
    with pytest.raises(ValueError, match="min_output_tokens"):
        ServingConfig(max_output_tokens=4, min_output_tokens=5)


def test_token_chunks_count_empty_text_but_not_role_or_finish_markers() -> None:
    from llenergymeasure.serving.client import _is_token

    assert _is_token({"choices": [{"text": "", "finish_reason": None}]})  # a partial character
    assert _is_token({"choices": [{"text": "x", "finish_reason": "length"}]})  # last token
    assert not _is_token({"choices": [{"text": "", "finish_reason": "length"}]})  # marker
    assert not _is_token({"choices": [], "usage": {"completion_tokens": 3}})
    assert not _is_token({"choices": [{"delta": {"role": "assistant", "content": ""}}]})
    assert _is_token({"choices": [{"delta": {"content": "y"}, "finish_reason": None}]})


def test_a_client_that_falls_behind_is_measured_and_warned() -> None:
    import time

    from llenergymeasure.serving.figures import CLIENT_LAG_WARN_MS, client_lag_warning

    stalled: list[int] = []

    def stall(record) -> None:  # type: ignore[no-untyped-def]
        if not stalled:  # the first finished request blocks the event loop for 80 ms
            stalled.append(record.index)
            time.sleep(0.08)

    offsets = [i * 0.01 for i in range(20)]  # 100 requests/s
    with ScriptedServer(Script(first_token_sec=0.0, token_sec=0.0)) as url:
        records = _run(url, 20, offsets, tokens=1, on_finished=stall)
    lags_ms = sorted(r.lag_sec * 1e3 for r in records)
    assert lags_ms[-1] > 40  # requests due during the stall went out late, and say so
    warning = client_lag_warning(records)
    assert warning is not None and "the client sent late" in warning
    on_time = [StreamedRequest(i, scheduled_sec=1.0, dispatch_sec=1.0 + 1e-3) for i in range(200)]
    on_time[0].dispatch_sec = 1.0 + 2 * CLIENT_LAG_WARN_MS / 1e3  # one late in 200: under p99
    assert client_lag_warning(on_time) is None
