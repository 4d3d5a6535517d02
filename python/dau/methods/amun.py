"""``amun``: Adversarial Mixup UNlearning (Ebrahimpour-Boroojeny et al., *Not All Wrong is
Bad: Using Adversarial Examples for Unlearning*, ICML'25).

For every forget sample the original model's nearest adversarial example is searched for
(L2 PGD: ``amun_steps`` normalised-gradient steps of a tenth of the budget, projected on the
budget's ball; a sample stops as soon as it is misclassified, and the budget of those still
classified right doubles, ``amun_rounds`` budgets at most). It is labelled with the class the
original predicts for it, a wrong one. The defender is then fine-tuned on the training set
(retain and forget, augmented) together with these adversarial examples (as they are): each
step's batch adds its share of the adversarial set, all of it once per epoch. Learning the
forget samples' close neighbours as other classes lowers the model's confidence on the forget
samples much as never having seen them would, without hurting the rest.

As in the reference, the first budget of the first 50 forget samples is ``amun_eps``; the
others start at the median of the budgets those needed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dau.methods._registry import UnlearnContext, register_method
from dau.methods.boundary import wrong_class
from dau.methods.steps import Batch, StepLoop, cross_entropy, need_forget, setting, stream_seed

__all__ = ["adversarial_examples", "amun", "pgd_search"]

PROBE = 50  # the forget samples whose budgets set the others' first one (the reference's)
_ORDER_SALT = 0xA3E7  # the adversarial examples' order per epoch


def pgd_search(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int,
               rounds: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each sample's nearest misclassified point found by L2 PGD from ``eps`` (doubled per
    round), its budget, and whether it is misclassified (``model`` in eval mode)."""
    budget = torch.full((len(y),), float(eps), device=x.device)
    adv, done = x.clone(), torch.zeros(len(y), dtype=torch.bool, device=x.device)
    for round_ in range(rounds):
        if round_:
            budget[~done] *= 2
        for _ in range(steps):
            rows = (~done).nonzero().squeeze(1)
            if len(rows) == 0:
                return adv, budget, done
            point = adv[rows].requires_grad_(True)
            logits, _ = model(point)
            wrong = logits.argmax(1) != y[rows]
            done[rows[wrong]] = True  # stops at the first point it is misclassified at
            (grad,) = torch.autograd.grad(F.cross_entropy(logits, y[rows]), point)
            norm = grad.flatten(1).norm(dim=1).add(1e-10).view(-1, 1, 1, 1)
            size = budget[rows].view(-1, 1, 1, 1)
            delta = point.detach() + size / 10 * grad / norm - x[rows]
            shrink = (size.flatten() / delta.flatten(1).norm(dim=1).clamp_min(1e-12)).clamp(max=1)
            moved = (x[rows] + delta * shrink.view(-1, 1, 1, 1)).clamp(0.0, 1.0)
            adv[rows[~wrong]] = moved[~wrong]
    rows = (~done).nonzero().squeeze(1)  # the last step's points
    if len(rows):
        with torch.no_grad():
            logits, _ = model(adv[rows])
        done[rows[logits.argmax(1) != y[rows]]] = True
    return adv, budget, done


def adversarial_examples(ctx: UnlearnContext, config: Any) -> dict[str, Any]:
    """The forget set's adversarial examples (``images``, in the forget set's order), their
    ``labels`` (the original's prediction; its highest wrong class where the search found no
    misclassified point), ``budgets`` and whether each was ``found``."""
    from dau.data.loaders import iterate_batches

    model, forget = ctx.defender, ctx.plan.forget
    eps, steps, rounds = (setting(config, k) for k in ("amun_eps", "amun_steps", "amun_rounds"))
    was_training = model.training
    model.eval()
    parts: list[tuple[torch.Tensor, ...]] = []
    bar = ctx.bar(len(forget), "adversarial examples (amun)")
    for part, chunk in enumerate((forget[:PROBE], forget[PROBE:])):
        if part:  # the others start at the probe's median budget
            eps = float(torch.cat([p[2] for p in parts]).median())
        for x, y in iterate_batches(ctx.train, chunk, config.batch_size, augment=False,
                                    device=ctx.device):
            adv, budget, found = pgd_search(model, x, y, eps, steps, rounds)
            with torch.no_grad():
                logits, _ = model(adv)
            labels = torch.where(found, logits.argmax(1), wrong_class(logits, y))
            parts.append((adv.detach(), labels, budget, found))
            bar.update(len(y))
    bar.close()
    model.train(was_training)
    images, labels, budgets, found = (torch.cat(column) for column in zip(*parts, strict=True))
    return {"images": images, "labels": labels, "budgets": budgets, "found": found}


@register_method("amun")
def amun(ctx: UnlearnContext, config: Any) -> dict[str, Any]:
    """Fine-tune on the training set and the forget samples' adversarial examples."""
    need_forget(ctx, "amun")
    config = config.filled()
    if ctx.resuming:  # rebuilt from the original, as the interrupted run built it
        with ctx.meter.uncounted():
            adversarial = adversarial_examples(ctx, config)
    else:
        adversarial = adversarial_examples(ctx, config)
    loop = StepLoop(ctx, config, "unlearning (amun)")
    batches = loop.epochs(ctx.plan.train)
    per_epoch = batches.batches.per_epoch
    count = len(adversarial["labels"])
    share = -(-count // per_epoch)
    seed = stream_seed(config.seed, _ORDER_SALT)
    orders: dict[int, np.ndarray] = {}

    def step_loss(batch: Batch) -> tuple[torch.Tensor, dict[str, Any]]:
        from dau.training import epoch_order

        if batch.epoch not in orders:  # each epoch passes over all of them in its own order
            orders.clear()
            orders[batch.epoch] = epoch_order(np.arange(count), seed, batch.epoch)
        index = (loop.step - 1) % per_epoch
        order = orders[batch.epoch][index * share:(index + 1) * share]
        rows = torch.as_tensor(order, dtype=torch.long, device=ctx.device)
        mixed = Batch(batch.epoch, torch.cat([batch.x, adversarial["images"][rows]]),
                      torch.cat([batch.y, adversarial["labels"][rows]]), batch.positions)
        return cross_entropy(ctx, mixed), {"adversarial": len(rows)}

    summary = loop.run(batches, step_loss)
    return {**summary, "adversarial": count,
            "found": float(adversarial["found"].float().mean()),
            "median_budget": float(adversarial["budgets"].median())}
