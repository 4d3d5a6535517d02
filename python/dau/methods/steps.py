"""The step loop of the gradient-based baselines.

A baseline says which batches it passes over and what one step's loss is; :class:`StepLoop`
does the rest the same way for all of them: the optimizer (``MaskedSGD`` on a pruned model),
the learning rate of each step, the finiteness check, the update, one record per step
(``ctx.record``), the progress bar, and the checkpoints ``--resume`` goes on from (the batch
stream's position, the players' state dicts and torch's random streams).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from dau.errors import ConfigError
from dau.methods._registry import (
    EpochBatches,
    UnlearnContext,
    check_finite,
    set_lr,
    steps_per_epoch,
)

__all__ = ["Batch", "Cycle", "EpochPass", "StepLoop", "cross_entropy", "need_forget", "setting",
           "steps_per_epoch", "stream_seed"]

# Salt of torch's default generator in a baseline's loop (dropout of a user's model)
_RNG_SALT = 0xB45E


def stream_seed(seed: int, salt: int) -> int:
    """The seed of a secondary random stream of a run: its seed XOR a salt per use, so that
    streams never coincide with the retain epochs' (same seed, stream = epoch)."""
    return (seed ^ salt) % 2**63


def setting(config: Any, name: str) -> Any:
    """A baseline's own setting from a resolved config (``dau.methods.defaults`` fills it)."""
    value = getattr(config, name)
    if value is None:
        raise ConfigError(f"--{name.replace('_', '-')} is not set: give it, or resolve the config "
                          "with dau.methods.defaults.resolve (which fills the method's default)")
    return value


def cross_entropy(ctx: UnlearnContext, batch: Batch,
                  labels: torch.Tensor | None = None) -> torch.Tensor:
    """The defender's cross-entropy on ``batch`` (against ``labels``, default its own)."""
    logits, _ = ctx.defender(batch.x)
    return F.cross_entropy(logits, batch.y if labels is None else labels)


def need_forget(ctx: UnlearnContext, method: str) -> None:
    """A clear error where ``method`` gets an empty forget set."""
    if len(ctx.plan.forget) == 0:
        raise ConfigError(f"--method {method} needs a non-empty forget set; --forget selects none")


@dataclass
class Batch:
    """One step's batch: its epoch (from 0), inputs, labels, their positions in
    ``ctx.train``, and which pass it belongs to (where a method has several)."""

    epoch: int
    x: torch.Tensor
    y: torch.Tensor
    positions: np.ndarray
    kind: str = ""


class Source(Protocol):
    """What :meth:`StepLoop.run` passes over: batches, their count, where an epoch ends, and
    the state a resumed run's source starts from."""

    @property
    def total(self) -> int: ...

    @property
    def epoch_done(self) -> bool: ...

    def state(self) -> dict[str, Any]: ...

    def __iter__(self) -> Iterator[Batch]: ...


class EpochPass:
    """Shuffled epochs over ``indices`` (:class:`EpochBatches`) as :class:`Batch` items."""

    def __init__(self, ctx: UnlearnContext, indices: Any, *, epochs: int, batch_size: int,
                 seed: int, start: dict[str, Any] | None, augment: bool = True,
                 kind: str = "") -> None:
        self.batches = EpochBatches(ctx, indices, epochs=epochs, batch_size=batch_size,
                                    seed=seed, augment=augment, start=start)
        self.kind = kind

    @property
    def total(self) -> int:
        return self.batches.total

    @property
    def epoch_done(self) -> bool:
        return self.batches.epoch_done

    def state(self) -> dict[str, Any]:
        return self.batches.state()

    def __iter__(self) -> Iterator[Batch]:
        for epoch, _, (x, y) in self.batches:
            yield Batch(epoch, x, y, self.batches.positions, self.kind)


