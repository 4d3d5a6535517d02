"""``unlearn()``: make an original model forget a split's forget set; write a run directory."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from dau import checkpoint as ckpt
from dau.config import UnlearnConfig, resolve_device
from dau.errors import CheckpointError, DauError, SplitMismatchError

__all__ = ["CHECKPOINT_SECONDS", "find_original", "require_kernels_for", "resume", "unlearn"]

log = logging.getLogger(__name__)

CHECKPOINT_SECONDS = 600.0  # how often a run saves the state it can be resumed from


def find_original(runs_dir: str | Path, dataset: str, arch: str | None = None) -> ckpt.Run:
    """The newest complete original model for ``dataset`` (and ``arch``) under ``runs_dir``."""
    root = Path(runs_dir)
    found = []
    for manifest in sorted(root.glob("*/manifest.json")) + sorted(root.glob("*/*/manifest.json")):
        try:
            run = ckpt.load_run(manifest.parent)
        except CheckpointError:
            continue
        config = run.config
        if (run.kind == "original" and run.manifest.get("status") == "complete"
                and run.manifest.get("model", {}).get("masks", "none") == "none"
                and config.get("dataset") == dataset
                and (arch is None or config.get("arch") == arch)):
            found.append(run)
    if not found:
        what = f"dataset {dataset!r}" + (f" and arch {arch!r}" if arch else "")
        raise DauError(
            f"no complete original model for {what} under {str(root)!r}; make one with "
            f"`dau train --dataset {dataset}{f' --arch {arch}' if arch else ''} --runs-dir {root}` "
            "or name one with --model RUN"
        )
    return max(found, key=lambda r: str(r.manifest.get("created", "")))


def unlearn(
    config: UnlearnConfig,
    *,
    forget: str,
    model: str | Path | None = None,
    dataset: str | None = None,
    arch: str | None = None,
    runs_dir: str | Path = "runs",
    out: str | Path | None = None,
    attacker: str | Path | None = None,
    mask: str | Path | None = None,
    data_dir: str | None = None,
    progress: bool = True,
    metadata: str | Path | None = None,
    id_column: str | None = None,
    checkpoint_seconds: float = CHECKPOINT_SECONDS,
) -> ckpt.Run:
    """Unlearn ``forget`` from an original model with ``config.method``; return the new run.

    ``mask`` is a pruned run (made by ``dau prune``: it is then the model to unlearn) or
    a masks file (ours, or a reference ``weight_orig``/``weight_mask`` checkpoint) applied
    to the original model. Every update keeps the pruned weights at exactly zero.
    ``forget`` may be a deletion request (``fingerprints:FILE``, ``files:PATH``, or
    ``ids:FILE`` with the ``metadata`` table and its ``id_column``): it is resolved by content
    and its resolution recorded in the run's ``split.json``. The run saves the state
    :func:`resume` goes on from every ``checkpoint_seconds`` and every epoch.
    """
    from dau.data import load_dataset
    from dau.data.requests import plan_forget
    from dau.data.splits import dataset_section, save_run_split
    from dau.methods import get_method
    from dau.methods.defaults import resolve
    from dau.methods.optim import apply_masks_
    from dau.pruning import MASKS, load_masks, save_masks, sparsity

    mask_run = mask is not None and (Path(mask) / ckpt.MANIFEST).exists()
    if mask_run:
        if model is not None:
            raise DauError("--mask RUN is the pruned model to unlearn: leave out --model")
        model = mask
    if model is not None:
        original = ckpt.load_run(model)
    elif dataset is not None:
        original = find_original(runs_dir, dataset, arch)
    else:
        raise DauError("--dataset or --model: say which original model to unlearn")
    if original.kind != "original" or original.manifest.get("status") != "complete":
        raise CheckpointError(f"--model: {original.path} is a {original.manifest.get('status')} "
                              f"{original.kind} run, not a complete original model")
    get_method(config.method)  # fail early on an unknown method
    attacker_path = _attacker_file(attacker)
    source = original.config
    device = resolve_device(config.device)
    require_kernels_for(config, device)  # before anything is written
    data_dir = data_dir or source.get("data_dir")
    data = load_dataset(source["dataset"], data_dir)
    plan, request = plan_forget(data, forget, source["seed"], source["val_fraction"],
                                metadata=metadata, id_column=id_column)
    if len(plan.forget) == 0:
        raise DauError(f"--forget: {forget!r} selects no sample; nothing to unlearn")
    from dau.data.splits import check_dataset

    own = check_dataset(original.path / ckpt.SPLIT, data, f"--model {original.name}")
    if not (np.array_equal(own.train, plan.train) and np.array_equal(own.val, plan.val)):
        raise SplitMismatchError(
            f"the original model {original.name} was trained on another train/validation split "
            "than the one planned now; has the dataset changed?"
        )
    defender = original.load_model(device)
    masks = None
    if mask_run or original.manifest.get("model", {}).get("masks", "none") != "none":
        masks = load_masks(original.path, defender)
    elif mask is not None:
        masks = load_masks(mask, defender)
        apply_masks_(defender, masks)
    if masks is not None:
        masks = {k: v.to(device) for k, v in masks.items()}
        log.info("the model is pruned: %.2f %% of its masked weights are zero", 100 * sparsity(masks))
    config = resolve(config, source["dataset"], bool(plan.forgotten_classes),
                     sparse=masks is not None, training=source)
    path = ckpt.create_run_dir(runs_dir, f"{source['dataset'].split(':')[0]}-"
                               f"{source['arch'].replace(':', '-')}-{config.method}", out)
    run = ckpt.Run(path=path, manifest={
        **{k: original.manifest[k] for k in ("schema", "dataset", "model")},
        "kind": config.method,
        "status": "running",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": ckpt.versions(),
        "config": {**source, "data_dir": None if data_dir is None else str(data_dir),
                   "forget": plan.spec, "unlearn": config.to_dict()},
        "split": save_run_split(path, plan, "train",
                                dataset=dataset_section(source["dataset"], data, plan),
                                request=request),
        "parent": str(original.path.resolve()),
        "timings": {},
    })
    if attacker_path is not None:
        run.manifest["attacker_file"] = str(attacker_path.resolve())
    if masks is not None:
        save_masks(path / MASKS, masks)
        run.manifest["model"] = {**run.manifest["model"], "masks": MASKS}
        run.manifest["pruning"] = {"mask_source": str(mask or original.path),
                                   "sparsity": sparsity(masks)}
    run.write_manifest()
    log.info("unlearning %s (forget %s, %d samples) with %s on %s -> %s", original.name, plan.spec,
             len(plan.forget), config.method, device, path)
    return _execute(run, config, defender=defender, data=data, plan=plan, masks=masks,
                    original=original, device=device, attacker=attacker_path, progress=progress,
                    checkpoint_seconds=checkpoint_seconds)


def resume(
    path: str | Path,
    *,
    device: str | None = None,
    data_dir: str | None = None,
    progress: bool = True,
    checkpoint_seconds: float = CHECKPOINT_SECONDS,
) -> ckpt.Run:
    """Continue an interrupted unlearning run in place; return it, complete.

    The run goes on from its last saved state (every ``checkpoint_seconds`` and every
    epoch; from its beginning when it saved none) with its own config, split, original
    model and masks, and ends with the weights it would have had uninterrupted.
    ``device`` (default: the run's) must be of the type the state was saved on (another
    GPU, say).
    """
    import torch

    from dau.data import load_dataset
    from dau.data.splits import check_dataset
    from dau.methods.optim import apply_masks_
    from dau.pruning import MASKS, load_masks

    run = ckpt.load_run(path)
    if "unlearn" not in run.config:
        raise CheckpointError(f"--resume: {str(run.path)!r} is a {run.kind} run, not an "
                              "unlearning run (dau train --resume continues training runs)")
    ckpt.check_resumable(run)
    saved = dict(run.config["unlearn"])
    if device is not None:
        saved["device"] = device
    config = UnlearnConfig.from_dict(saved)
    try:
        original = ckpt.load_run(run.manifest["parent"])
    except CheckpointError as exc:
        raise CheckpointError(f"--resume: the original model run {str(run.path)!r} unlearns "
                              f"from cannot be opened: {exc}") from None
    source = original.config
    device = resolve_device(config.device)
    state = None
    if (run.path / ckpt.STATE).exists():
        try:
            state = torch.load(run.path / ckpt.STATE, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CheckpointError(f"{str(run.path / ckpt.STATE)!r} is corrupt: {exc}") from None
    if state is not None and state["device_type"] != torch.device(device).type:
        raise CheckpointError(
            f"--resume: run {str(run.path)!r} saved its state on {state['device_type']}; resume "
            f"it there (--device {state['device_type']}): the random streams of its batches, "
            f"augmentation and dropout are not the same on {torch.device(device).type}")
    require_kernels_for(config, device)
    data = load_dataset(source["dataset"], data_dir or run.config.get("data_dir"))
    plan = check_dataset(run.path / ckpt.SPLIT, data, f"--resume {run.name}")
    defender = original.load_model(device)
    masks = None
    if run.manifest.get("model", {}).get("masks", "none") != "none":
        masks = {k: v.to(device) for k, v in load_masks(run.path / MASKS, defender).items()}
        apply_masks_(defender, masks)
    _truncate_log(run.path / ckpt.LOG, int(state["log_lines"]) if state else 0)
    phase, step = (str(state["phase"]), int(state["step"])) if state else ("start", 0)
    run.manifest.pop("error", None)
    run.manifest["status"] = "running"
    run.manifest.setdefault("resumed", []).append({
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "phase": phase, "from_step": step,
        "device": device})
    run.write_manifest()
    log.info("resuming %s from %s", run.path, {
        "pretrain": f"attacker pretraining iteration {step}", "unlearn": f"step {step}",
        "start": "its beginning (it saved no state)"}[phase])
    return _execute(run, config, defender=defender, data=data, plan=plan, masks=masks,
                    original=original, device=device, attacker=_attacker_file(
                        run.manifest.get("attacker_file")), progress=progress,
                    checkpoint_seconds=checkpoint_seconds, state=state)


def _execute(run: ckpt.Run, config: UnlearnConfig, *, defender: Any, data: Any, plan: Any,
             masks: Any, original: ckpt.Run, device: str, attacker: Path | None,
             progress: bool, checkpoint_seconds: float,
             state: dict[str, Any] | None = None) -> ckpt.Run:
    """Run the method on a prepared run directory; mark it complete, or failed."""
    from dau.data.loaders import to_device
    from dau.methods import get_method
    from dau.methods._registry import UnlearnContext

    path = run.path
    ckpt.claim(run)
    run.write_manifest()
    ctx = UnlearnContext(
        defender=defender, info=data.info, train=to_device(data.train, device), plan=plan,
        device=device, masks=masks, cache_dir=original.path / "attackers",
        augment=bool(original.config.get("augment", True)),
        attacker_path=attacker, progress=progress,
        log_record=lambda record: ckpt.append_log(path / ckpt.LOG, record),
        state_path=path / ckpt.STATE, checkpoint_seconds=checkpoint_seconds,
        resume_state=state, seconds_before=float(state["elapsed"]) if state else 0.0,
        training=dict(original.config),
        fresh_model=original.build_model if original.manifest["model"].get("arch") else None,
    )
    try:
        summary: dict[str, Any] = get_method(config.method)(ctx, config)
    except BaseException as exc:
        run.manifest.update(status="interrupted" if isinstance(exc, KeyboardInterrupt) else "failed",
                            error=str(exc) or type(exc).__name__)
        run.write_manifest()
        if (path / ckpt.STATE).exists():
            log.warning("%s keeps its state of the last checkpoint; `dau unlearn --resume %s` "
                        "goes on from there", path, path)
        raise
    run.manifest["timings"]["unlearn_seconds"] = ctx.elapsed()
    run.manifest["compute"] = ctx.compute()
    ckpt.save_model(path / ckpt.MODEL, defender)
    (path / ckpt.STATE).unlink(missing_ok=True)
    run.manifest.update(status="complete", summary=summary)
    run.write_manifest()
    log.info("unlearned in %.1f s -> %s", run.manifest["timings"]["unlearn_seconds"], path)
    return run


def require_kernels_for(config: UnlearnConfig, device: str) -> None:
    """DAU on the fused kernels needs them built for ``device`` (an error says how)."""
    if config.method == "dau" and config.kernels == "fused":
        from dau.methods.dau import require_kernels

        require_kernels(device)


def _truncate_log(path: Path, lines: int) -> None:
    """Keep the first ``lines`` records of a run's log (those the saved state had written)."""
    if not path.exists():
        return
    kept = path.read_text().splitlines(keepends=True)[:lines]
    with ckpt.atomic_write(path, "w") as fh:
        fh.writelines(kept)


def _attacker_file(attacker: str | Path | None) -> Path | None:
    """``--attacker``: a safetensors file, or a run directory holding exactly one cached attacker."""
    if attacker is None:
        return None
    path = Path(attacker)
    if path.is_dir():
        files = sorted(path.glob("attacker-*.safetensors")) + sorted(
            path.glob("attackers/attacker-*.safetensors"))
        if len(files) != 1:
            raise CheckpointError(f"--attacker: {path} holds {len(files)} attackers; name the file")
        return files[0]
    if not path.is_file():
        raise CheckpointError(f"--attacker: {path} does not exist")
    return path
