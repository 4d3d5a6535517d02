"""Baselines in the same harness as DAU (spec §6, Unlearn-Sparse's hyper-parameters).

* ``ft``: fine-tune on the retain set with cross-entropy;
* ``ga``: gradient ascent on the forget set (minimise −CE).
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F

from dau.methods._registry import (
    EpochBatches,
    UnlearnContext,
    check_finite,
    register_method,
    set_lr,
    steps_per_epoch,
)

__all__ = ["fine_tune", "gradient_ascent"]


def _descend(ctx: UnlearnContext, config: Any, set_name: str, sign: float, desc: str) -> dict[str, Any]:
    config = config.filled()
    indices = getattr(ctx.plan, set_name)
    optimizer = ctx.optimizer(lr=config.lr, momentum=config.momentum,
                              weight_decay=config.weight_decay, kernels=config.kernels)
    players = {"defender": ctx.defender, "optimizer": optimizer}
    saved = ctx.restore("unlearn", players)
    step = int(saved["step"]) if saved else 0
    ctx.defender.train()
    total = config.epochs * steps_per_epoch(len(indices), config.batch_size)
    bar = ctx.bar(total, desc, initial=step)
    batches = EpochBatches(ctx, indices, epochs=config.epochs, batch_size=config.batch_size,
                           seed=config.seed, augment=True, start=saved["batches"] if saved else None)
    for epoch, _, (x, y) in batches:
        step += 1
        lr = set_lr(optimizer, config.schedule, config.lr, step, total)
        logits, _ = ctx.defender(x)
        loss = sign * F.cross_entropy(logits, y)
        check_finite(loss, f"step {step} (epoch {epoch + 1})")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        ctx.record({"phase": "unlearn", "epoch": epoch + 1, "step": step, "lr": lr,
                    "loss": loss.item()})
        if step < total:
            ctx.checkpoint(players, {"phase": "unlearn", "step": step}, batches=batches,
                           due=batches.epoch_done)
        bar.update(1)
    bar.close()
    return {"steps": step}


@register_method("ft")
def fine_tune(ctx: UnlearnContext, config: Any) -> dict[str, Any]:
    """Fine-tune on the retain set."""
    return _descend(ctx, config, "retain", 1.0, "unlearning (ft)")


@register_method("ga")
def gradient_ascent(ctx: UnlearnContext, config: Any) -> dict[str, Any]:
    """Gradient ascent on the forget set."""
    if len(ctx.plan.forget) == 0:
        from dau.errors import ConfigError

        raise ConfigError("--method ga needs a non-empty forget set")
    return _descend(ctx, config, "forget", -1.0, "unlearning (ga)")
