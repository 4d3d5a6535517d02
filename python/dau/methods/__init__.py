"""Unlearning methods (``dau`` and the baselines: ``docs/methods/``) and the masked optimizer
they update through."""

from dau.methods import (  # noqa: F401  (registers the methods)
    amun,
    baselines,
    boundary,
    dau,
    neggrad,
    retrain,
    rl,
    scrub,
    ssd,
)
from dau.methods._registry import UnlearnContext, get_method, list_methods, register_method

__all__ = ["UnlearnContext", "get_method", "list_methods", "register_method"]
