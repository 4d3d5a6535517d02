"""Unlearning methods: a registry of functions ``method(context, config) -> summary``.

A method changes ``context.defender`` in place (through the context's optimizer,
which keeps pruned weights at zero) and returns a JSON-serialisable summary.

Resuming: a method draws its batches from :class:`EpochBatches` and hands
:meth:`UnlearnContext.checkpoint` its state after each step (counters, models and
optimizers, the batches' position and a function giving its generators' states); the
context saves it every ``checkpoint_seconds`` and at the end of every epoch. A resumed
run gets that state back (``context.restore(phase, players)``: attacker pretraining or
the unlearning loop) and goes on from the next step, ending with the weights an
uninterrupted run ends with.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dau._registry import Registry
from dau.compute import ComputeMeter
from dau.errors import TrainingError
from dau.progress import progress_bar

__all__ = ["EpochBatches", "UnlearnContext", "get_method", "list_methods", "register_method"]

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
    # Resuming: where the state is saved (None: never), how often, the state a resumed run
    # starts from, and the seconds its earlier part took (what its timing adds up)
    state_path: Path | None = None
    checkpoint_seconds: float = 600.0
    resume_state: dict[str, Any] | None = None
    state_extra: dict[str, Any] = field(default_factory=dict)  # saved with every state
    seconds_before: float = 0.0
    # the setup cost of reused one-time work (a cached attacker's pretraining), when reused
    reused_setup: dict[str, float] | None = None
    # The original model's training: its config (TrainConfig fields; retrain's recipe) and a
    # builder of a freshly initialised model of its architecture (None: not known, e.g. a
    # user's own nn.Module, which retrain then re-initialises module by module)
    training: dict[str, Any] | None = None
    fresh_model: Callable[[], nn.Module] | None = None
    started: float = field(default_factory=time.perf_counter, init=False)
    _saved_at: float = field(default_factory=time.perf_counter, init=False)

    def __post_init__(self) -> None:
        saved = (self.resume_state or {}).get("compute")
        self.meter = ComputeMeter(self.defender, saved)

    def setup(self) -> AbstractContextManager[None]:
        """Count what runs inside as one-time setup (reusable by later requests), not as
        this request's cost."""
        return self.meter.phase("setup")

    def compute(self) -> dict[str, Any]:
        """The run's compute (:mod:`dau.compute`): ``setup`` and ``request`` (seconds,
        defender images forward and backward), and ``reused_setup``, the setup cost of
        reused one-time work (None when nothing was reused). Stops counting."""
        return {**self.meter.close(), "reused_setup": self.reused_setup}

    @property
    def classwise(self) -> bool:
        return bool(self.plan.forgotten_classes)

    def subset(self, name: str) -> Any:
        return self.train.subset(getattr(self.plan, name))

    def optimizer(self, *, lr: float, momentum: float, weight_decay: float,
                  kernels: str) -> torch.optim.Optimizer:
        """SGD over the defender, or MaskedSGD when it has pruning masks."""
        from dau.methods.optim import make_sgd

        return make_sgd(self.defender, lr=lr, momentum=momentum, weight_decay=weight_decay,
                        masks=self.masks, kernels=kernels)

    @property
    def resuming(self) -> bool:
        """Whether this run goes on from a state its unlearning loop saved."""
        return self.resume_state is not None and self.resume_state.get("phase") == "unlearn"

    def frozen_copy(self) -> nn.Module:
        """A copy of the defender as it is now, frozen (eval mode, no parameter gradients):
        a teacher, or the model an attack runs on. The meter counts its passes too."""
        with self.meter.unhooked():
            clone = copy.deepcopy(self.defender)
        clone.eval()
        clone.requires_grad_(False)
        self.meter.watch(clone)
        return clone

    def record(self, entry: dict[str, Any]) -> None:
        self.records.append(entry)
        if self.log_record is not None:
            self.log_record(entry)

    def bar(self, total: int, desc: str, initial: int = 0) -> Any:
        return progress_bar(total=total, desc=desc, enabled=self.progress, leave=False, unit="step",
                            initial=initial)

    def elapsed(self) -> float:
        """Seconds of the run so far, its part before a resume included."""
        return self.seconds_before + time.perf_counter() - self.started

    def checkpoint(self, players: dict[str, Any], counters: dict[str, Any], *,
                   batches: EpochBatches | None = None,
                   extra: Callable[[], dict[str, Any]] | None = None, due: bool = False) -> None:
        """Save a method's state after a step when ``checkpoint_seconds`` have passed since
        the last save or when ``due`` (an epoch ended), atomically: its ``counters``, the
        ``state_dict()`` of each of its ``players`` (models, optimizers), where its
        ``batches`` go on, and ``extra()`` (its generators)."""
        if self.state_path is None:
            return
        now = time.perf_counter()
        if not due and now - self._saved_at < self.checkpoint_seconds:
            return
        from dau.checkpoint import atomic_write

        before = self.resume_state["log_lines"] if self.resume_state else 0
        state = {**self.state_extra, **counters,
                 **{name: obj.state_dict() for name, obj in players.items()},
                 **(extra() if extra is not None else {}), "elapsed": self.elapsed(),
                 "compute": self.meter.state(),
                 "log_lines": before + len(self.records),
                 "device_type": torch.device(self.device).type}
        if batches is not None:
            state["batches"] = batches.state()
        with atomic_write(self.state_path) as fh:
            torch.save(state, fh)
        self._saved_at = time.perf_counter()
        log.debug("saved the state after step %s to %s", state.get("step"), self.state_path)

    def restore(self, phase: str, players: dict[str, Any]) -> dict[str, Any] | None:
        """When this run resumes from a state saved in ``phase``: load its ``players``'
        state dicts from it and return it (else None)."""
        state = self.resume_state
        if state is None or state.get("phase") != phase:
            return None
        for name, obj in players.items():
            obj.load_state_dict(state[name])
        return state


