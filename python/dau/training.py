"""Training of the original model and of the retrain-from-scratch reference.

``train(config)`` plans the split (Rust), trains with SGD (or ``MaskedSGD`` when the
model has pruning masks), checkpoints every epoch and writes a run directory. The
epoch order and the augmentation noise are derived from ``(seed, epoch)``, so a run
interrupted and resumed with ``resume=RUN`` ends with the same weights as one that
never stopped.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dau import checkpoint as ckpt
from dau.config import TrainConfig, resolve_device
from dau.errors import CheckpointError, ConfigError, SplitMismatchError, TrainingError
from dau.progress import progress_bar

__all__ = ["REWIND", "augmentation_generator", "epoch_order", "init_model", "lr_scheduler", "train"]

REWIND = "rewind.safetensors"  # the weights after --rewind-epoch epochs, for pruning

log = logging.getLogger(__name__)


def epoch_order(indices: np.ndarray, seed: int, epoch: int,
                batch_size: int | None = None) -> np.ndarray:
    """The positions of one epoch, shuffled by the Rust sampler with stream ``epoch``.

    With ``batch_size``, an epoch whose last batch would hold a single sample leaves that
    sample out (a different one each epoch): BatchNorm cannot train on one sample."""
    from dau import _native

    perm = _native.permutation(len(indices), seed, epoch)
    order = np.asarray(indices)[perm]
    if batch_size is not None and len(order) > 1 and len(order) % batch_size == 1:
        return order[:-1]
    return order


def augmentation_generator(device: str | torch.device, seed: int, epoch: int) -> torch.Generator:
    """The generator of one epoch's augmentation noise (depends only on seed and epoch)."""
    gen = torch.Generator(device=device)
    gen.manual_seed((seed * 1_000_003 + epoch) % (2**63))
    return gen


def init_model(seed: int, build: Callable[[], nn.Module]) -> nn.Module:
    """A freshly initialised model: ``build()`` with torch seeded by ``seed`` (the seed rule of
    every training run; retrain's too)."""
    torch.manual_seed(seed)
    return build()


def lr_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig
) -> torch.optim.lr_scheduler.LRScheduler:
    """The learning rate of a training run, stepped after each epoch (retrain's too)."""
    if config.schedule == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(
            optimizer, milestones=config.milestone_epochs(), gamma=config.gamma
        )
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


def _add_compute(manifest: dict[str, Any], seconds: float, images: int) -> None:
    """Add an epoch to the run's compute (:mod:`dau.compute`): all of a training run is
    its own request (a retrain is what unlearning is compared with); every image went
    forward and backward once."""
    compute = manifest.setdefault("compute", {
        "setup": {"seconds": 0.0, "forward_images": 0.0, "backward_images": 0.0},
        "request": {"seconds": 0.0, "forward_images": 0.0, "backward_images": 0.0},
        "reused_setup": None})
    request = compute["request"]
    request["seconds"] += seconds
    request["forward_images"] += images
    request["backward_images"] += images


