"""Discriminative Adversarial Unlearning (Sharma et al. 2024): the attacker/defender min-max.

The attacker learns to tell forget samples (members, label 1) from validation
samples (non-members, label 0) from the defender's logits, the labels and the
defender's input sensitivity. The defender minimises its retain cross-entropy plus
β·(bt_weight · cross-correlation term + adv_weight · attacker cross-entropy with the
membership labels reversed). Exact reference behaviour and constants: spec §1.

The step runs on dau's ops (``config.kernels``: ``fused`` compiled kernels or their
pure-PyTorch ``reference``): :func:`dau.ops.noisy_replicate` makes a batch and its m
noisy copies, :func:`dau.ops.sensitivity_features` the attacker's rows,
:func:`dau.ops.cross_correlation_loss` the Barlow-style term.

Differences from the reference code, each fixed by default (``reference_compat``
restores the reference where the fix changes results):

* one defender pass serves a batch and its m noisy copies (the reference makes a
  clean and a separate noisy pass). In train mode BatchNorm normalises with the
  statistics of the whole pass: here those of the clean batch and its copies, which
  equal the clean batch's up to O(σ), and the clean and noisy rows share them
  exactly, so the finite difference measures the input sensitivity alone; in the
  reference the noisy pass's statistics drift from the clean pass's, and the drift
  enters the difference. Measured in float64 on random-init ResNet-18s, σ = 1e-3,
  m = 10: the clean logits move by 3e-4 (32×32, B = 128) to 4e-3 (8×8, B = 12)
  relative, the sensitivity by 2 % (B = 128) to 8 % (B = 12), less than the finite
  difference's own distance from its σ → 0 limit (about 9 %, ReLU kinks). One pass
  instead of two launches half the kernels on larger batches. ``reference_compat`` makes
  the two passes separately again;
* BatchNorm running statistics are not updated by the forget, validation and
  noisy passes (they still use batch statistics, as the reference does);
* the noise comes from a counter-based generator (seed, offset): the same on the
  CPU and on CUDA, with either kernels;
* forget / validation sets smaller than a batch work (unequal batch sizes; the
  cross-correlation pairs the first min(B_f, B_v) rows);
* the feature standardisation has an epsilon (a dead feature is not a NaN);
* after the class-wise stop (β = 0) the adversarial branch is skipped, not
  computed and multiplied by zero.

Numerics (:mod:`dau.numerics`): with ``sensitivity="fd"`` every step that builds
the attacker's input runs in IEEE float32 (TF32 off), forward and backward; with
``sensitivity="jvp"`` the sensitivity is the forward-mode Jacobian-vector product
``|J u|`` along each noise direction, the σ → 0 limit of the finite difference.

Options beyond the reference (defaults keep its behaviour): ``adversarial_bn="running"``
normalises the forget/validation passes with the running statistics;
``adversarial_targets="forget"`` runs the validation passes without a graph, so the
defender's adversarial and cross-correlation losses train through the forget passes
only and the validation set stays held out; ``schedule="cosine"`` decays the lr;
``adversarial_every=N`` runs the adversarial branch on every N-th step only, so a run can
fit the retain set over more epochs at the adversarial cost of fewer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dau import ops
from dau.errors import ConfigError
from dau.numerics import ieee_float32

__all__ = [
    "DAU_OPS",
    "AdversarialBatch",
    "DauStep",
    "NoiseStream",
    "Probe",
    "attacker_input",
    "frozen_bn_stats",
    "require_kernels",
    "running_bn_stats",
]

#: The ops a DAU step calls (besides masked_sgd_ for pruned models).
DAU_OPS = ("noisy_replicate", "sensitivity_features", "cross_correlation_loss")


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


@contextlib.contextmanager
def running_bn_stats(model: nn.Module) -> Iterator[None]:
    """Forward passes inside normalise with the BatchNorm running statistics (as in
    evaluation) and leave them unchanged; everything else keeps its mode."""
    switched = [m for m in model.modules()
                if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    for module in switched:
        module.train(False)
    try:
        yield
    finally:
        for module in switched:
            module.train(True)


def require_kernels(device: str | torch.device, *, masked: bool = False) -> None:
    """Fail now, not mid-run, when the fused kernels of a DAU step are missing for ``device``."""
    from dau.ops import _library

    for op in DAU_OPS + (("masked_sgd_",) if masked else ()):
        _library.require_device(torch.device(device), op)


@dataclass
class NoiseStream:
    """Where the noisy copies' noise comes from: a seed and a counter offset that advances."""

    seed: int
    offset: int = 0

    def take(self, count: int) -> int:
        """The offset of the next ``count`` normals (and advance past them)."""
        start = self.offset
        self.offset += count
        return start


