"""dau: Discriminative Adversarial Unlearning for image classifiers.

Make a trained classifier forget chosen training data and measure how well it
forgot against retraining from scratch. The command-line interface is ``dau``;
the library API is re-exported here lazily, so ``import dau`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "unlearn": "dau.api",
    "evaluate": "dau.api",
    "import_model": "dau.api",
    "UnlearnResult": "dau.api",
    "train": "dau.training",
    "prune": "dau.pruning.run",
    "TrainConfig": "dau.config",
    "UnlearnConfig": "dau.config",
    "list_methods": "dau.methods",
    "register_method": "dau.methods",
    "UnlearnContext": "dau.methods",
    "create_model": "dau.models",
    "list_models": "dau.models",
    "register_model": "dau.models",
    "load_dataset": "dau.data",
    "list_datasets": "dau.data",
    "register_dataset": "dau.data",
    "plan_split": "dau.data.splits",
    "load_plan": "dau.data.splits",
    "load_run": "dau.checkpoint",
    "evaluate_run": "dau.eval.runs",
    "MaskedSGD": "dau.methods.optim",
}
_SUBPACKAGES = ("data", "models", "methods", "eval", "pruning")

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"dau.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dau' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
