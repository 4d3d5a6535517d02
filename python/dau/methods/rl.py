"""``rl`` (random labels) and ``salun`` (saliency unlearning).

* ``rl`` fine-tunes on the retain and forget sets together, each forget sample labelled with
  a class drawn uniformly from the others (drawn again every epoch), as Unlearn-Saliency's
  ``RL`` does on CIFAR-100 (one shuffled set, mixed batches).
* ``salun`` computes a saliency mask first, the fraction ``salun_fraction`` of all weights
  with the largest |gradient| of the forget set's cross-entropy, and then runs ``rl`` through
  a ``MaskedSGD`` with that mask: the other weights keep their exact bits under momentum and
  weight decay (the pitfall Unlearn-Saliency PR #33 fixed). On a pruned model the mask is
  the saliency mask and the pruning mask together.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from dau.methods._registry import UnlearnContext, register_method
from dau.methods.steps import Batch, StepLoop, cross_entropy, need_forget, setting, stream_seed

__all__ = ["RandomLabels", "random_labels", "saliency_masks", "salun"]

_LABEL_SALT = 0x52AB  # the random labels' stream


class RandomLabels:
    """Each epoch, every forget sample's label is replaced by one of the other classes,
    drawn uniformly from ``(seed, epoch)`` alone (so a resumed run draws the same)."""

    def __init__(self, ctx: UnlearnContext, seed: int) -> None:
        self.ctx, self.seed = ctx, stream_seed(seed, _LABEL_SALT)
        self.forget = torch.as_tensor(ctx.plan.forget, dtype=torch.long)
        self._epoch: tuple[int, torch.Tensor] | None = None

    def shifts(self, epoch: int) -> torch.Tensor:
        """Per position of ``ctx.train``, what the label moves by (mod the classes): 0 off the
        forget set, 1 to classes − 1 on it."""
        if self._epoch is None or self._epoch[0] != epoch:
            classes = self.ctx.info.num_classes
            gen = torch.Generator().manual_seed(self.seed + epoch)
            shift = torch.zeros(len(self.ctx.train), dtype=torch.long)
            shift[self.forget] = torch.randint(1, classes, (len(self.forget),), generator=gen)
            self._epoch = (epoch, shift.to(self.ctx.device))
        return self._epoch[1]

    def labels(self, batch: Batch) -> torch.Tensor:
        positions = torch.as_tensor(batch.positions, dtype=torch.long, device=self.ctx.device)
        return (batch.y + self.shifts(batch.epoch)[positions]) % self.ctx.info.num_classes


def _relabelled_epochs(ctx: UnlearnContext, loop: StepLoop, config: Any) -> dict[str, Any]:
    labels = RandomLabels(ctx, config.seed)

    return loop.run(loop.epochs(ctx.plan.train),
                    lambda batch: (cross_entropy(ctx, batch, labels.labels(batch)), {}))


@register_method("rl")
def random_labels(ctx: UnlearnContext, config: Any) -> dict[str, Any]:
    """Fine-tune on retain and forget samples, the forget ones with random wrong labels."""
    need_forget(ctx, "rl")
    config = config.filled()
    return _relabelled_epochs(ctx, StepLoop(ctx, config, "unlearning (rl)"), config)


def saliency_masks(ctx: UnlearnContext, config: Any, fraction: float) -> dict[str, torch.Tensor]:
    """The weights ``rl`` may change (1) or not (0), by parameter name: the ``fraction`` of
    all weights with the largest |∂ CE(forget) / ∂w| (the defender in eval mode, without
    augmentation), pruned weights never."""
    from dau.data.loaders import iterate_batches

    model = ctx.defender
    named = dict(model.named_parameters())
    grads = {name: torch.zeros_like(p) for name, p in named.items()}
    forget = ctx.plan.forget
    was_training = model.training
    model.eval()
    for x, y in iterate_batches(ctx.train, forget, config.batch_size, augment=False,
                                device=ctx.device):
        logits, _ = model(x)
        loss = F.cross_entropy(logits, y, reduction="sum") / len(forget)
        for name, grad in zip(named, torch.autograd.grad(loss, list(named.values())),
                              strict=True):
            grads[name] += grad
    model.train(was_training)
    pruned = ctx.masks or {}
    scores = torch.cat([torch.where(pruned[name] != 0, g.abs(), -1.0).flatten()
                        if name in pruned else g.abs().flatten() for name, g in grads.items()])
    chosen = torch.zeros_like(scores, dtype=torch.bool)
    chosen[torch.topk(scores, int(fraction * scores.numel()), sorted=False).indices] = True
    masks, start = {}, 0
    for name, p in named.items():
        mask = chosen[start:start + p.numel()].view(p.shape)
        masks[name] = mask & (pruned[name] != 0) if name in pruned else mask
        start += p.numel()
    return masks


@register_method("salun")
def salun(ctx: UnlearnContext, config: Any) -> dict[str, Any]:
    """``rl`` through a saliency mask of the forget loss's largest gradients."""
    from dau.methods.optim import make_sgd

    need_forget(ctx, "salun")
    config = config.filled()
    fraction = setting(config, "salun_fraction")
    # a resumed run gets its mask back with the optimizer's state
    masks = ({name: torch.ones_like(p, dtype=torch.bool)
              for name, p in ctx.defender.named_parameters()} if ctx.resuming
             else saliency_masks(ctx, config, fraction))
    optimizer = make_sgd(ctx.defender, lr=config.lr, momentum=config.momentum,
                         weight_decay=config.weight_decay, masks=masks, kernels=config.kernels)
    summary = _relabelled_epochs(ctx, StepLoop(ctx, config, "unlearning (salun)",
                                               optimizer=optimizer), config)
    kept = [m for m in getattr(optimizer, "masks", {}).values()]
    free = sum(int(m.sum()) for m in kept) / max(sum(m.numel() for m in kept), 1)
    return {**summary, "free_fraction": free}