@dataclass(frozen=True)
class Probe:
    """How the attacker's input is computed (spec §1.3)."""

    copies: int = 10
    sigma: float = 1e-3
    sensitivity: str = "fd"  # "fd" finite differences, "jvp" forward-mode JVP
    kernels: ops.Kernels = "fused"
    merged: bool = True  # one defender pass for a batch and its noisy copies
    # BatchNorm in the forget/val/noisy passes: "batch" statistics that leave the running
    # ones alone, the "running" statistics, or batch statistics that "update" the running
    # ones (the reference).
    bn: str = "batch"
    # whether the validation passes keep their graph (False: the defender's losses train
    # through the forget passes only)
    val_grad: bool = True

    @classmethod
    def of(cls, config: Any) -> Probe:
        compat = bool(config.reference_compat)
        return cls(copies=config.noise_copies, sigma=config.sigma, sensitivity=config.sensitivity,
                   kernels=config.kernels, merged=not compat,
                   bn="update" if compat else config.adversarial_bn,
                   val_grad=config.adversarial_targets != "forget")  # (unset: both)


def attacker_input(
    defender: nn.Module, x: torch.Tensor, y: torch.Tensor, *, num_classes: int, probe: Probe,
    noise: NoiseStream,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The attacker rows ``[logits ‖ one-hot ‖ sensitivity]`` (B × 3C) and the features of a batch.

    The sensitivity is mean_j |logits(x + σu_j) − logits(x)| / σ over ``probe.copies``
    noise directions u_j (``fd``), or mean_j |J u_j| (``jvp``), its σ → 0 limit
    with the BatchNorm statistics of the same pass. Both stay differentiable.
    """
    batch, copies = x.shape[0], probe.copies
    start = noise.take(copies * x.numel())
    if probe.sensitivity == "jvp":
        return _jvp_input(defender, x, y, num_classes=num_classes, probe=probe, seed=noise.seed,
                          offset=start)
    tiled = ops.noisy_replicate(x, copies, probe.sigma, noise.seed, start, kernels=probe.kernels)
    if probe.merged:
        logits_all, features_all = defender(tiled)
        logits, noisy, features = logits_all[:batch], logits_all[batch:], features_all[:batch]
    else:
        logits, features = defender(x)
        noisy, _ = defender(tiled[batch:])
    rows = ops.sensitivity_features(logits, noisy, y, probe.sigma, num_classes,
                                    kernels=probe.kernels)
    return rows, features


def _jvp_input(
    defender: nn.Module, x: torch.Tensor, y: torch.Tensor, *, num_classes: int, probe: Probe,
    seed: int, offset: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``attacker_input`` with ``sensitivity="jvp"``.

    Forward-mode AD (``torch.autograd.forward_ad``; ``torch.func.jvp`` refuses
    BatchNorm's in-place running-statistic update) over the same pass layout as the
    finite differences: merged, the primal is the batch and m copies of it and the
    tangent is [0; u_1 … u_m], so the clean and the noisy rows share the BatchNorm
    statistics and their tangent difference is J u with those statistics held; not
    merged (``reference_compat``), the tangent of the m-copy pass alone, which
    includes the statistics' derivative as the reference's separate noisy pass does.
    The u_j are the fd mode's noise directions (same seed and offset).
    """
    import torch.autograd.forward_ad as fwad

    batch, copies = x.shape[0], probe.copies
    tangent = ops.noisy_replicate(torch.zeros_like(x), copies, 1.0, seed, offset,
                                  kernels=probe.kernels)
    repeat = [1] * (x.dim() - 1)
    if probe.merged:
        primal = x.repeat(copies + 1, *repeat)
    else:
        logits, features = defender(x)
        primal, tangent = x.repeat(copies, *repeat), tangent[batch:]
    with fwad.dual_level():
        out_logits, out_features = defender(fwad.make_dual(primal, tangent))
        values, directional = fwad.unpack_dual(out_logits)
        if probe.merged:
            logits, features = values[:batch], fwad.unpack_dual(out_features).primal[:batch]
            clean, noisy = directional[:batch], directional[batch:]
        else:
            clean, noisy = torch.zeros_like(logits), directional
    spread = ops.sensitivity_features(clean, noisy, y, 1.0, num_classes, kernels=probe.kernels)
    return torch.cat([logits, spread[:, num_classes:]], dim=1), features


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
        probe: Probe,
        noise: NoiseStream,
    ) -> AdversarialBatch:
        parts, feats = [], []
        bn_context = (running_bn_stats(defender) if probe.bn == "running"
                      else frozen_bn_stats(defender, enabled=probe.bn == "batch"))
        with bn_context:
            for (x, y), grad in ((forget, True), (val, probe.val_grad)):
                with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
                    rows, features = attacker_input(defender, x, y, num_classes=num_classes,
                                                    probe=probe, noise=noise)
                parts.append(rows)
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
# Salts of the noisy copies' counter-based noise (unlearning, attacker pretraining).
NOISE_SALT = 0x4E01
PRETRAIN_NOISE_SALT = 0x4E02
DROPOUT_SALT = 0xD20
BASELINE_SALT = 0xBA5E  # the retain batches the measured stopping rule's target comes from


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

    return next(iterate_batches(data, positions, max(len(positions), 1),
                                augment=augment and ctx.augment,
                                info=ctx.info, device=ctx.device, generator=generator))


