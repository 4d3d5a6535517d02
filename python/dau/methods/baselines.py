"""Baselines in the same harness as DAU (spec §6, Unlearn-Sparse's hyper-parameters).

* ``ft``: fine-tune on the retain set with cross-entropy;
* ``ga``: gradient ascent on the forget set (minimise −CE).

The other baselines have a module each (``docs/methods/``); all step through
:class:`dau.methods.steps.StepLoop`.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F

from dau.methods._registry import UnlearnContext, register_method
from dau.methods.steps import Batch, StepLoop, need_forget

__all__ = ["fine_tune", "gradient_ascent"]


def _descend(ctx: UnlearnContext, config: Any, set_name: str, sign: float, desc: str) -> dict[str, Any]:
    config = config.filled()
    loop = StepLoop(ctx, config, desc)

    def step_loss(batch: Batch) -> tuple[Any, dict[str, Any]]:
        logits, _ = ctx.defender(batch.x)
        return sign * F.cross_entropy(logits, batch.y), {}

    return loop.run(loop.epochs(getattr(ctx.plan, set_name)), step_loss)


@register_method("ft")
def fine_tune(ctx: UnlearnContext, config: Any) -> dict[str, Any]:
    """Fine-tune on the retain set."""
    return _descend(ctx, config, "retain", 1.0, "unlearning (ft)")


@register_method("ga")
def gradient_ascent(ctx: UnlearnContext, config: Any) -> dict[str, Any]:
    """Gradient ascent on the forget set."""
    need_forget(ctx, "ga")
    return _descend(ctx, config, "forget", -1.0, "unlearning (ga)")
