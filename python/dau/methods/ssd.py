"""``ssd``: Selective Synaptic Dampening (Foster et al., AAAI'24), no gradient step at all.

The diagonal of the Fisher information is estimated on the forget set and on the whole
training set (retain and forget): per parameter entry, the mean over batches of the squared
gradient of the batch's cross-entropy (the model in eval mode, no augmentation). Entries that
matter much more to the forget set than to the training set, ``[]_D_f > α · []_D``, are
dampened: multiplied by ``min(λ · []_D / []_D_f, 1)``. Every other entry keeps its exact bits,
and so do pruned weights (they are never selected).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from dau.methods._registry import UnlearnContext, register_method
from dau.methods.steps import need_forget, setting

__all__ = ["importances", "ssd"]


def importances(ctx: UnlearnContext, indices: Any, batch_size: int,
                bar: Any = None) -> dict[str, torch.Tensor]:
    """Per parameter (by name), the mean over the batches of ``indices`` (in order) of the
    squared gradient of the batch's mean cross-entropy."""
    from dau.data.loaders import iterate_batches

    model = ctx.defender
    named = dict(model.named_parameters())
    total = {name: torch.zeros_like(p) for name, p in named.items()}
    batches = 0
    model.eval()
    for x, y in iterate_batches(ctx.train, indices, batch_size, augment=False, device=ctx.device):
        logits, _ = model(x)
        grads = torch.autograd.grad(F.cross_entropy(logits, y), list(named.values()))
        for name, grad in zip(named, grads, strict=True):
            total[name] += grad.square()
        batches += 1
        if bar is not None:
            bar.update(1)
    return {name: value / max(batches, 1) for name, value in total.items()}


@register_method("ssd")
def ssd(ctx: UnlearnContext, config: Any) -> dict[str, Any]:
    """Dampen the parameters the forget set depends on far more than the training set."""
    need_forget(ctx, "ssd")
    alpha, dampening = setting(config, "ssd_alpha"), setting(config, "ssd_lambda")
    plan, size = ctx.plan, config.batch_size
    bar = ctx.bar(math.ceil(len(plan.forget) / size) + math.ceil(len(plan.train) / size),
                  "importances (ssd)")
    forget = importances(ctx, plan.forget, size, bar)
    full = importances(ctx, plan.train, size, bar)
    bar.close()
    pruned = ctx.masks or {}
    selected_total = entries = 0
    with torch.no_grad():
        for step, (name, p) in enumerate(ctx.defender.named_parameters(), start=1):
            selected = forget[name] > alpha * full[name]
            if name in pruned:
                selected &= pruned[name] != 0
            factor = (dampening * full[name] / forget[name]).clamp(max=1.0)
            p.copy_(torch.where(selected, p * factor, p))
            count = int(selected.sum())
            selected_total, entries = selected_total + count, entries + p.numel()
            ctx.record({"phase": "unlearn", "step": step, "parameter": name, "selected": count,
                        "mean_factor": float(factor[selected].mean()) if count else 1.0})
    return {"selected": selected_total, "selected_fraction": selected_total / max(entries, 1)}
