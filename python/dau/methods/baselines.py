"""Baselines in the same harness as DAU (spec §6, Unlearn-Sparse's hyper-parameters).

* ``ft``: fine-tune on the retain set with cross-entropy;
* ``ga``: gradient ascent on the forget set (minimise −CE);
* ``l1-sparse``: ``ft`` plus an ℓ1 penalty on all weights whose weight decays linearly
  to 0 over the steps (Unlearn-Sparse's ``FT_prune``).

The other baselines have a module each (``docs/methods/``); all step through
:class:`dau.methods.steps.StepLoop`.
"""

from __future__ import annotations

from typing import Any

import torch

from dau.methods._registry import UnlearnContext, register_method
from dau.methods.steps import Batch, StepLoop, cross_entropy, need_forget, setting

__all__ = ["fine_tune", "gradient_ascent", "l1_sparse"]


def _descend(ctx: UnlearnContext, config: Any, set_name: str, sign: float, desc: str) -> dict[str, Any]:
    config = config.filled()
    loop = StepLoop(ctx, config, desc)
    return loop.run(loop.epochs(getattr(ctx.plan, set_name)),
                    lambda batch: (sign * cross_entropy(ctx, batch), {}))


@register_method("ft")
def fine_tune(ctx: UnlearnContext, config: Any) -> dict[str, Any]:
    """Fine-tune on the retain set."""
    return _descend(ctx, config, "retain", 1.0, "unlearning (ft)")


@register_method("ga")
def gradient_ascent(ctx: UnlearnContext, config: Any) -> dict[str, Any]:
    """Gradient ascent on the forget set."""
    need_forget(ctx, "ga")
    return _descend(ctx, config, "forget", -1.0, "unlearning (ga)")


@register_method("l1-sparse")
def l1_sparse(ctx: UnlearnContext, config: Any) -> dict[str, Any]:
    """Fine-tune on the retain set with ``l1_alpha · (1 − (step − 1) / steps) · ‖w‖₁``."""
    config = config.filled()
    alpha = setting(config, "l1_alpha")
    loop = StepLoop(ctx, config, "unlearning (l1-sparse)")
    batches = loop.epochs(ctx.plan.retain)
    params = list(ctx.defender.parameters())

    def step_loss(batch: Batch) -> tuple[torch.Tensor, dict[str, Any]]:
        weight = alpha * (1.0 - (loop.step - 1) / batches.total)
        norm = torch.stack([p.abs().sum() for p in params]).sum()
        return cross_entropy(ctx, batch) + weight * norm, {"l1_weight": weight,
                                                           "l1_norm": norm.item()}

    return loop.run(batches, step_loss)