def _attacker_accuracy(scores: torch.Tensor, membership: torch.Tensor) -> dict[str, float]:
    predicted = scores.argmax(1)
    forget = membership == 1
    return {
        "attacker_acc": float((predicted == membership).float().mean()),
        "attacker_forget_acc": float((predicted[forget] == 1).float().mean()),
        "attacker_val_acc": float((predicted[~forget] == 0).float().mean()),
    }


def _defender_accuracy(rows: torch.Tensor, pair: Any, num_classes: int) -> dict[str, float]:
    """The defender's accuracy on the step's forget and validation batches (spec §1.8), from
    the clean logits of the attacker rows (normalised as ``--adversarial-bn`` says)."""
    (_, y_f), (_, y_v) = pair
    predicted = rows[:, :num_classes].detach().argmax(1)
    n_f = y_f.shape[0]
    return {"forget_batch_acc": float((predicted[:n_f] == y_f).float().mean()),
            "val_batch_acc": float((predicted[n_f:] == y_v).float().mean())}


def _deployed_accuracy(defender: nn.Module, pair: Any) -> dict[str, float]:
    """The defender's accuracy on the step's forget and validation batches with its BatchNorm
    running statistics: a class-wise forget batch holds one class, and its batch statistics
    distort its logits (the original can score 10 % on a class it knows)."""
    out = {}
    with torch.no_grad(), running_bn_stats(defender):
        for name, (x, y) in zip(("forget_eval_acc", "val_eval_acc"), pair, strict=True):
            logits, _ = defender(x)
            out[name] = float((logits.argmax(1) == y).float().mean())
    return out


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
    probe, noise = Probe.of(config), NoiseStream(noise_seed(config.seed, PRETRAIN_NOISE_SALT))
    players = {"defender": ctx.defender, "attacker": attacker, "attacker_opt": optimizer}
    saved = ctx.restore("pretrain", players)
    if saved is not None:
        _restore_streams(ctx, gen, noise, saved)
    first = int(saved["step"]) if saved else 0
    ctx.defender.train()
    attacker.train()
    bar = ctx.bar(config.attacker_pretrain_iters, "pretraining attacker", initial=first)
    last: dict[str, float] = saved["last"] if saved else {}
    for step in range(first, config.attacker_pretrain_iters):
        members = _batch(ctx, train, draw_batch(len(train), config.batch_size, config.seed,
                                                FORGET_SALT ^ 0xFF, step),
                         augment=aug_members, generator=gen)
        others = _batch(ctx, val, draw_batch(len(val), config.batch_size, config.seed,
                                             VAL_SALT ^ 0xFF, step),
                        augment=aug_val, generator=gen)
        with ieee_float32(config.sensitivity == "fd"), torch.no_grad():
            adv = AdversarialBatch.build(ctx.defender, members, others,
                                         num_classes=ctx.info.num_classes, probe=probe, noise=noise)
        scores = attacker(adv.rows)
        loss = F.cross_entropy(scores, adv.membership)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        last = {"attacker_loss": loss.item(), **_attacker_accuracy(scores, adv.membership)}
        if step % 50 == 0 or step == config.attacker_pretrain_iters - 1:
            ctx.record({"phase": "pretrain", "step": step + 1, **last})
        if step + 1 < config.attacker_pretrain_iters:
            ctx.checkpoint(players, {"phase": "pretrain", "step": step + 1, "last": last},
                           extra=partial(_streams, ctx, gen, noise))
        bar.update(1)
        bar.set_postfix(acc=f"{last['attacker_acc']:.2f}")
    bar.close()
    return {"iterations": config.attacker_pretrain_iters, **last}


