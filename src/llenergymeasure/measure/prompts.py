"""Prompts for an experiment: the built-in set, a .txt/.jsonl file, or synthetic token ids.

Everything is turned into token ids before the measurement window, so tokenization is never
measured. Fewer prompts than ``n_prompts`` are cycled, with a warning.
"""

from __future__ import annotations

import json
import random
from importlib import resources
from pathlib import Path

from llenergymeasure.config.experiment import ExperimentConfig
from llenergymeasure.engines.base import Engine
from llenergymeasure.errors import ConfigError


def builtin_prompts() -> list[str]:
    """The package's built-in prompt set (64 varied instructions)."""
    text = resources.files("llenergymeasure.data").joinpath("prompts.txt").read_text("utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_prompt_file(path: Path, limit: int | None = None) -> list[str]:
    """Prompts from a .txt (one per line) or .jsonl file (a string, or 'prompt'/'text' key).

    The file is read line by line and only up to ``limit`` prompts (the ones measured), so a
    prompt file far larger than the experiment needs costs no memory.
    """
    prompts: list[str] = []
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if limit is not None and len(prompts) >= limit:
                    break
                if not line.strip():
                    continue
                if path.suffix == ".jsonl":
                    prompts.append(_jsonl_prompt(path, number, line))
                else:
                    prompts.append(line.strip())
    except FileNotFoundError:
        raise ConfigError(f"prompts.path: prompt file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"prompts.path: cannot read {path}: {exc}") from None
    if not prompts:
        raise ConfigError(f"prompts.path: {path} holds no prompts")
    return prompts


def _jsonl_prompt(path: Path, number: int, line: str) -> str:
    try:
        item = json.loads(line)
    except json.JSONDecodeError:
        raise ConfigError(f"{path}, line {number}: not valid JSON") from None
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        for key in ("prompt", "text"):
            if isinstance(item.get(key), str):
                return item[key]
    raise ConfigError(
        f"{path}, line {number}: expected a string, or an object with a string under "
        "'prompt' or 'text'"
    )


def synthetic_prompts(engine: Engine, n: int, length: int, seed: int) -> list[list[int]]:
    """``n`` prompts of exactly ``length`` random non-special token ids (seeded)."""
    low, high, special = engine.vocab_ids_for_synthetic()
    choices = [i for i in range(low, high) if i not in special]
    rng = random.Random(seed)
    return [[rng.choice(choices) for _ in range(length)] for _ in range(n)]


def load_prompt_ids(config: ExperimentConfig, engine: Engine) -> tuple[list[list[int]], list[str]]:
    """Token ids of the ``n_prompts`` measured prompts, and any warnings."""
    source = config.prompts
    warnings: list[str] = []
    n = config.n_prompts
    if source.source == "synthetic":
        length = min(source.synthetic_input_tokens, config.max_input_tokens)
        return synthetic_prompts(engine, n, length, source.seed), warnings
    if source.source == "builtin":
        texts = builtin_prompts()
    else:
        texts = read_prompt_file(source.path, limit=n)  # type: ignore[arg-type]
    if len(texts) < n:
        warnings.append(f"the prompt set has {len(texts)} prompts; cycled to reach n_prompts={n}")
    # Each distinct prompt is tokenized once; cycled prompts share its token-id list.
    distinct = engine.tokenize(texts[: min(n, len(texts))])
    empty = [i for i, row in enumerate(distinct) if not row]
    if empty:
        raise ConfigError(f"prompt {empty[0] + 1} tokenizes to nothing; remove empty prompts")
    return [distinct[i % len(distinct)] for i in range(n)], warnings


def batched(items: list[list[int]], batch_size: int) -> list[list[list[int]]]:
    """Consecutive batches of ``batch_size`` (the last may be smaller)."""
    return [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
