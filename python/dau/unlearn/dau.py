"""Discriminative Adversarial Unlearning (Sharma et al. 2024): the attacker/defender min-max.

The attacker learns to tell forget samples (members, label 1) from validation
samples (non-members, label 0) from the defender's logits, the labels and the
defender's input sensitivity. The defender minimises its retain cross-entropy plus
β·(bt_weight · cross-correlation term + adv_weight · attacker cross-entropy with the
membership labels reversed). Exact reference behaviour and constants: spec §1.

Differences from the reference code, each fixed by default (``reference_compat``
restores the reference where the fix changes results):

* BatchNorm running statistics are not updated by the forget, validation and
  noisy passes (they still use batch statistics, as the reference does);
* forget / validation sets smaller than a batch work (unequal batch sizes; the
  cross-correlation pairs the first min(B_f, B_v) rows);
* the feature standardisation has an epsilon (a dead feature is not a NaN);
* after the class-wise stop (β = 0) the adversarial branch is skipped, not
  computed and multiplied by zero.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dau.errors import ConfigError

__all__ = [
    "AdversarialBatch",
    "attacker_rows",
    "cross_correlation_loss",
    "frozen_bn_stats",
    "sensitivity",
    "standardize",
]


@contextlib.contextmanager
def frozen_bn_stats(model: nn.Module, enabled: bool = True) -> Iterator[None]:
    """Forward passes inside use batch statistics but leave running statistics unchanged."""
    if not enabled:
        yield
        return
    saved: list[tuple[nn.modules.batchnorm._BatchNorm, float | None, torch.Tensor | None]] = []
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
            tracked = module.num_batches_tracked
            saved.append((module, module.momentum, None if tracked is None else tracked.clone()))
            module.momentum = 0.0
    try:
        yield
    finally:
        for module, momentum, count in saved:
            module.momentum = momentum
            if count is not None and module.num_batches_tracked is not None:
                module.num_batches_tracked.copy_(count)


def sensitivity(
    defender: nn.Module,
    x: torch.Tensor,
    logits: torch.Tensor,
    *,
    copies: int,
    sigma: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mean over ``copies`` noisy copies of |logits(x + σu) − logits(x)| / σ (spec §1.3).

    The copies are tiled along the batch axis (copy j of sample b at row j·B + b) and
    evaluated in one forward pass; u ~ N(0, I) in [0, 1] pixel space.
    """
    batch = x.shape[0]
    tiled = x.repeat(copies, *([1] * (x.dim() - 1)))
    noise = torch.randn(tiled.shape, generator=generator, device=x.device, dtype=x.dtype)
    noisy_logits, _ = defender(tiled + sigma * noise)
    delta = (noisy_logits.view(copies, batch, -1) - logits.unsqueeze(0)).abs()
    return delta.mean(0) / sigma


