"""Per-method, per-dataset defaults of the unlearning hyper-parameters.

DAU's come from the reference's seed commands (spec §8): CIFAR-10 random lr 0.01 ×
3 epochs; class-wise lr 0.02 × 3 with the stop at step 30 and lr 0.01 after it;
CIFAR-100 random lr 0.01 × 5; class-wise lr 0.02 × 5, stop 30 / 0.02.
Fashion-MNIST: random lr 0.01 × 1 epoch; class-wise lr 0.02 × 3 epochs with the stop at
step 60 and lr 0.01 after it (measured: at the reference's stop 30 and one epoch class 3
kept 13.5 % forget accuracy; at stop 60 it reaches 0 %, and the two epochs of fine-tuning
more bring RA back within 0.4 of retrain; see the README's table). Other datasets use
the CIFAR-10 values until measured defaults replace them (recorded in each run's manifest
either way). FT and GA use the Unlearn-Sparse README's
values (spec §6): FT lr 0.01 × 10 epochs; GA lr 1e-4 × 5 epochs.
"""

from __future__ import annotations

from typing import Any

from dau.config import UnlearnConfig

__all__ = ["DEFAULTS", "resolve"]

DEFAULTS: dict[tuple[str, str, str], dict[str, Any]] = {
    ("dau", "cifar10", "random"): dict(lr=0.01, epochs=3),
    ("dau", "cifar10", "class"): dict(lr=0.02, epochs=3, stop_iter=30, stop_lr=0.01),
    ("dau", "cifar100", "random"): dict(lr=0.01, epochs=5),
    ("dau", "cifar100", "class"): dict(lr=0.02, epochs=5, stop_iter=30, stop_lr=0.02),
    # Fashion-MNIST (its 28x28 models are trained for 10 epochs, not 182; the README's
    # table reports these settings' results).
    ("dau", "fashion-mnist", "random"): dict(lr=0.01, epochs=1),
    ("dau", "fashion-mnist", "class"): dict(lr=0.02, epochs=3, stop_iter=60, stop_lr=0.01),
    ("ft", "*", "*"): dict(lr=0.01, epochs=10),
    ("ga", "*", "*"): dict(lr=1e-4, epochs=5),
}
_FALLBACK_DATASET = "cifar10"


def resolve(config: UnlearnConfig, dataset: str, classwise: bool) -> UnlearnConfig:
    """Fill the unset (None) fields of ``config`` from the defaults table."""
    mode = "class" if classwise else "random"
    name = dataset.split(":")[0]
    table = (
        DEFAULTS.get((config.method, name, mode))
        or DEFAULTS.get((config.method, _FALLBACK_DATASET, mode))
        or DEFAULTS.get((config.method, "*", "*"), {})
    )
    changes = {k: v for k, v in table.items() if getattr(config, k) is None}
    resolved = config.replace(**changes)
    if resolved.lr is None or resolved.epochs is None:
        raise AssertionError(f"no default lr/epochs for method {config.method!r}")
    return resolved
