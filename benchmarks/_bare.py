"""A bare ``model.generate`` loop: the reference the harness is compared with."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from llenergymeasure.config.experiment import ExperimentConfig


def prepare(config: ExperimentConfig) -> tuple[Any, list[tuple[Any, Any]], int]:
    """The model as the harness loads it (same dtype and device) and the same prompts, padded
    batch by batch onto the model's device (not timed)."""
    import transformers

    from llenergymeasure.engines.transformers_engine import TransformersEngine
    from llenergymeasure.measure.prompts import batched, load_prompt_ids

    transformers.utils.logging.disable_progress_bar()
    engine = TransformersEngine(config)  # resolves model, dtype and device as `llem run` does
    engine.load()
    ids, _ = load_prompt_ids(config, engine)
    tokenizer = engine.tokenizer
    model = engine.model  # a plain transformers model: generate() below adds nothing to it
    device = next(model.parameters()).device
    batches = []
    for batch in batched(ids, config.batch_size):
        enc = tokenizer.pad({"input_ids": batch}, return_tensors="pt", padding=True)
        batches.append((enc["input_ids"].to(device), enc["attention_mask"].to(device)))
    return model, batches, tokenizer.pad_token_id


def bare_tokens_per_second(
    model: Any,
    batches: list[tuple[Any, Any]],
    pad_id: int,
    new_tokens: int,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Output tokens per second (of ``clock``) of plain fixed-length greedy generate."""
    import torch

    tokens = 0
    start = clock()
    with torch.inference_mode():
        for input_ids, mask in batches:
            out = model.generate(
                input_ids=input_ids,
                attention_mask=mask,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                pad_token_id=pad_id,
            )
            tokens += (out.shape[1] - input_ids.shape[1]) * out.shape[0]
        if input_ids.is_cuda:
            torch.cuda.synchronize(input_ids.device)
    return tokens / (clock() - start)
