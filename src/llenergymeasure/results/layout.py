"""The layout of an experiment directory, shared by the writers and the readers.

```
<output>/<experiment_id>/
  config.json          resolved ExperimentConfig
  environment.json     EnvironmentSnapshot
  process_<i>.json     RawProcessResult of process i, then process_<i>.done once complete
  timeseries.parquet   telemetry (timeseries_<i>.parquet with several processes)
  run.log              log (run_<i>.log per worker, launcher.log for the launcher)
  result.json          ExperimentResult, written last: its presence means complete
```
"""

from __future__ import annotations

CONFIG_FILENAME = "config.json"
ENVIRONMENT_FILENAME = "environment.json"
RESULT_FILENAME = "result.json"
LOG_FILENAME = "run.log"


def process_filename(index: int) -> str:
    """Name of process ``index``'s raw result file."""
    return f"process_{index}.json"


def done_marker(index: int) -> str:
    """Name of the marker written after process ``index``'s result file is complete."""
    return f"process_{index}.done"


def timeseries_filename(index: int, world_size: int) -> str:
    """Name of process ``index``'s telemetry time series."""
    return "timeseries.parquet" if world_size == 1 else f"timeseries_{index}.parquet"
