"""A fake monotonic clock that tests advance by hand, so traces run in no real time."""

from __future__ import annotations


class FakeClock:
    """Callable like ``time.monotonic``; ``advance``/``sleep`` move it forward."""

    def __init__(self, start: float = 1000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        # rounded to the nanosecond so that scripted edges (e.g. at 0.5 s) land exactly
        self.t = round(self.t + seconds, 9)

    sleep = advance
