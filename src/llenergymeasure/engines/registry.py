"""Which module implements each engine; engines are imported only when one is created.

A new engine is one module with an ``Engine`` subclass, registered here, plus its config
section class in ``config.engines``.
"""

from __future__ import annotations

import importlib

from llenergymeasure.config.engines import ENGINE_SECTIONS
from llenergymeasure.config.experiment import ExperimentConfig
from llenergymeasure.engines.base import Engine
from llenergymeasure.errors import ConfigError

#: Engine name -> "module:Class" of its implementation.
ENGINES: dict[str, str] = {
    "transformers": "llenergymeasure.engines.transformers_engine:TransformersEngine",
    "vllm": "llenergymeasure.engines.vllm_engine:VLLMEngine",
}


def engine_class(name: str) -> type[Engine]:
    """The Engine subclass registered under ``name``."""
    if name not in ENGINES:
        raise ConfigError(f"engine {name!r} is not one of {', '.join(sorted(ENGINES))}")
    module_name, class_name = ENGINES[name].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Engine)):
        raise TypeError(f"{ENGINES[name]} is not an Engine")
    return cls


def create_engine(config: ExperimentConfig) -> Engine:
    """The engine the config names (not loaded yet)."""
    return engine_class(config.engine)(config)


assert set(ENGINES) == set(ENGINE_SECTIONS), "every engine needs a config section and a module"