def _generator(device: str, seed: int, salt: int) -> torch.Generator:
    gen = torch.Generator(device=device)
    gen.manual_seed(noise_seed(seed, salt))
    return gen


def noise_seed(seed: int, salt: int) -> int:
    """A derived 63-bit seed of the run seed, for one stream (augmentation, noise, …)."""
    return (seed * 1_000_003 + salt) % 2**63


def check_inputs(ctx: Any, config: Any) -> None:
    if len(ctx.plan.forget) == 0:
        raise ConfigError("DAU needs a non-empty forget set")
    if len(ctx.plan.val) < 2:
        raise ConfigError("DAU needs a validation set of at least 2 samples; raise --val-fraction")
    if ctx.classwise and config.filled().stop_rule == "fixed" and (
            config.stop_iter is None or config.stop_lr is None):
        raise ConfigError("class-wise DAU with --stop-rule fixed needs --stop-iter and "
                          "--stop-unlearn-lr")


@dataclass
class DauStep:
    """One outer step of the min-max (spec §1.5): an attacker update on the forget and
    validation batches, then a defender update on the retain batch plus, while β > 0
    (always with ``reference_compat``), β times the adversarial losses.

    Call it with the retain batch, the (forget, val) batches (None: skip the adversarial
    branch) and β; it returns the step's record. The loss is checked to be finite
    before the update. With ``sensitivity="fd"`` an adversarial step runs in IEEE
    float32, forward and backward (:mod:`dau.numerics`).
    """

    defender: nn.Module
    attacker: nn.Module
    defender_opt: torch.optim.Optimizer
    attacker_opt: torch.optim.Optimizer
    config: Any  # UnlearnConfig
    num_classes: int
    noise: NoiseStream
    # also measure the forget and validation batches as the deployed model sees them (BatchNorm
    # running statistics, no noise, no graph): what the measured stopping rule judges by
    measure: bool = False
    probe: Probe = field(init=False)

    def __post_init__(self) -> None:
        self.config = self.config.filled()
        self.probe = Probe.of(self.config)

    def __call__(
        self,
        retain: tuple[torch.Tensor, torch.Tensor],
        pair: tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None,
        beta: float,
        where: str = "a step",
    ) -> dict[str, Any]:
        with ieee_float32(pair is not None and self.probe.sensitivity == "fd"):
            return self._step(retain, pair, beta, where)

    def _step(self, retain: tuple[torch.Tensor, torch.Tensor], pair: Any, beta: float,
              where: str) -> dict[str, Any]:
        from dau.methods._registry import check_finite

        config, attacker = self.config, self.attacker
        record: dict[str, Any] = {}
        loss_adv = loss_bt = None
        if pair is not None:
            adv = AdversarialBatch.build(self.defender, *pair, num_classes=self.num_classes,
                                         probe=self.probe, noise=self.noise)
            for _ in range(config.attacker_steps):
                scores = attacker(adv.rows.detach())
                loss_a = F.cross_entropy(scores, adv.membership)
                self.attacker_opt.zero_grad(set_to_none=True)
                loss_a.backward()
                self.attacker_opt.step()
            record.update(attacker_loss=loss_a.item(), **_attacker_accuracy(scores, adv.membership),
                          **_defender_accuracy(adv.rows, pair, self.num_classes))
            if self.measure:
                record.update(_deployed_accuracy(self.defender, pair))
            loss_adv = F.cross_entropy(attacker(adv.rows), 1 - adv.membership)
            loss_bt = ops.cross_correlation_loss(
                adv.val_features, adv.forget_features, config.offdiag_weight,
                0.0 if config.reference_compat else config.std_eps, kernels=self.probe.kernels)
        x_r, y_r = retain
        logits, _ = self.defender(x_r)
        loss_r = F.cross_entropy(logits, y_r)
        record["retain_batch_acc"] = float((logits.detach().argmax(1) == y_r).float().mean())
        loss = loss_r
        if loss_adv is not None and loss_bt is not None:
            loss = loss_r + beta * (config.bt_weight * loss_bt + config.adv_weight * loss_adv)
            record.update(adv_loss=loss_adv.item(), bt_loss=loss_bt.item())
        check_finite(loss, where)
        self.defender_opt.zero_grad(set_to_none=True)
        attacker.zero_grad(set_to_none=True)
        loss.backward()
        self.defender_opt.step()
        record.update(retain_loss=loss_r.item(), loss=loss.item())
        return record


