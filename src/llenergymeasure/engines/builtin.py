"""Built-in offline models: small random-weight causal LMs with a locally trained tokenizer.

They let `llem run` work with no network and no GPU. Each is built deterministically (fixed
seeds, a tokenizer trained on the package's own prompt text) on first use into a cache
directory, then loaded with ``from_pretrained`` like any local model. Their outputs are
meaningless text; their cost per token is real.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from llenergymeasure.errors import ConfigError

PREFIX = "builtin:"
#: Bump when a builtin model's recipe changes, so caches built by older versions are not reused.
RECIPE_VERSION = "1"
VOCAB_SIZE = 2048
SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<unk>"]
PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3


@dataclass(frozen=True)
class BuiltinSpec:
    """How one builtin model is built: a transformers config class and its arguments."""

    name: str
    config_class: str
    config_kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""


BUILTIN_MODELS: dict[str, BuiltinSpec] = {
    "tiny-llama": BuiltinSpec(
        name="tiny-llama",
        config_class="LlamaConfig",
        config_kwargs={
            "hidden_size": 256,
            "intermediate_size": 688,
            "num_hidden_layers": 4,
            "num_attention_heads": 8,
            "num_key_value_heads": 4,
            "max_position_embeddings": 1024,
            "tie_word_embeddings": False,
        },
        description="Llama architecture, grouped-query attention, 4 layers, ~3.5M parameters",
    ),
    "tiny-gpt2": BuiltinSpec(
        name="tiny-gpt2",
        config_class="GPT2Config",
        config_kwargs={"n_embd": 256, "n_layer": 4, "n_head": 8, "n_positions": 1024},
        description="GPT-2 architecture, 4 layers, ~3.7M parameters",
    ),
}


#: Builtin models *trained* and shipped inside the package (files under data/builtin/NAME),
#: reproducible with the script named in their training.json.
SHIPPED_MODELS: dict[str, str] = {
    "shakespeare": "Llama, 4 layers, ~1.05M parameters, trained on Shakespeare's plays "
    "(scripts/train_shakespeare.py); held-out text: builtin quality text shakespeare-heldout",
}


def is_builtin(model: str) -> bool:
    """True for a ``builtin:NAME`` model reference."""
    return model.startswith(PREFIX)


def builtin_name(model: str) -> str:
    """The NAME of ``builtin:NAME``, checked against the known builtin models."""
    name = model[len(PREFIX) :]
    if name not in BUILTIN_MODELS and name not in SHIPPED_MODELS:
        known = ", ".join(PREFIX + n for n in [*BUILTIN_MODELS, *SHIPPED_MODELS])
        raise ConfigError(f"unknown builtin model {model!r}; available: {known}")
    return name


def cache_root() -> Path:
    """Where builtin models are built: $LLEM_CACHE_DIR, else ~/.cache/llenergymeasure."""
    configured = os.environ.get("LLEM_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "llenergymeasure"


def builtin_path(model: str) -> Path:
    """The local directory of a builtin model, built on first use."""
    name = builtin_name(model)
    if name in SHIPPED_MODELS:
        return Path(str(resources.files("llenergymeasure.data").joinpath("builtin").joinpath(name)))
    target = cache_root() / "models" / f"{name}-v{RECIPE_VERSION}"
    if not (target / "config.json").exists():
        _build(BUILTIN_MODELS[name], target)
    return target


def _training_text() -> list[str]:
    text = resources.files("llenergymeasure.data").joinpath("prompts.txt").read_text("utf-8")
    return [line for line in text.splitlines() if line.strip()]


def _train_tokenizer() -> Any:
    """A byte-level BPE tokenizer trained on the package's prompt text (deterministic)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_training_text(), trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        padding_side="left",
    )
    return wrapped


def _build(spec: BuiltinSpec, target: Path) -> None:
    """Build the model and tokenizer into a temp dir, then rename it into place atomically."""
    import torch
    import transformers

    config_class = getattr(transformers, spec.config_class)
    tokenizer = _train_tokenizer()
    config = config_class(
        vocab_size=len(tokenizer),
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        pad_token_id=PAD_ID,
        **spec.config_kwargs,
    )
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(0)
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    finally:
        torch.random.set_rng_state(generator_state)
    model.generation_config.pad_token_id = PAD_ID
    model.generation_config.eos_token_id = EOS_ID
    model.generation_config.bos_token_id = BOS_ID

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            staging.rename(target)
        except OSError:
            # Another process finished the same build first; its copy is identical.
            if not (target / "config.json").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
