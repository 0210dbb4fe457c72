"""Data-parallel experiments: N workers launched through ``torch.distributed.run``.

Each worker owns one device (CPU workers share the host and use the gloo backend), measures
its contiguous share of the prompts, and writes ``process_<rank>.json`` plus a completion
marker. The workers meet at a barrier before the idle baseline, before the measurement window
and after it, so no one's warmup pollutes another's baseline and the windows overlap. Only
local rank 0 measures host-level devices (CPU package, DRAM), so nothing is counted twice.
The launching process only waits (a blocking wait, no polling) and then aggregates the files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from llenergymeasure.config.experiment import ExperimentConfig
from llenergymeasure.domain.results import ExperimentResult
from llenergymeasure.errors import LlemError
from llenergymeasure.measure.progress import NullReporter, Reporter

LAUNCHER_LOG = "launcher.log"


def launch_workers(
    config: ExperimentConfig,
    out_dir: Path,
    *,
    allow_partial: bool = False,
    reporter: Reporter | None = None,
) -> ExperimentResult:
    """Run ``config.processes`` workers on ``out_dir`` (holding config.json), then aggregate."""
    from llenergymeasure.results.aggregation import aggregate_directory

    reporter = reporter or NullReporter()
    n = config.processes
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={n}",
        "-m",
        "llenergymeasure.measure.worker",
        str(out_dir),
    ]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // n)))
    reporter.stage(f"{n} processes", total=None)
    with open(out_dir / LAUNCHER_LOG, "w", encoding="utf-8") as log_file:
        completed = subprocess.run(command, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    try:
        return aggregate_directory(out_dir, allow_partial=allow_partial)
    except LlemError as exc:
        if completed.returncode != 0:
            raise LlemError(
                f"{exc} (the launcher exited {completed.returncode}; see {out_dir / LAUNCHER_LOG})"
            ) from None
        raise


def worker_main(argv: list[str] | None = None) -> int:
    """Entry point of one worker (run by torch.distributed.run)."""
    import torch
    import torch.distributed as dist

    from llenergymeasure.measure.experiment import measure_process, run_log
    from llenergymeasure.results.layout import CONFIG_FILENAME

    args = sys.argv[1:] if argv is None else argv
    out_dir = Path(args[0])
    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    config = ExperimentConfig.model_validate(
        json.loads((out_dir / CONFIG_FILENAME).read_text(encoding="utf-8"))
    )
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local_rank)
        config = config.model_copy(update={"device_map": f"cuda:{local_rank}"})
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    try:
        with run_log(out_dir, f"run_{rank}.log"):
            measure_process(
                config,
                experiment_id=out_dir.name,
                out_dir=out_dir,
                process_index=rank,
                world_size=world,
                sync_processes=dist.barrier,
                measure_host=local_rank == 0,
            )
    finally:
        dist.destroy_process_group()
    return 0
