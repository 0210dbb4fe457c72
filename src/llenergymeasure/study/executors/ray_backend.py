"""Ray: one actor per run (its own worker process, with ``num_gpus`` GPUs), killed afterwards.

The actor starts the same experiment child process as a local run; Ray sets the actor's
``CUDA_VISIBLE_DEVICES`` to the GPUs it granted and the child inherits it. On an existing
cluster (``address``) the actors are detached and named ``<run_id>.<attempt>`` in a
per-study namespace, so a restarted parent finds them by name and waits for them instead of
submitting again. Without ``address`` a private local cluster is started, bound to the
loopback interface, and ends with the parent.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from llenergymeasure.config.executor import RayExecutorConfig
from llenergymeasure.errors import LlemError
from llenergymeasure.study.executors.dispatch import JobState
from llenergymeasure.study.executors.task import RunTask, execute

LOOPBACK = "127.0.0.1"


class RunActor:
    """Runs one study run in a background thread; ``outcome`` waits for it."""

    def __init__(self, task: RunTask) -> None:
        self._outcome: dict[str, Any] | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(task,), daemon=True)
        self._thread.start()

    def _run(self, task: RunTask) -> None:
        import ray

        try:
            context = ray.get_runtime_context()
            granted = {"ray_gpu_ids": [str(g) for g in ray.get_gpu_ids()]}
            self._outcome = execute(task, task_id=context.get_actor_id(), extra=granted)
        finally:
            self._done.set()

    def outcome(self) -> dict[str, Any] | None:
        self._done.wait()
        return self._outcome


def local_cluster_env() -> dict[str, str]:
    """Environment for a private local cluster: loopback only, no usage reporting.

    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` makes Ray take the loopback address as the node's
    address in every process it starts; the proxy variables send the cloud-metadata probes
    Ray makes at start-up (Azure/AWS/GCP) to a closed loopback port instead of the network.
    """
    closed = f"http://{LOOPBACK}:9"
    return {
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
        "http_proxy": closed,
        "https_proxy": closed,
        "HTTP_PROXY": closed,
        "HTTPS_PROXY": closed,
        "no_proxy": f"{LOOPBACK},localhost",
        "NO_PROXY": f"{LOOPBACK},localhost",
    }


class RayBackend:
    """Submits study runs as Ray actors and follows them by actor name."""

    kind = "ray"

    def __init__(self, config: RayExecutorConfig, study_hash: str) -> None:
        try:
            import ray
        except ImportError:
            raise LlemError(
                "executor ray needs ray: pip install 'llenergymeasure[cluster]'"
            ) from None
        self._ray = ray
        self.config = config
        self.namespace = config.namespace or f"llem-{study_hash}"
        self.detached = config.address is not None
        self._refs: dict[str, Any] = {}
        self._actors: dict[str, Any] = {}
        self._started_here = False
        if not ray.is_initialized():
            self._connect()
        self._actor_class = ray.remote(RunActor)

    def _connect(self) -> None:
        ray, config = self._ray, self.config
        common: dict[str, Any] = {
            "namespace": self.namespace,
            "log_to_driver": False,
            "configure_logging": False,
        }
        if config.address is not None:
            try:
                ray.init(address=config.address, **common)
            except ConnectionError as exc:
                raise LlemError(f"executor.address: {exc}") from None
            return
        saved = dict(os.environ)
        os.environ.update(local_cluster_env())  # inherited by the cluster's processes
        try:
            ray.init(
                num_cpus=config.local_num_cpus,
                num_gpus=config.local_num_gpus,
                include_dashboard=False,
                _node_ip_address=LOOPBACK,
                **common,
            )
        finally:
            os.environ.clear()
            os.environ.update(saved)
        self._started_here = True
        addresses = {node.get("NodeManagerAddress") for node in ray.nodes()}
        if addresses != {LOOPBACK}:
            ray.shutdown()
            raise LlemError(f"the local Ray cluster registered on {addresses}, not {LOOPBACK}")

    def submit(self, tasks: list[RunTask]) -> list[str]:
        names = []
        for task in tasks:
            name = f"{task.run_id}.{os.urandom(3).hex()}"
            options: dict[str, Any] = {
                "name": name,
                "num_gpus": self.config.gpus_per_run,
                "num_cpus": self.config.cpus_per_run,
                "max_concurrency": 2,
                "max_restarts": 0,
            }
            if self.detached:
                options["lifetime"] = "detached"
            actor = self._actor_class.options(**options).remote(task)
            self._actors[name] = actor
            self._refs[name] = actor.outcome.remote()
            names.append(name)
        return names

    def state(self, job_id: str) -> JobState:
        ref = self._refs.get(job_id)
        if ref is None:  # an actor of an earlier parent: find it by name
            try:
                actor = self._ray.get_actor(job_id, namespace=self.namespace)
            except ValueError:
                return "lost"
            self._actors[job_id] = actor
            ref = self._refs[job_id] = actor.outcome.remote()
        ready, _ = self._ray.wait([ref], timeout=0)
        if not ready:
            return "active"
        try:
            self._ray.get(ref)
        except Exception:  # the actor died (node lost, killed)
            return "lost"
        return "ended"

    def wait(self, job_ids: list[str], timeout_sec: float) -> None:
        refs = [self._refs[j] for j in job_ids if j in self._refs]
        if refs:
            self._ray.wait(refs, num_returns=1, timeout=timeout_sec)

    def release(self, job_id: str) -> None:
        actor = self._actors.pop(job_id, None)
        self._refs.pop(job_id, None)
        if actor is not None:
            self._ray.kill(actor)  # the worker process ends: the next run gets a fresh one

    def close(self) -> None:
        if self._started_here:
            self._ray.shutdown()
