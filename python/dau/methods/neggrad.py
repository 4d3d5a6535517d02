"""``neggrad+``: descend on the retain set and ascend on the forget set at once.

Each step takes a retain batch (the epochs pass over the retain set) and the next batch of
endless shuffled passes over the forget set, and minimises
``α · CE(retain) − (1 − α) · CE(forget)`` (Kurmanji et al., *Towards Unbounded Machine
Unlearning*, NeurIPS'23, as their NegGrad+; DeepUnlearn's ``NegGradPlus`` for the values).
"""

from __future__ import annotations

from typing import Any

import torch

from dau.methods._registry import UnlearnContext, register_method
from dau.methods.steps import (
    Batch,
    Cycle,
    StepLoop,
    cross_entropy,
    need_forget,
    setting,
    stream_seed,
)

__all__ = ["FORGET_SALT", "neggrad_plus"]

FORGET_SALT = 0xF0E7  # the forget batches' stream


@register_method("neggrad+")
def neggrad_plus(ctx: UnlearnContext, config: Any) -> dict[str, Any]:
    """Fine-tune on retain batches while ascending the loss of forget batches."""
    need_forget(ctx, "neggrad+")
    config = config.filled()
    alpha = setting(config, "neggrad_alpha")
    loop = StepLoop(ctx, config, "unlearning (neggrad+)")
    forget = Cycle(ctx, ctx.plan.forget, batch_size=config.forget_batch_size or config.batch_size,
                   seed=stream_seed(config.seed, FORGET_SALT))

    def step_loss(batch: Batch) -> tuple[torch.Tensor, dict[str, Any]]:
        retain_loss = cross_entropy(ctx, batch)
        forget_loss = cross_entropy(ctx, forget.batch(loop.step - 1))
        return alpha * retain_loss - (1 - alpha) * forget_loss, {
            "retain_loss": retain_loss.item(), "forget_loss": forget_loss.item()}

    return loop.run(loop.epochs(ctx.plan.retain), step_loss)
