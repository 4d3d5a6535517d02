"""``scrub``: SCalable Remembering and Unlearning unBound (Kurmanji et al., NeurIPS'23).

The defender is the student; a frozen copy of the original is the teacher. Each epoch
starts, in the first ``scrub_msteps`` epochs, with a *max* pass over the forget set, which
pushes the student's distribution away from the teacher's there (it minimises
``−KL(teacher ‖ student)``), and then makes a *min* pass over the retain set, which keeps the
student close to the teacher and accurate there (``γ · CE + α · KL(teacher ‖ student)``).
The divergence is SCRUB's ``DistillKL``: the KL of the temperature-softened distributions,
times the temperature squared, averaged over the batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F

from dau.methods._registry import EpochBatches, UnlearnContext, register_method
from dau.methods.steps import Batch, StepLoop, need_forget, setting, stream_seed

__all__ = ["ScrubPasses", "distill_kl", "scrub"]

FORGET_SALT = 0x5C2B  # the max passes' order and augmentation


def distill_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """``KL(softmax(teacher / T) ‖ softmax(student / T)) · T²``, averaged over the batch."""
    return F.kl_div(F.log_softmax(student / temperature, 1), F.softmax(teacher / temperature, 1),
                    reduction="batchmean") * temperature**2


class ScrubPasses:
    """SCRUB's epochs as one stream of batches: epoch ``e`` is a max pass over the forget set
    (``e < msteps``) and then a min pass over the retain set. :meth:`state` is where the next
    batch comes from (each pass's :class:`EpochBatches` state, the epoch and the pass)."""

    def __init__(self, ctx: UnlearnContext, config: Any, msteps: int,
                 start: dict[str, Any] | None) -> None:
        self.epochs, self.msteps = config.epochs, min(msteps, config.epochs)
        self.passes = {
            "max": EpochBatches(ctx, ctx.plan.forget, epochs=self.msteps,
                                batch_size=config.forget_batch_size or config.batch_size,
                                seed=stream_seed(config.seed, FORGET_SALT), augment=True,
                                start=start["max"] if start else None),
            "min": EpochBatches(ctx, ctx.plan.retain, epochs=config.epochs,
                                batch_size=config.batch_size, seed=config.seed, augment=True,
                                start=start["min"] if start else None),
        }
        self.epoch, self.part = (int(start["epoch"]), str(start["part"])) if start else (0, "max")

    @property
    def total(self) -> int:
        return sum(p.total for p in self.passes.values())

    @property
    def epoch_done(self) -> bool:
        return self.part == "min" and self.passes["min"].epoch_done

    def _next_part(self) -> tuple[int, str]:
        """The epoch and pass of the batch after the one last yielded."""
        if not self.passes[self.part].epoch_done:
            return self.epoch, self.part
        if self.part == "max":
            return self.epoch, "min"
        return self.epoch + 1, "max" if self.epoch + 1 < self.msteps else "min"

    def state(self) -> dict[str, Any]:
        epoch, part = self._next_part()
        return {"epoch": epoch, "part": part,
                **{k: p.state() if p.generator is not None else None
                   for k, p in self.passes.items()}}

    def __iter__(self) -> Iterator[Batch]:
        streams = {k: iter(p) for k, p in self.passes.items()}
        first, part = self.epoch, self.part
        for epoch in range(first, self.epochs):
            for kind in ("max", "min"):
                skipped = kind == "max" and (epoch >= self.msteps
                                             or (epoch == first and part == "min"))
                if skipped or self.passes[kind].per_epoch == 0:
                    continue
                self.epoch, self.part = epoch, kind
                for _, _, (x, y) in streams[kind]:
                    yield Batch(epoch, x, y, self.passes[kind].positions, kind)
                    if self.passes[kind].epoch_done:
                        break


@register_method("scrub")
def scrub(ctx: UnlearnContext, config: Any) -> dict[str, Any]:
    """Max passes away from the teacher on the forget set, min passes towards it (and the
    labels) on the retain set."""
    need_forget(ctx, "scrub")
    config = config.filled()
    msteps, temperature = setting(config, "scrub_msteps"), setting(config, "scrub_temperature")
    ce_weight, kl_weight = setting(config, "scrub_ce_weight"), setting(config, "scrub_kl_weight")
    teacher = ctx.frozen_copy()  # the original: a resumed run's defender is too, until restored
    loop = StepLoop(ctx, config, "unlearning (scrub)")
    passes = ScrubPasses(ctx, config, msteps, loop.start())

    def step_loss(batch: Batch) -> tuple[torch.Tensor, dict[str, Any]]:
        logits, _ = ctx.defender(batch.x)
        with torch.no_grad():
            target, _ = teacher(batch.x)
        divergence = distill_kl(logits, target, temperature)
        if batch.kind == "max":
            return -divergence, {"pass": "max", "kl": divergence.item()}
        ce = F.cross_entropy(logits, batch.y)
        return ce_weight * ce + kl_weight * divergence, {"pass": "min", "kl": divergence.item(),
                                                         "ce": ce.item()}

    return loop.run(passes, step_loss)