class Cycle:
    """Endless shuffled epochs over ``indices``, addressed by batch number: batch ``k`` is a
    function of ``(seed, k)`` alone (its epoch's order and its own augmentation generator),
    so a resumed run draws the same batches without saving anything."""

    def __init__(self, ctx: UnlearnContext, indices: Any, *, batch_size: int, seed: int,
                 augment: bool = True) -> None:
        self.ctx, self.indices, self.batch_size = ctx, np.asarray(indices), batch_size
        self.seed, self.augment = seed, augment
        self.per_epoch = steps_per_epoch(len(self.indices), batch_size)
        self._order: tuple[int, np.ndarray] | None = None

    def positions(self, k: int) -> tuple[int, np.ndarray]:
        """Batch ``k``'s epoch and positions."""
        from dau.training import epoch_order

        epoch, index = divmod(k, self.per_epoch)
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, epoch_order(self.indices, self.seed, epoch, self.batch_size))
        order = self._order[1]
        return epoch, order[index * self.batch_size:(index + 1) * self.batch_size]

    def batch(self, k: int) -> Batch:
        from dau.data.loaders import iterate_batches
        from dau.training import augmentation_generator

        epoch, positions = self.positions(k)
        ctx = self.ctx
        x, y = next(iterate_batches(
            ctx.train, positions, len(positions), augment=self.augment and ctx.augment,
            info=ctx.info, device=ctx.device,
            generator=augmentation_generator(ctx.device, self.seed, k)))
        return Batch(epoch, x, y, positions)


def _rng_state(device: str) -> dict[str, Any]:
    state = {"rng": torch.get_rng_state()}
    if torch.device(device).type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(device)
    return state


class StepLoop:
    """The loop of one baseline: builds (or takes) its optimizer, restores a resumed run's
    state into its ``players`` (the defender, the optimizer and any of the method's own),
    and :meth:`run` steps over a :class:`Source`.

    ``config`` is a resolved config (lr, epochs and schedule set).
    """

    def __init__(self, ctx: UnlearnContext, config: Any, desc: str, *,
                 optimizer: torch.optim.Optimizer | None = None,
                 players: dict[str, Any] | None = None) -> None:
        self.ctx, self.config, self.desc = ctx, config, desc
        self.optimizer = optimizer or ctx.optimizer(
            lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
            kernels=config.kernels)
        self.players = {"defender": ctx.defender, "optimizer": self.optimizer, **(players or {})}
        self.saved = ctx.restore("unlearn", self.players)
        self.step = int(self.saved["step"]) if self.saved else 0
        if self.saved is None or "rng" not in self.saved:
            torch.manual_seed(stream_seed(config.seed, _RNG_SALT))
        else:
            torch.set_rng_state(self.saved["rng"])
            if "cuda_rng" in self.saved and torch.device(ctx.device).type == "cuda":
                torch.cuda.set_rng_state(self.saved["cuda_rng"], ctx.device)

    def start(self, key: str = "batches") -> Any:
        """What a resumed run saved under ``key`` (None: it starts afresh)."""
        return self.saved.get(key) if self.saved else None

    def epochs(self, indices: Any, *, epochs: int | None = None, batch_size: int | None = None,
               seed: int | None = None, key: str = "batches", kind: str = "") -> EpochPass:
        """The config's epochs over ``indices`` (positions in ``ctx.train``), resumed where
        the saved state says."""
        config = self.config
        return EpochPass(self.ctx, indices, epochs=config.epochs if epochs is None else epochs,
                         batch_size=batch_size or config.batch_size,
                         seed=config.seed if seed is None else seed, start=self.start(key),
                         kind=kind)

    def run(self, source: Source,
            step_loss: Callable[[Batch], tuple[torch.Tensor, dict[str, Any]]], *,
            lr: Callable[[int, int], float] | None = None,
            epoch_end: Callable[[int], None] | None = None) -> dict[str, Any]:
        """One optimizer step per batch of ``source``, on the loss ``step_loss`` returns
        with the entries it adds to the step's record. ``lr(step, total)`` sets and returns
        a step's learning rate (default: the config's schedule from its lr); ``epoch_end``
        is called after the last step of each epoch."""
        ctx, config, optimizer = self.ctx, self.config, self.optimizer
        total = source.total
        bar = ctx.bar(total, self.desc, initial=self.step)
        ctx.defender.train()
        for batch in source:
            self.step += 1
            step = self.step
            rate = (lr(step, total) if lr is not None
                    else set_lr(optimizer, config.schedule, config.lr, step, total))
            loss, extra = step_loss(batch)
            check_finite(loss, f"step {step} (epoch {batch.epoch + 1})")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            ctx.record({"phase": "unlearn", "epoch": batch.epoch + 1, "step": step, "lr": rate,
                        "loss": loss.item(), **extra})
            if epoch_end is not None and source.epoch_done:
                epoch_end(batch.epoch)
            if step < total:
                ctx.checkpoint(self.players, {"phase": "unlearn", "step": step},
                               extra=lambda: {"batches": source.state(), **_rng_state(ctx.device)},
                               due=source.epoch_done)
            bar.update(1)
        bar.close()
        return {"steps": self.step}