def check_finite(loss: torch.Tensor, where: str) -> None:
    if not torch.isfinite(loss):
        raise TrainingError(f"unlearning stopped: the loss became {loss.item()} at {where}; "
                            "no output was written. Lower the learning rate (--lr).")


class EpochBatches:
    """(epoch, batch-in-epoch, (x, y)) over ``epochs`` shuffled passes of ``indices``.

    Each epoch's order and augmentation come from ``(seed, epoch)`` alone;
    :meth:`state` is where the next batch starts (epoch, batch, augmentation generator),
    and ``start=`` such a state goes on from there with the same batches.
    """

    def __init__(self, ctx: UnlearnContext, indices: Any, *, epochs: int, batch_size: int,
                 seed: int, augment: bool, start: dict[str, Any] | None = None) -> None:
        self.ctx, self.indices, self.epochs, self.batch_size = ctx, indices, epochs, batch_size
        self.seed, self.augment, self.start = seed, augment, start
        self.per_epoch = steps_per_epoch(len(indices), batch_size)
        self.epoch, self.next_batch = 0, 0
        self.generator: torch.Generator | None = None
        self.positions: Any = None  # the positions (in ctx.train) of the batch last yielded

    def __iter__(self) -> Iterator[tuple[int, int, Any]]:
        from dau.data.loaders import iterate_batches
        from dau.training import augmentation_generator, epoch_order

        first = int(self.start["epoch"]) if self.start else 0
        for epoch in range(first, self.epochs):
            order = epoch_order(self.indices, self.seed, epoch, self.batch_size)
            gen = augmentation_generator(self.ctx.device, self.seed, epoch)
            skip = 0
            if self.start and epoch == first:
                skip = int(self.start["batch"])
                gen.set_state(self.start["generator"])
            self.epoch, self.next_batch, self.generator = epoch, skip, gen
            batches = iterate_batches(self.ctx.train, order[skip * self.batch_size:],
                                      self.batch_size, augment=self.augment and self.ctx.augment,
                                      info=self.ctx.info, device=self.ctx.device, generator=gen)
            for index, batch in enumerate(batches, start=skip):
                self.next_batch = index + 1
                self.positions = order[index * self.batch_size:(index + 1) * self.batch_size]
                yield epoch, index, batch

    @property
    def total(self) -> int:
        """The batches of all epochs."""
        return self.epochs * self.per_epoch

    @property
    def epoch_done(self) -> bool:
        """Whether the batch last yielded was its epoch's last."""
        return self.next_batch >= self.per_epoch

    def state(self) -> dict[str, Any]:
        assert self.generator is not None, "state() before the first batch"
        return {"epoch": self.epoch, "batch": self.next_batch,
                "generator": self.generator.get_state()}


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Training batches in an epoch of ``n`` samples: a last batch of one sample is left
    out (:func:`dau.training.epoch_order`)."""
    return n // batch_size + (1 if n % batch_size > 1 or n == 1 else 0)


def set_lr(optimizer: torch.optim.Optimizer, schedule: str, base: float, step: int,
           total: int) -> float:
    """Set and return the learning rate of ``step`` (1-based) of ``total``: ``base``
    (``constant``), or ``base · (1 + cos(π (step − 1) / total)) / 2`` (``cosine``: ``base``
    at the first step, decaying towards 0 after the last)."""
    lr = base if schedule == "constant" else base * (1 + math.cos(math.pi * (step - 1) / total)) / 2
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr
