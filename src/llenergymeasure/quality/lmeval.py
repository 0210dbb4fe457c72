"""Task accuracy through lm-eval (the ``lmeval`` extra), on the model object llem loaded.

After the energy window, with the measured model still loaded, the listed tasks run through
lm-eval's Python API: lm-eval's Hugging Face wrapper is handed the loaded model and tokenizer
(nothing is loaded twice), and its scores, standard errors, document counts and the identity of
what was scored go into the result's ``task_accuracy``. Tasks come from llem's shipped task
directory (``data/quality/lmeval_tasks``, offline), ``quality.lm_eval.include_path``, and,
only when a name is found in neither, lm-eval's own task catalogue (slower to index; those tasks
usually download their data).

lm-eval is imported only here, inside functions.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from llenergymeasure.config.quality import LmEvalConfig
from llenergymeasure.domain.quality import TaskAccuracy, TaskMetric, TaskScore
from llenergymeasure.errors import ConfigError

log = logging.getLogger("llenergymeasure")

#: The line a user sees when tasks are asked for without the extra.
MISSING_EXTRA = (
    "quality.lm_eval.tasks needs lm-eval, which is not installed: "
    "pip install 'llenergymeasure[lmeval]'"
)


def shipped_task_dir() -> Path:
    """llem's own offline tasks (YAML plus local data)."""
    return Path(str(resources.files("llenergymeasure") / "data" / "quality" / "lmeval_tasks"))


def check(config: LmEvalConfig) -> None:
    """Before anything loads: lm-eval installed, the task directory there, every task known.

    So that a typo costs no measurement: the tasks run after the energy window.
    """
    if not config.tasks:
        return
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        raise ConfigError(MISSING_EXTRA) from None
    if config.include_path is not None and not config.include_path.is_dir():
        raise ConfigError(
            f"quality.lm_eval.include_path {str(config.include_path)!r} is not a directory "
            "(expected a directory of lm-eval task YAMLs)"
        )
    task_manager(config)


def _include_paths(config: LmEvalConfig) -> list[str]:
    paths = [str(shipped_task_dir())]
    if config.include_path is not None:
        paths.append(str(config.include_path.resolve()))
    return paths


def task_manager(config: LmEvalConfig) -> Any:
    """lm-eval's TaskManager over llem's and the user's tasks; its catalogue only if needed."""
    from lm_eval.tasks import TaskManager

    local = TaskManager(include_path=_include_paths(config), include_defaults=False)
    if all(name in local.all_tasks for name in config.tasks):
        return local
    log.info("lm-eval: indexing lm-eval's own task catalogue for %s", config.tasks)
    full = TaskManager(include_path=_include_paths(config), include_defaults=True)
    unknown = [name for name in config.tasks if name not in full.all_tasks]
    if unknown:
        raise ConfigError(
            f"quality.lm_eval.tasks: unknown task {unknown[0]!r}; allowed: a task of lm-eval's "
            f"catalogue, of llem's ({', '.join(_local_names(local))}), or a YAML in "
            "quality.lm_eval.include_path"
        )
    return full


def _local_names(manager: Any) -> list[str]:
    return [name for name in manager.all_tasks if name.startswith("llem_")] or ["none"]


@contextlib.contextmanager
def _working_dir(path: Path | None) -> Iterator[None]:
    """Run in ``path`` (so a task's relative data_files resolve next to its YAML)."""
    if path is None:
        yield
        return
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def load_tasks(manager: Any, names: list[str]) -> list[Any]:
    """The tasks, each loaded (its documents read) from the directory of its YAML."""
    loaded: list[Any] = []
    for name in names:
        entry = manager.task_index.get(name) if hasattr(manager, "task_index") else None
        yaml_path = getattr(entry, "yaml_path", None)
        with _working_dir(Path(yaml_path).parent if yaml_path else None):
            loaded.extend(manager.load([name])["tasks"].values())
    return loaded


