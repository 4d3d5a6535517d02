"""``retrain``: train from scratch on the retain set, as a method, so that the gold standard
the other methods are judged against has its cost counted as theirs is.

The defender is re-initialised in place by :mod:`dau.training`'s seed rule (its
architecture's fresh initialisation with torch seeded by the run's seed; a pruned model keeps
its masks), then trained on the retain set with training's epoch order, augmentation streams
and learning-rate scheduler. With the original's batch size and seed the weights are those of
``dau train --forget SPEC --exclude-forget``.
"""

from __future__ import annotations

from typing import Any

import torch

from dau.config import TrainConfig
from dau.methods._registry import UnlearnContext, register_method
from dau.methods.steps import StepLoop, cross_entropy

__all__ = ["retrain"]


def reinitialise(ctx: UnlearnContext, seed: int) -> None:
    """Give the defender fresh weights (and BatchNorm statistics) in place: those of its
    architecture built under ``seed`` where the context knows how to build it, else each
    module's own ``reset_parameters()`` after seeding torch; pruned weights stay zero."""
    from dau.methods.optim import apply_masks_
    from dau.training import init_model

    with torch.no_grad():
        if ctx.fresh_model is not None:
            ctx.defender.load_state_dict(init_model(seed, ctx.fresh_model).state_dict())
        else:
            torch.manual_seed(seed)
            for module in ctx.defender.modules():
                reset = getattr(module, "reset_parameters", None)
                if callable(reset):
                    reset()
    if ctx.masks:
        apply_masks_(ctx.defender, ctx.masks)


def recipe(ctx: UnlearnContext, config: Any) -> TrainConfig:
    """The training recipe of the schedule: the config's epochs, lr and schedule, with the
    original's milestones and decay factor (TrainConfig's where the original is unknown)."""
    training: dict[str, Any] = ctx.training or {}
    default = TrainConfig()
    return TrainConfig(epochs=config.epochs, lr=config.lr, schedule=config.schedule,
                       momentum=config.momentum, weight_decay=config.weight_decay,
                       milestones=tuple(training.get("milestones", default.milestones)),
                       gamma=float(training.get("gamma", default.gamma)))


@register_method("retrain")
def retrain(ctx: UnlearnContext, config: Any) -> dict[str, Any]:
    """Train a fresh model of the defender's architecture on the retain set."""
    from dau.training import lr_scheduler

    config = config.filled()
    reinitialise(ctx, config.seed)
    optimizer = ctx.optimizer(lr=config.lr, momentum=config.momentum,
                              weight_decay=config.weight_decay, kernels=config.kernels)
    scheduler = lr_scheduler(optimizer, recipe(ctx, config))
    loop = StepLoop(ctx, config, "retraining", optimizer=optimizer,
                    players={"scheduler": scheduler})

    return loop.run(loop.epochs(ctx.plan.retain), lambda batch: (cross_entropy(ctx, batch), {}),
                    lr=lambda step, total: float(optimizer.param_groups[0]["lr"]),
                    epoch_end=lambda epoch: scheduler.step())
