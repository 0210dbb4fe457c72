"""Reading result files written by an older schema: each known major version is upgraded here.

1.x -> 2.0: latency became per-request (traces). 1.x files came from the transformers engine
with closed batches and a timestamp at every decode step, so their TTFT, ITL and request
latency keep their meaning; they gain ``arrival_model: closed``, a ``method`` on each latency
figure, and an empty TPOT (``not_reported``: a 1.x file does not hold what it needs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_LATENCY_KEYS = ("ttft", "itl", "request_latency")
_V1_NOTE = (
    "read from schema_version {version}: TPOT not reported (the file predates per-request "
    "traces); TTFT, ITL and request latency are from closed batches"
)


def _empty_latency() -> dict[str, Any]:
    return {
        "n": 0,
        **{f"{k}_ms": 0.0 for k in ("mean", "p50", "p90", "p95", "p99", "min", "max")},
        "samples_ms": [],
        "method": "not_reported",
    }


def _inference_v1(inference: Any) -> None:
    if not isinstance(inference, dict):
        return
    inference.setdefault("arrival_model", "closed")
    for key in _LATENCY_KEYS:
        stats = inference.get(key)
        if isinstance(stats, dict):
            stats.setdefault("method", "token_timestamps" if stats.get("n") else "not_reported")
    inference.setdefault("tpot", _empty_latency())


def _from_v1(data: dict[str, Any], version: str) -> dict[str, Any]:
    _inference_v1(data.get("inference"))
    note = _V1_NOTE.format(version=version)
    for process in data.get("process_results") or []:
        if isinstance(process, dict):
            _inference_v1(process.get("inference"))
            process["schema_version"] = "2.0"
    if isinstance(data.get("warnings"), list):
        data["warnings"].append(note)
    else:
        data["warnings"] = [note]
    data["schema_version"] = "2.0"
    return data


#: Old major version -> the function that upgrades a file's data to the next one.
MIGRATIONS: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {"1": _from_v1}


def upgrade(data: dict[str, Any], version: str, current: str) -> dict[str, Any] | None:
    """The data upgraded to ``current``'s major version, or None when no path exists."""
    major = version.split(".", 1)[0]
    target = current.split(".", 1)[0]
    while major != target:
        step = MIGRATIONS.get(major)
        if step is None:
            return None
        data = step(data, version)
        major = str(data["schema_version"]).split(".", 1)[0]
    return data