def run_tasks(model: Any, tokenizer: Any, config: LmEvalConfig) -> TaskAccuracy:
    """Score the loaded model on the configured tasks; lm-eval's results as a TaskAccuracy."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    manager = task_manager(config)
    tasks = load_tasks(manager, config.tasks)
    with _weights_left_as_loaded(model), _quiet("lm_eval.models"):
        # its warnings here are about passing a model object, which llem does on purpose
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=config.batch_size)
    started = time.perf_counter()
    with _lm_eval_quietly():
        results = _evaluate(lm_eval, lm, tasks, manager, config)
    elapsed = time.perf_counter() - started
    if results is None:  # lm-eval returns None on ranks other than 0
        raise RuntimeError("lm-eval returned no results (not rank 0)")
    return task_accuracy(results, config, _version(lm_eval), elapsed)


def _evaluate(lm_eval: Any, lm: Any, tasks: list[Any], manager: Any, config: LmEvalConfig) -> Any:
    return lm_eval.simple_evaluate(
        model=lm,
        tasks=tasks,
        task_manager=manager,
        num_fewshot=config.num_fewshot,
        limit=config.limit,
        bootstrap_iters=config.bootstrap_iters,
        log_samples=True,  # for the per-document hashes behind samples_sha256
        random_seed=config.seed,
        numpy_random_seed=config.seed,
        torch_random_seed=config.seed,
        fewshot_random_seed=config.seed,
    )


@contextlib.contextmanager
def _lm_eval_quietly() -> Iterator[None]:
    """lm-eval inside `llem run`, without what it adds to the terminal and the clock:

    - its tqdm bars (llem's own progress shows the stage): every tqdm made meanwhile is
      disabled (patched on the class, which lm-eval's modules import by name);
    - its environment probes, which llem records itself: ``add_env_info`` runs torch's
      ``collect_env`` (2.6 s here, inside the evaluation's recorded time) and
      ``get_git_commit_hash`` runs `git describe`, which prints "fatal: not a git repository"
      outside a repository. Both only fill fields of lm-eval's result that llem does not read.
    """
    from lm_eval import evaluator
    from tqdm import std

    raw_init = std.tqdm.__dict__["__init__"]  # a partialmethod: put back as it was
    original_init = std.tqdm.__init__

    def disabled(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["disable"] = True
        original_init(self, *args, **kwargs)

    saved = {name: getattr(evaluator, name, None) for name in _PROBES}
    std.tqdm.__init__ = disabled  # type: ignore[method-assign]
    for name in _PROBES:
        if saved[name] is not None:
            setattr(evaluator, name, _PROBES[name])
    try:
        yield
    finally:
        std.tqdm.__init__ = raw_init  # type: ignore[method-assign]
        for name, fn in saved.items():
            if fn is not None:
                setattr(evaluator, name, fn)


#: lm-eval's environment probes and what stands in for them while llem runs it.
_PROBES: dict[str, Callable[..., Any]] = {
    "add_env_info": lambda storage: None,
    "get_git_commit_hash": lambda: None,
}


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _weights_left_as_loaded(model: Any) -> Iterator[None]:
    """lm-eval's wrapper re-ties the weights of the model it is given. llem's model was tied
    when it loaded, and a torch-int8 model's quantised head cannot be re-tied: the call is made
    a no-op on this instance while the wrapper is built, so the measured model is unchanged."""
    had_own = "tie_weights" in vars(model)
    model.tie_weights = lambda *args, **kwargs: None
    try:
        yield
    finally:
        if not had_own:
            del model.tie_weights


def _version(module: Any) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lm_eval")
    except PackageNotFoundError:
        return str(getattr(module, "__version__", "unknown"))


def task_accuracy(
    results: dict[str, Any], config: LmEvalConfig, lm_eval_version: str, elapsed_sec: float
) -> TaskAccuracy:
    """Our record of lm-eval's results dict (scores, stderr, counts, config and sample hashes)."""
    scores = [
        _task_score(name, results) for name in config.tasks if name in results.get("results", {})
    ]
    return TaskAccuracy(
        lm_eval_version=lm_eval_version,
        tasks=scores,
        limit=config.limit,
        batch_size=config.batch_size,
        bootstrap_iters=config.bootstrap_iters,
        seed=config.seed,
        eval_time_sec=elapsed_sec,
    )


def _task_score(name: str, results: dict[str, Any]) -> TaskScore:
    figures = results["results"][name]
    better = results.get("higher_is_better", {}).get(name, {})
    metrics: list[TaskMetric] = []
    for key, value in figures.items():
        metric, _, filter_ = key.partition(",")
        if not filter_ or "_stderr" in metric or not isinstance(value, (int, float)):
            continue
        stderr = figures.get(f"{metric}_stderr,{filter_}")
        metrics.append(
            TaskMetric(
                name=metric,
                filter=filter_,
                value=float(value),
                stderr=float(stderr) if isinstance(stderr, (int, float)) else None,
                higher_is_better=better.get(metric),
            )
        )
    counts = results.get("n-samples", {}).get(name, {})
    task_config = results.get("configs", {}).get(name, {})
    version = results.get("versions", {}).get(name)
    return TaskScore(
        task=name,
        version=None if version is None else str(version),
        n_samples=int(counts.get("effective", 0)),
        n_samples_total=int(counts.get("original", 0)),
        num_fewshot=int(results.get("n-shot", {}).get(name, 0)),
        metrics=metrics,
        config_sha256=_sha256(json.dumps(task_config, sort_keys=True, default=str)),
        samples_sha256=_samples_hash(results.get("samples", {}).get(name)),
        config_source=(task_config.get("metadata") or {}).get("config_source"),
    )


def _samples_hash(samples: list[dict[str, Any]] | None) -> str | None:
    if not samples:
        return None
    ordered = sorted(samples, key=lambda s: s.get("doc_id", 0))
    parts = [
        f"{s.get('doc_hash', '')}:{s.get('prompt_hash', '')}:{s.get('target_hash', '')}"
        for s in ordered
    ]
    return _sha256("\n".join(parts))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