def unlearn_dau(ctx: Any, attacker: nn.Module, config: Any) -> dict[str, Any]:
    """The min-max loop (spec §1.5): one attacker step and one defender step per retain batch
    (per ``adversarial_every`` retain batches; the others train on the retain batch alone)."""
    from dau.methods._registry import EpochBatches, set_lr, steps_per_epoch

    check_inputs(ctx, config)
    retain, forget, val = ctx.subset("retain"), ctx.subset("forget"), ctx.subset("val")
    augment_adv = ctx.classwise  # reference: forget/val augmented only in class-wise mode
    defender_opt = ctx.optimizer(lr=config.lr, momentum=config.momentum,
                                 weight_decay=config.weight_decay, kernels=config.kernels)
    step_once = DauStep(
        defender=ctx.defender, attacker=attacker, defender_opt=defender_opt,
        attacker_opt=torch.optim.Adam(attacker.parameters(), lr=config.attacker_lr),
        config=config, num_classes=ctx.info.num_classes,
        noise=NoiseStream(noise_seed(config.seed, NOISE_SALT)),
        measure=config.stop_rule == "measured",
    )
    gen = _generator(ctx.device, config.seed, 0xDA0)
    torch.manual_seed(noise_seed(config.seed, DROPOUT_SALT))  # the attacker's dropout masks
    players = {"defender": ctx.defender, "defender_opt": defender_opt, "attacker": attacker,
               "attacker_opt": step_once.attacker_opt}
    saved = ctx.restore("unlearn", players)
    if saved is not None:
        _restore_streams(ctx, gen, step_once.noise, saved)
    step, adversarial_steps = (int(saved[k]) if saved else 0 for k in ("step", "adversarial_steps"))
    ctx.defender.train()
    attacker.train()
    stopper = _stopper(ctx, config, retain, saved)
    total = config.epochs * steps_per_epoch(len(retain), config.batch_size)
    bar = ctx.bar(total, "unlearning (dau)", initial=step)
    batches = EpochBatches(ctx, ctx.plan.retain, epochs=config.epochs,
                           batch_size=config.batch_size, seed=config.seed, augment=True,
                           start=saved["batches"] if saved else None)
    for epoch, _, retain_batch in batches:
        step += 1
        stopped = (not stopper.adversarial if stopper is not None
                   else ctx.classwise and step > config.stop_iter)
        # β as applied: 0 after the class-wise stop and on the steps between adversarial ones
        beta = 0.0 if stopped or (step - 1) % config.adversarial_every else 1.0
        lr = set_lr(defender_opt, config.schedule,
                    config.stop_lr if stopped and config.stop_lr is not None else config.lr,
                    step, total)
        record: dict[str, Any] = {"phase": "unlearn", "epoch": epoch + 1, "step": step,
                                  "beta": beta, "lr": lr}
        pair = None
        if beta > 0 or config.reference_compat:
            f_pos = draw_batch(len(forget), config.batch_size, config.seed, FORGET_SALT, step)
            v_pos = draw_batch(len(val), config.batch_size, config.seed, VAL_SALT, step)
            pair = (_batch(ctx, forget, f_pos, augment=augment_adv, generator=gen),
                    _batch(ctx, val, v_pos, augment=augment_adv, generator=gen))
            adversarial_steps += 1
        record.update(step_once(retain_batch, pair, beta, f"step {step} (epoch {epoch + 1})"))
        ctx.record(record)
        done = stopper is not None and stopper.observe(step, record)
        if step < total and not done:
            counters = {"phase": "unlearn", "step": step, "adversarial_steps": adversarial_steps}
            if stopper is not None:
                counters["stopper"] = stopper.state()
            ctx.checkpoint(players, counters, batches=batches,
                           extra=partial(_streams, ctx, gen, step_once.noise),
                           due=batches.epoch_done)
        bar.update(1)
        bar.set_postfix(loss=f"{record['loss']:.3f}")
        if done:
            break
    bar.close()
    stopping = stopper.summary(step) if stopper is not None else {"rule": "fixed"}
    if stopper is not None and stopper.repaired_at is None:
        import logging

        logging.getLogger(__name__).warning(
            "the run reached its cap of %d epochs before %s (--stop-rule measured; window "
            "means at the end: %s); raise --epochs, or %s", config.epochs,
            "forgetting" if stopper.forgotten_at is None else "the retain accuracy was back",
            stopping["window_means"],
            "--lr" if stopper.forgotten_at is None else "--stop-unlearn-lr for the repair")
    return {"steps": step, "adversarial_steps": adversarial_steps, "stopping": stopping}