def train(
    config: TrainConfig,
    *,
    runs_dir: str | Path = "runs",
    out: str | Path | None = None,
    resume: str | Path | None = None,
    progress: bool = True,
    masks: dict[str, torch.Tensor] | None = None,
    init: dict[str, torch.Tensor] | None = None,
    lr_rewind: int = 0,
    parent: str | None = None,
    pruning: dict[str, Any] | None = None,
    name: str | None = None,
    stop_after_epoch: int | None = None,
) -> ckpt.Run:
    """Train a model as ``config`` says and return its run directory.

    ``resume`` continues an interrupted run in place (its saved config wins, except
    the device). ``masks`` (by parameter name) prune the model: its masked weights stay
    exactly zero (MaskedSGD). ``init`` starts from these weights instead of a random
    initialisation, and ``lr_rewind`` steps the schedule that many epochs first (the
    reference's weight and learning-rate rewinding). ``stop_after_epoch`` ends the call
    after that many epochs in total without marking the run complete (as an interruption
    would).
    """
    from dau.data import load_dataset
    from dau.data.loaders import iterate_batches, to_device
    from dau.data.requests import plan_forget
    from dau.data.splits import dataset_section, save_run_split
    from dau.eval.accuracy import predict
    from dau.models import create_model, place_model

    state: dict[str, Any] | None = None
    if resume is not None:
        run = ckpt.load_run(resume)
        ckpt.check_resumable(run)
        saved = dict(run.config)
        saved["device"] = config.device
        config = TrainConfig.from_dict(saved)
        if run.manifest["model"].get("masks", "none") != "none":
            from dau.pruning import load_masks

            masks = load_masks(run.path)
        lr_rewind = int(run.manifest.get("pruning", {}).get("lr_rewind", 0))
        state_path = run.path / ckpt.STATE
        if state_path.exists():
            try:
                state = torch.load(state_path, map_location="cpu", weights_only=True)
            except Exception as exc:
                raise CheckpointError(f"{str(state_path)!r} is corrupt: {exc}") from None

    device = resolve_device(config.device)
    dataset = load_dataset(config.dataset, config.data_dir)
    info = dataset.info
    plan, request = plan_forget(dataset, config.forget, config.seed, config.val_fraction,
                                metadata=config.metadata, id_column=config.id_column)
    if resume is not None and run.manifest["split"]["fingerprint"] != plan.fingerprint:
        raise SplitMismatchError(
            f"--resume: the split planned now ({plan.fingerprint[:12]}) differs from the run's "
            f"({run.manifest['split']['fingerprint'][:12]}); has the dataset changed?"
        )
    indices = plan.retain if config.exclude_forget else plan.train

    model = init_model(config.seed, lambda: create_model(
        config.arch,
        num_classes=info.num_classes,
        in_channels=info.channels,
        mean=info.mean,
        std=info.std,
        width=config.width,
    ))
    model = place_model(model, device)
    from dau.methods.optim import apply_masks_, make_sgd

    if init is not None:
        model.load_state_dict(init)
    if masks:
        apply_masks_(model, masks)
    try:
        optimizer = make_sgd(model, lr=config.lr, momentum=config.momentum,
                             weight_decay=config.weight_decay, masks=masks, kernels=config.kernels)
    except ValueError as exc:
        raise ConfigError(f"masks: {exc}") from None
    scheduler = lr_scheduler(optimizer, config)
    for _ in range(lr_rewind):
        optimizer.step()  # no gradients yet: a no-op that keeps the scheduler's order check quiet
        scheduler.step()
    start_epoch = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch = int(state["epoch"]) + 1
        log.info("resuming %s at epoch %d/%d", run.path, start_epoch + 1, config.epochs)

    if resume is None:
        name = name or f"{config.dataset.split(':')[0]}-{config.arch}-{config.kind}"
        path = ckpt.create_run_dir(runs_dir, name, out)
        split = save_run_split(path, plan, "retain" if config.exclude_forget else "train",
                               dataset=dataset_section(config.dataset, dataset, plan),
                               request=request)
        run = ckpt.Run(
            path=path,
            manifest={
                "schema": ckpt.SCHEMA,
                "kind": config.kind,
                "status": "running",
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "versions": ckpt.versions(),
                "config": config.to_dict(),
                "dataset": {
                    "name": info.name,
                    "num_classes": info.num_classes,
                    "source": str(info.source),
                    "num_train": len(dataset.train),
                    "num_test": len(dataset.test),
                },
                "model": {
                    "arch": config.arch,
                    "width": config.width,
                    "num_classes": info.num_classes,
                    "in_channels": info.channels,
                    "mean": list(info.mean),
                    "std": list(info.std),
                    "masks": "masks.safetensors" if masks else "none",
                },
                "split": split,
                "parent": parent,
                **({"pruning": {**pruning, "lr_rewind": lr_rewind}} if pruning else {}),
                "timings": {"epoch_seconds": [], "train_seconds": 0.0},
                "epochs_done": 0,
            },
        )
        if masks:
            from dau.pruning import MASKS, save_masks

            save_masks(path / MASKS, masks)
        if config.saved_rewind_epoch() == 0:
            ckpt.save_model(path / REWIND, model)
            run.manifest["rewind"] = {"epoch": 0, "file": REWIND}
        run.write_manifest()
    ckpt.claim(run)
    run.write_manifest()
    log.info(
        "training %s (%s, width %g) on %s: %d samples, %d epochs, device %s -> %s",
        config.kind, config.arch, config.width, info.name, len(indices), config.epochs, device,
        run.path,
    )

    train_data = to_device(dataset.train, device)
    val_data = train_data.subset(plan.val)
    end_epoch = config.epochs if stop_after_epoch is None else min(config.epochs, stop_after_epoch)
    for epoch in range(start_epoch, end_epoch):
        model.train()
        order = epoch_order(indices, config.seed, epoch, config.batch_size)
        gen = augmentation_generator(device, config.seed, epoch)
        batches = iterate_batches(
            train_data, order, config.batch_size, augment=config.augment, info=info,
            device=device, generator=gen,
        )
        total = math.ceil(len(order) / config.batch_size)
        bar = progress_bar(batches, total=total, desc=f"epoch {epoch + 1}/{config.epochs}",
                           enabled=progress, leave=False, unit="batch")
        started = time.perf_counter()
        loss_sum, correct, seen = 0.0, 0, 0
        for step, (x, y) in enumerate(bar):
            logits, _ = model(x)
            loss = F.cross_entropy(logits, y)
            if not torch.isfinite(loss):
                run.manifest["status"] = "failed"
                last = epoch  # epochs done == index of the failing epoch
                kept = (
                    f"the last good checkpoint (epoch {last}) is kept in {run.path}"
                    if last > 0 else f"no epoch had finished, so {run.path} holds no weights"
                )
                run.manifest["error"] = f"loss became {loss.item()} at epoch {epoch + 1} step {step + 1}"
                run.write_manifest()
                raise TrainingError(
                    f"training stopped: the loss became {loss.item()} at epoch {epoch + 1}, "
                    f"step {step + 1}; {kept}. Lower --lr (now {config.lr}) and train again."
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            if progress and step % 10 == 0:
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}")
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        val_acc = (
            predict(model, val_data, batch_size=512, device=device, progress=False).accuracy
            if len(val_data) else float("nan")
        )
        record = {
            "epoch": epoch + 1, "loss": loss_sum / max(seen, 1),
            "train_acc_running": 100.0 * correct / max(seen, 1), "val_acc": val_acc,
            "lr": lr, "seconds": seconds,
        }
        ckpt.save_model(run.path / ckpt.MODEL, model)
        with ckpt.atomic_write(run.path / ckpt.STATE) as fh:
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "epoch": epoch}, fh)
        ckpt.append_log(run.path / ckpt.LOG, record)
        if epoch + 1 == config.saved_rewind_epoch():
            ckpt.save_model(run.path / REWIND, model)
            run.manifest["rewind"] = {"epoch": epoch + 1, "file": REWIND}
        timings = run.manifest["timings"]
        timings["epoch_seconds"].append(seconds)
        timings["train_seconds"] = float(sum(timings["epoch_seconds"]))
        _add_compute(run.manifest, seconds, seen)
        run.manifest["epochs_done"] = epoch + 1
        run.write_manifest()
        log.info("epoch %d/%d: loss %.4f, val acc %.2f%%, %.1f s", epoch + 1, config.epochs,
                 record["loss"], val_acc, seconds)

    if run.manifest["epochs_done"] < config.epochs:
        run.manifest["status"] = "interrupted"
        run.write_manifest()
        return run

    evaluation: dict[str, float] = {}
    final_sets = {"train": train_data.subset(indices), "val": val_data, "test": dataset.test}
    for set_name, data in final_sets.items():
        evaluation[f"{set_name}_acc"] = predict(
            model, data, batch_size=512, device=device, progress=progress
        ).accuracy
    evaluation["seconds_per_epoch"] = float(np.mean(run.manifest["timings"]["epoch_seconds"]))
    ckpt.atomic_write_json(run.path / ckpt.METRICS, evaluation)
    run.manifest["status"] = "complete"
    run.write_manifest()
    (run.path / ckpt.STATE).unlink(missing_ok=True)
    log.info("finished %s: train acc %.2f%%, test acc %.2f%%", run.path,
             evaluation["train_acc"], evaluation["test_acc"])
    return run
