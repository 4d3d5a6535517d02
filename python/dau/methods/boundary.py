"""``bs``: Boundary Shrink (Chen et al., *Boundary Unlearning*, CVPR'23).

Each forget batch is moved one FGSM step (``bs_bound`` in L∞, pixels in [0, 1], rounded to
the 8-bit grid) up the original model's loss; the class the original predicts there is the
sample's nearest wrong class, and the defender is fine-tuned to predict it on the unmoved
sample: the forget samples are pushed across the nearest decision boundary. The attack runs
on a frozen copy of the original (eval mode), whose passes the run's compute counts.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dau.methods._registry import UnlearnContext, register_method
from dau.methods.steps import Batch, StepLoop, cross_entropy, need_forget, setting

__all__ = ["boundary_shrink", "nearest_wrong_class", "wrong_class"]


def wrong_class(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The highest-scoring class other than ``y``, per row."""
    return logits.scatter(1, y[:, None], float("-inf")).argmax(1)


def nearest_wrong_class(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                        bound: float) -> tuple[torch.Tensor, float]:
    """The class ``model`` predicts one FGSM step of size ``bound`` away from ``x`` (the
    highest other class where the step does not leave ``y``), and the fraction of the batch
    whose prediction the step changed."""
    x = x.detach().requires_grad_(True)
    logits, _ = model(x)
    (grad,) = torch.autograd.grad(F.cross_entropy(logits, y), x)
    moved = torch.round((x.detach() + bound * grad.sign()).clamp(0.0, 1.0) * 255) / 255
    with torch.no_grad():
        logits, _ = model(moved)
    left = logits.argmax(1) != y
    return wrong_class(logits, y), float(left.float().mean())


@register_method("bs")
def boundary_shrink(ctx: UnlearnContext, config: Any) -> dict[str, Any]:
    """Fine-tune the forget samples towards their nearest wrong class."""
    need_forget(ctx, "bs")
    config = config.filled()
    bound = setting(config, "bs_bound")
    original = ctx.frozen_copy()  # a resumed run's defender is the original until restored
    loop = StepLoop(ctx, config, "unlearning (bs)")

    def step_loss(batch: Batch) -> tuple[torch.Tensor, dict[str, Any]]:
        labels, crossed = nearest_wrong_class(original, batch.x, batch.y, bound)
        return cross_entropy(ctx, batch, labels), {"crossed": crossed}

    return loop.run(loop.epochs(ctx.plan.forget), step_loss)