def _stopper(ctx: Any, config: Any, retain: Any, saved: dict[str, Any] | None) -> Any:
    """The measured stopping rule (None with ``stop_rule="fixed"``); a new one measures the
    original's accuracy on ``stop_window`` augmented retain batches first (no update)."""
    from dau.methods.stopping import MeasuredStop

    if config.stop_rule != "measured":
        return None
    shape = dict(classwise=ctx.classwise, window=config.stop_window,
                 tolerance=config.stop_tolerance)
    if saved is not None:
        return MeasuredStop.from_state(saved["stopper"], **shape)
    gen = _generator(ctx.device, config.seed, BASELINE_SALT)
    correct = seen = 0
    with torch.no_grad(), frozen_bn_stats(ctx.defender):
        for k in range(config.stop_window):
            pos = draw_batch(len(retain), config.batch_size, config.seed, BASELINE_SALT, k + 1)
            x, y = _batch(ctx, retain, pos, augment=True, generator=gen)
            logits, _ = ctx.defender(x)
            correct += int((logits.argmax(1) == y).sum())
            seen += int(y.shape[0])
    return MeasuredStop(retain_target=correct / max(seen, 1), **shape)


def _streams(ctx: Any, gen: torch.Generator, noise: NoiseStream) -> dict[str, Any]:
    """The random streams a loop of DAU goes on from: the noise counter, the augmentation
    of the forget/validation or member/non-member batches, and the attacker's dropout
    (torch's default generator)."""
    state = {"noise_offset": noise.offset, "generator": gen.get_state(),
             "rng": torch.get_rng_state()}
    if torch.device(ctx.device).type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(ctx.device)
    return state


