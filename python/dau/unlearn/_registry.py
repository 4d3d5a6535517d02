"""Unlearning methods: a registry of functions ``method(context, config) -> summary``.

A method changes ``context.defender`` in place (through the context's optimizer,
which keeps pruned weights at zero) and returns a JSON-serialisable summary.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from dau._registry import Registry
from dau.errors import TrainingError

__all__ = ["UnlearnContext", "get_method", "list_methods", "register_method"]

log = logging.getLogger(__name__)

Method = Callable[["UnlearnContext", Any], dict[str, Any]]
_METHODS: Registry[Method] = Registry("method", "--method")
register_method = _METHODS.register
get_method = _METHODS.get


def list_methods() -> list[str]:
    return _METHODS.names()


@dataclass
class UnlearnContext:
    """Everything a method needs: the model, the data (on the device) and the split."""

    defender: nn.Module
    info: Any  # DatasetInfo
    train: Any  # ImageData of the whole training set, on the device
    plan: Any  # SplitPlan
    device: str
    masks: dict[str, torch.Tensor] | None = None
    cache_dir: Path | None = None  # where pretrained attackers are cached (the original run)
    attacker_path: Path | None = None  # a given pretrained attacker (--attacker)
    progress: bool = True
    # The original model's augmentation policy: a model trained without random crop / flip
    # is unlearned without them too (augmented inputs are out of its training distribution).
    augment: bool = True
    records: list[dict[str, Any]] = field(default_factory=list)
    log_record: Callable[[dict[str, Any]], None] | None = None

    @property
    def classwise(self) -> bool:
        return bool(self.plan.forgotten_classes)

    def subset(self, name: str) -> Any:
        return self.train.subset(getattr(self.plan, name))

    def optimizer(self, *, lr: float, momentum: float, weight_decay: float,
                  kernels: str) -> torch.optim.Optimizer:
        """SGD over the defender, or MaskedSGD when it has pruning masks."""
        from dau.unlearn.optim import make_sgd

        return make_sgd(self.defender, lr=lr, momentum=momentum, weight_decay=weight_decay,
                        masks=self.masks, kernels=kernels)

    def record(self, entry: dict[str, Any]) -> None:
        self.records.append(entry)
        if self.log_record is not None:
            self.log_record(entry)

    def bar(self, total: int, desc: str) -> Any:
        return tqdm(total=total, desc=desc, disable=not self.progress, leave=False, unit="step")


def check_finite(loss: torch.Tensor, where: str) -> None:
    if not torch.isfinite(loss):
        raise TrainingError(f"unlearning stopped: the loss became {loss.item()} at {where}; "
                            "no output was written. Lower the learning rate (--lr).")


def epochs_of_batches(ctx: UnlearnContext, indices: Any, *, epochs: int, batch_size: int,
                      seed: int, augment: bool) -> Iterator[tuple[int, int, Any]]:
    """(epoch, step-in-epoch, (x, y)) over ``epochs`` shuffled passes of ``indices``."""
    from dau.data.loaders import iterate_batches
    from dau.train import augmentation_generator, epoch_order

    data = ctx.train
    for epoch in range(epochs):
        order = epoch_order(indices, seed, epoch)
        gen = augmentation_generator(ctx.device, seed, epoch)
        batches = iterate_batches(data, order, batch_size, augment=augment and ctx.augment,
                                  info=ctx.info, device=ctx.device, generator=gen)
        for step, batch in enumerate(batches):
            yield epoch, step, batch


def steps_per_epoch(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)


def set_lr(optimizer: torch.optim.Optimizer, schedule: str, base: float, step: int,
           total: int) -> float:
    """Set and return the learning rate of ``step`` (1-based) of ``total``: ``base``
    (``constant``), or ``base · (1 + cos(π (step − 1) / total)) / 2`` (``cosine``: ``base``
    at the first step, decaying towards 0 after the last)."""
    lr = base if schedule == "constant" else base * (1 + math.cos(math.pi * (step - 1) / total)) / 2
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr
