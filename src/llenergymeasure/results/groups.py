"""Results grouped by configuration (``config_hash``), with mean, spread and a 95% CI per figure.

A study repeats each configuration over cycles; every cycle is its own experiment with the same
config hash. The statistics here are computed from the results themselves, never read from a
study summary, so a report stays right when results are added, removed or damaged.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from llenergymeasure.domain.results import ExperimentResult
from llenergymeasure.domain.study import ConfigurationStats, MetricSummary
from llenergymeasure.results.collection import LoadedResult
from llenergymeasure.results.records import config_int, config_text

#: Confidence level of the intervals shown for studies (MetricSummary's 95% t interval).
CI_LEVEL = 0.95

__all__ = ["CI_LEVEL", "ConfigGroup", "MetricSummary", "group_by_config"]


@dataclass(frozen=True)
class ConfigGroup:
    """All results of one configuration, a short label, and their summaries."""

    config_hash: str
    label: str
    members: tuple[LoadedResult, ...]

    @property
    def first(self) -> ExperimentResult:
        """A representative result (the earliest) for the config fields."""
        return self.members[0].result

    @property
    def batch_size(self) -> int | None:
        """The configuration's batch size, if its config has one."""
        return config_int(self.first, "batch_size")

    @property
    def series(self) -> str:
        """The configuration without its batch size: model, engine and dtype."""
        parts = [config_text(self.first, key) or "-" for key in ("model", "engine", "dtype")]
        return " / ".join(parts)

    @functools.cached_property
    def stats(self) -> ConfigurationStats:
        """The configuration's statistics, computed as the study summary computes them."""
        return ConfigurationStats.of([m.result for m in self.members])

    @property
    def energy_per_token(self) -> MetricSummary:
        """Raw joules per output token over cycles (``NO_OUTPUT_RULE`` applies)."""
        return self.stats.energy_per_output_token_j

    @property
    def tokens_per_second(self) -> MetricSummary:
        """Output tokens per second over cycles."""
        return self.stats.tokens_per_second


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = (
                json.dumps(value, sort_keys=True) if isinstance(value, list) else str(value)
            )
    return flat


def _labels(groups: dict[str, list[LoadedResult]]) -> dict[str, str]:
    """Label each configuration by the config fields that differ between configurations.

    Fields that differ inside one configuration (a cycle number, an output path) are not what
    makes it a configuration and are left out.
    """
    flats = {h: [_flatten(m.result.config) for m in members] for h, members in groups.items()}
    keys = sorted({k for runs in flats.values() for flat in runs for k in flat})

    def values(runs: list[dict[str, str]], key: str) -> set[str | None]:
        return {flat.get(key) for flat in runs}

    per_run = {k for runs in flats.values() for k in keys if len(values(runs, k)) > 1}
    firsts = {h: runs[0] for h, runs in flats.items()}
    # A field only some configurations have (another engine's section) varies only where its
    # values differ among the configurations that have it.
    varying = [
        k
        for k in keys
        if k not in per_run and len({flat[k] for flat in firsts.values() if k in flat}) > 1
    ]
    labels: dict[str, str] = {}
    for config_hash, flat in firsts.items():
        if varying:
            text = ", ".join(f"{k.rsplit('.', 1)[-1]}={flat[k]}" for k in varying if k in flat)
        else:
            text = flat.get("model", config_hash[:8])
        labels[config_hash] = text
    texts = list(labels.values())
    return {h: f"{t} [{h[:8]}]" if texts.count(t) > 1 else t for h, t in labels.items()}


def _sort_key(group: ConfigGroup) -> tuple[str, int, str]:
    batch = group.batch_size
    return (group.series, batch if batch is not None else -1, group.label)


def group_by_config(results: Iterable[LoadedResult]) -> list[ConfigGroup]:
    """Group results by config hash; groups sorted by model/engine/dtype, then batch size."""
    by_hash: dict[str, list[LoadedResult]] = {}
    for item in results:
        by_hash.setdefault(item.result.config_hash, []).append(item)
    for members in by_hash.values():
        members.sort(key=lambda m: (m.result.start_time, m.result.experiment_id))
    labels = _labels(by_hash)
    groups = [ConfigGroup(h, labels[h], tuple(members)) for h, members in by_hash.items()]
    return sorted(groups, key=_sort_key)