def _restore_streams(ctx: Any, gen: torch.Generator, noise: NoiseStream,
                     state: dict[str, Any]) -> None:
    """Put back what :func:`_streams` saved."""
    noise.offset = int(state["noise_offset"])
    gen.set_state(state["generator"])
    torch.set_rng_state(state["rng"])
    if "cuda_rng" in state and torch.device(ctx.device).type == "cuda":
        torch.cuda.set_rng_state(state["cuda_rng"], ctx.device)


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
        "seed", "batch_size", "noise_copies", "sigma", "sensitivity", "attacker_arch",
        "attacker_lr", "attacker_pretrain_iters", "reference_compat")}
    fields["augment"] = ("class" if ctx.classwise else "random") if ctx.augment else "none"
    if config.adversarial_bn != "batch":  # (keys of batch-statistics attackers unchanged)
        fields["adversarial_bn"] = config.adversarial_bn
    digest.update(json.dumps(fields, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def prepare_attacker(ctx: Any, config: Any) -> tuple[nn.Module, dict[str, Any]]:
    """The pretrained attacker: given (``ctx.attacker_path``), cached, or trained now and cached."""
    import json
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
        sidecar = cached.with_suffix(".json")
        made = json.loads(sidecar.read_text()) if sidecar.exists() else {}
        ctx.reused_setup = made.get("compute")
        return attacker, {"source": "cache", "path": str(cached), "key": key,
                          "setup_compute": ctx.reused_setup}
    torch.manual_seed(config.seed)
    attacker = create_attacker(config.attacker_arch, num_classes=ctx.info.num_classes).to(ctx.device)
    log.info("pretraining the attacker (%d iterations)", config.attacker_pretrain_iters)
    with ctx.setup():
        summary = pretrain_attacker(ctx, attacker, config)
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            save_model(cached, attacker)
            atomic_write_json(cached.with_suffix(".json"),
                              {"key": key, "config": config.to_dict(), "summary": summary,
                               "compute": ctx.meter.state()["setup"]})
            log.info("cached the pretrained attacker as %s", cached)
        except OSError as exc:
            log.warning("could not cache the attacker in %s: %s", cached.parent, exc)
    return attacker, {"source": "trained", "path": str(cached) if cached else None, "key": key,
                      **summary}


def dau_method(ctx: Any, config: Any) -> dict[str, Any]:
    """DAU: pretrain (or reuse) the attacker, then run the min-max loop."""
    from dau.numerics import policy

    config = config.filled()
    check_inputs(ctx, config)
    if config.kernels == "fused":
        require_kernels(ctx.device, masked=ctx.masks is not None)
    saved = ctx.restore("unlearn", {})
    if saved is not None:  # the attacker as it was, from the saved state
        from dau.models.attacker import create_attacker

        attacker = create_attacker(config.attacker_arch, num_classes=ctx.info.num_classes)
        attacker, about = attacker.to(ctx.device), saved["attacker_about"]
    else:
        attacker, about = prepare_attacker(ctx, config)
    ctx.state_extra["attacker_about"] = about
    summary = unlearn_dau(ctx, attacker, config)
    return {"attacker": about, **summary, "numerics": policy(config.sensitivity)}


def _register() -> None:
    from dau.methods._registry import register_method

    register_method("dau")(dau_method)


_register()