def attacker_rows(
    logits: torch.Tensor, labels: torch.Tensor, sens: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """The attacker input ``[logits ‖ one-hot(labels) ‖ sensitivity]`` (N × 3C)."""
    one_hot = F.one_hot(labels, num_classes).to(logits.dtype)
    return torch.cat([logits, one_hot, sens], dim=1)


def standardize(features: torch.Tensor, eps: float) -> torch.Tensor:
    """Per-dimension (x − mean) / (unbiased std + eps) over the batch."""
    return (features - features.mean(0)) / (features.std(0) + eps)


def cross_correlation_loss(
    val_features: torch.Tensor,
    forget_features: torch.Tensor,
    *,
    offdiag_weight: float,
    eps: float,
) -> torch.Tensor:
    """Σ_i (C_ii − 1)² + w Σ_{i≠j} C_ij² with C = standardized(val)ᵀ standardized(forget) / B.

    Pairs the b-th validation row with the b-th forget row over the first
    min(B_v, B_f) rows of each (spec §1.5; the reference requires B_v = B_f).
    """
    rows = min(val_features.shape[0], forget_features.shape[0])
    if rows < 2:
        return val_features.new_zeros(())
    v = standardize(val_features[:rows], eps)
    f = standardize(forget_features[:rows], eps)
    corr = v.T @ f / rows
    diag = torch.diagonal(corr)
    on = (diag - 1).pow(2).sum()
    off = corr.pow(2).sum() - diag.pow(2).sum()
    return on + offdiag_weight * off


@dataclass
class AdversarialBatch:
    """The attacker input of one step: forget rows then validation rows, with the graph."""

    rows: torch.Tensor
    membership: torch.Tensor  # 1 = member (forget), 0 = non-member (val)
    forget_features: torch.Tensor
    val_features: torch.Tensor

    @classmethod
    def build(
        cls,
        defender: nn.Module,
        forget: tuple[torch.Tensor, torch.Tensor],
        val: tuple[torch.Tensor, torch.Tensor],
        *,
        num_classes: int,
        copies: int,
        sigma: float,
        generator: torch.Generator | None,
        freeze_bn: bool,
    ) -> AdversarialBatch:
        parts, feats = [], []
        with frozen_bn_stats(defender, freeze_bn):
            for x, y in (forget, val):
                logits, features = defender(x)
                sens = sensitivity(defender, x, logits, copies=copies, sigma=sigma,
                                   generator=generator)
                parts.append(attacker_rows(logits, y, sens, num_classes))
                feats.append(features)
        n_forget, n_val = forget[1].shape[0], val[1].shape[0]
        membership = torch.cat([
            torch.ones(n_forget, dtype=torch.long, device=forget[1].device),
            torch.zeros(n_val, dtype=torch.long, device=val[1].device),
        ])
        return cls(torch.cat(parts), membership, feats[0], feats[1])


# Seeds of the forget and validation batch streams: the run seed XOR a salt, so they
# never coincide with the retain-epoch permutations (same seed, stream = epoch).
FORGET_SALT = 0x464F_5247_4554_0001
VAL_SALT = 0x5641_4C49_4441_0002


def draw_batch(n: int, batch_size: int, seed: int, salt: int, step: int) -> torch.Tensor:
    """Positions of one step's batch: the first min(B, n) of a fresh seeded permutation.

    This is what the reference does by taking the first batch of a newly shuffled
    loader each step (without replacement within a batch, with replacement across
    steps), without building a loader.
    """
    from dau import _native

    perm = _native.permutation(n, (seed ^ salt) % 2**64, step)
    return torch.from_numpy(perm[: min(batch_size, n)])


def _batch(ctx: Any, data: Any, positions: torch.Tensor, *, augment: bool,
           generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch of ``data`` at ``positions`` on the device, as the loaders make it."""
    from dau.data.loaders import iterate_batches

    return next(iterate_batches(data, positions, max(len(positions), 1), augment=augment,
                                info=ctx.info, device=ctx.device, generator=generator))


def _attacker_accuracy(scores: torch.Tensor, membership: torch.Tensor) -> dict[str, float]:
    predicted = scores.argmax(1)
    forget = membership == 1
    return {
        "attacker_acc": float((predicted == membership).float().mean()),
        "attacker_forget_acc": float((predicted[forget] == 1).float().mean()),
        "attacker_val_acc": float((predicted[~forget] == 0).float().mean()),
    }


def pretrain_attacker(ctx: Any, attacker: nn.Module, config: Any) -> dict[str, Any]:
    """Train the attacker from scratch: members = the whole training split, non-members =
    the validation set, ``config.attacker_pretrain_iters`` Adam steps (spec §1.9).

    The defender is not changed (its BatchNorm statistics are frozen unless
    ``reference_compat``). Both sides get the same augmentation policy as the
    unlearning phase (the reference augments only the members in random mode,
    which ``reference_compat`` reproduces).
    """
    train, val = ctx.subset("train"), ctx.subset("val")
    if len(val) == 0:
        raise ConfigError("attacker pretraining needs a validation set; use --val-fraction > 0")
    aug_members = ctx.classwise or config.reference_compat
    aug_val = ctx.classwise
    optimizer = torch.optim.Adam(attacker.parameters(), lr=config.attacker_lr)
    gen = _generator(ctx.device, config.seed, 0xA77A)
    ctx.defender.train()
    attacker.train()
    bar = ctx.bar(config.attacker_pretrain_iters, "pretraining attacker")
    last: dict[str, float] = {}
    for step in range(config.attacker_pretrain_iters):
        members = _batch(ctx, train, draw_batch(len(train), config.batch_size, config.seed,
                                                FORGET_SALT ^ 0xFF, step),
                         augment=aug_members, generator=gen)
        others = _batch(ctx, val, draw_batch(len(val), config.batch_size, config.seed,
                                             VAL_SALT ^ 0xFF, step),
                        augment=aug_val, generator=gen)
        adv = AdversarialBatch.build(
            ctx.defender, members, others, num_classes=ctx.info.num_classes,
            copies=config.noise_copies, sigma=config.sigma, generator=gen,
            freeze_bn=not config.reference_compat,
        )
        scores = attacker(adv.rows.detach())
        loss = F.cross_entropy(scores, adv.membership)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        last = {"attacker_loss": loss.item(), **_attacker_accuracy(scores, adv.membership)}
        if step % 50 == 0 or step == config.attacker_pretrain_iters - 1:
            ctx.record({"phase": "pretrain", "step": step + 1, **last})
        bar.update(1)
        bar.set_postfix(acc=f"{last['attacker_acc']:.2f}")
    bar.close()
    return {"iterations": config.attacker_pretrain_iters, **last}


def _generator(device: str, seed: int, salt: int) -> torch.Generator:
    gen = torch.Generator(device=device)
    gen.manual_seed((seed * 1_000_003 + salt) % 2**63)
    return gen


def check_inputs(ctx: Any, config: Any) -> None:
    if len(ctx.plan.forget) == 0:
        raise ConfigError("DAU needs a non-empty forget set")
    if len(ctx.plan.val) < 2:
        raise ConfigError("DAU needs a validation set of at least 2 samples; raise --val-fraction")
    if ctx.classwise and (config.stop_iter is None or config.stop_lr is None):
        raise ConfigError("class-wise DAU needs --stop-iter and --stop-unlearn-lr")


def unlearn_dau(ctx: Any, attacker: nn.Module, config: Any) -> dict[str, Any]:
    """The min-max loop (spec §1.5): one attacker step and one defender step per retain batch."""
    from dau.unlearn._registry import check_finite, epochs_of_batches, steps_per_epoch

    check_inputs(ctx, config)
    retain, forget, val = ctx.subset("retain"), ctx.subset("forget"), ctx.subset("val")
    augment_adv = ctx.classwise  # reference: forget/val augmented only in class-wise mode
    defender_opt = ctx.optimizer(lr=config.lr, momentum=config.momentum,
                                 weight_decay=config.weight_decay, kernels=config.kernels)
    attacker_opt = torch.optim.Adam(attacker.parameters(), lr=config.attacker_lr)
    gen = _generator(ctx.device, config.seed, 0xDA0)
    ctx.defender.train()
    attacker.train()
    total = config.epochs * steps_per_epoch(len(retain), config.batch_size)
    bar = ctx.bar(total, "unlearning (dau)")
    step = 0
    adversarial_steps = 0
    for epoch, _, (x_r, y_r) in epochs_of_batches(
        ctx, ctx.plan.retain, epochs=config.epochs, batch_size=config.batch_size,
        seed=config.seed, augment=True,
    ):
        step += 1
        beta = 1.0
        if ctx.classwise and step > config.stop_iter:
            beta = 0.0
            for group in defender_opt.param_groups:
                group["lr"] = config.stop_lr
        record: dict[str, Any] = {"phase": "unlearn", "epoch": epoch + 1, "step": step,
                                  "beta": beta, "lr": defender_opt.param_groups[0]["lr"]}
        loss_adv = loss_bt = None
        if beta > 0 or config.reference_compat:
            f_pos = draw_batch(len(forget), config.batch_size, config.seed, FORGET_SALT, step)
            v_pos = draw_batch(len(val), config.batch_size, config.seed, VAL_SALT, step)
            adv = AdversarialBatch.build(
                ctx.defender,
                _batch(ctx, forget, f_pos, augment=augment_adv, generator=gen),
                _batch(ctx, val, v_pos, augment=augment_adv, generator=gen),
                num_classes=ctx.info.num_classes, copies=config.noise_copies,
                sigma=config.sigma, generator=gen, freeze_bn=not config.reference_compat,
            )
            for _ in range(config.attacker_steps):
                scores = attacker(adv.rows.detach())
                loss_a = F.cross_entropy(scores, adv.membership)
                attacker_opt.zero_grad(set_to_none=True)
                loss_a.backward()
                attacker_opt.step()
            record.update(attacker_loss=loss_a.item(), **_attacker_accuracy(scores, adv.membership))
            loss_adv = F.cross_entropy(attacker(adv.rows), 1 - adv.membership)
            loss_bt = cross_correlation_loss(adv.val_features, adv.forget_features,
                                             offdiag_weight=config.offdiag_weight,
                                             eps=0.0 if config.reference_compat else config.std_eps)
            adversarial_steps += 1
        logits, _ = ctx.defender(x_r)
        loss_r = F.cross_entropy(logits, y_r)
        loss = loss_r
        if loss_adv is not None and loss_bt is not None:
            loss = loss_r + beta * (config.bt_weight * loss_bt + config.adv_weight * loss_adv)
            record.update(adv_loss=loss_adv.item(), bt_loss=loss_bt.item())
        check_finite(loss, f"step {step} (epoch {epoch + 1})")
        defender_opt.zero_grad(set_to_none=True)
        attacker.zero_grad(set_to_none=True)
        loss.backward()
        defender_opt.step()
        record.update(retain_loss=loss_r.item(), loss=loss.item())
        ctx.record(record)
        bar.update(1)
        bar.set_postfix(loss=f"{record['loss']:.3f}")
    bar.close()
    return {"steps": step, "adversarial_steps": adversarial_steps}


def attacker_key(ctx: Any, config: Any) -> str:
    """What a pretrained attacker depends on: the train/val sets, the seed, its config."""
    import hashlib
    import json

    import numpy as np

    digest = hashlib.sha256()
    for name in ("train", "val"):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(getattr(ctx.plan, name), dtype="<i8").tobytes())
    fields = {k: getattr(config, k) for k in (
        "seed", "batch_size", "noise_copies", "sigma", "attacker_arch", "attacker_lr",
        "attacker_pretrain_iters", "reference_compat")}
    fields["augment"] = "class" if ctx.classwise else "random"
    digest.update(json.dumps(fields, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def prepare_attacker(ctx: Any, config: Any) -> tuple[nn.Module, dict[str, Any]]:
    """The pretrained attacker: given (``ctx.attacker_path``), cached, or trained now and cached."""
    import logging

    from dau.checkpoint import atomic_write_json, load_weights, save_model
    from dau.models.attacker import create_attacker

    log = logging.getLogger(__name__)
    attacker = create_attacker(config.attacker_arch, num_classes=ctx.info.num_classes).to(ctx.device)
    key = attacker_key(ctx, config)
    if ctx.attacker_path is not None:
        load_weights(attacker, ctx.attacker_path)
        log.info("using the attacker %s", ctx.attacker_path)
        return attacker, {"source": "given", "path": str(ctx.attacker_path)}
    cached = ctx.cache_dir / f"attacker-{key}.safetensors" if ctx.cache_dir is not None else None
    if cached is not None and cached.exists():
        load_weights(attacker, cached)
        log.info("reusing the pretrained attacker %s", cached)
        return attacker, {"source": "cache", "path": str(cached), "key": key}
    torch.manual_seed(config.seed)
    attacker = create_attacker(config.attacker_arch, num_classes=ctx.info.num_classes).to(ctx.device)
    log.info("pretraining the attacker (%d iterations)", config.attacker_pretrain_iters)
    summary = pretrain_attacker(ctx, attacker, config)
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            save_model(cached, attacker)
            atomic_write_json(cached.with_suffix(".json"),
                              {"key": key, "config": config.to_dict(), "summary": summary})
            log.info("cached the pretrained attacker as %s", cached)
        except OSError as exc:
            log.warning("could not cache the attacker in %s: %s", cached.parent, exc)
    return attacker, {"source": "trained", "path": str(cached) if cached else None, "key": key,
                      **summary}


def dau_method(ctx: Any, config: Any) -> dict[str, Any]:
    """DAU: pretrain (or reuse) the attacker, then run the min-max loop."""
    check_inputs(ctx, config)
    attacker, about = prepare_attacker(ctx, config)
    summary = unlearn_dau(ctx, attacker, config)
    return {"attacker": about, **summary}


def _register() -> None:
    from dau.unlearn._registry import register_method

    register_method("dau")(dau_method)


_register()
