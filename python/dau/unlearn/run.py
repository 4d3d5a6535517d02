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

__all__ = ["find_original", "unlearn"]

log = logging.getLogger(__name__)


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
) -> ckpt.Run:
    """Unlearn ``forget`` from an original model with ``config.method``; return the new run.

    ``mask`` is a pruned run (made by ``dau prune``: it is then the model to unlearn) or
    a masks file (ours, or a reference ``weight_orig``/``weight_mask`` checkpoint) applied
    to the original model. Every update keeps the pruned weights at exactly zero.
    ``forget`` may be a deletion request (``fingerprints:FILE``, ``files:PATH``, or
    ``ids:FILE`` with the ``metadata`` table and its ``id_column``): it is resolved by content
    and its resolution recorded in the run's ``split.json``.
    """
    from dau.data.datasets import load_dataset
    from dau.data.loaders import to_device
    from dau.data.requests import plan_forget
    from dau.data.splits import dataset_section, save_run_split
    from dau.prune import MASKS, load_masks, save_masks, sparsity
    from dau.unlearn import get_method
    from dau.unlearn._registry import UnlearnContext
    from dau.unlearn.defaults import resolve
    from dau.unlearn.optim import apply_masks_

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
    source = original.config
    device = resolve_device(config.device)
    if config.method == "dau" and config.kernels == "fused":
        from dau.unlearn.dau import require_kernels

        require_kernels(device)  # before anything is written
    data = load_dataset(source["dataset"], data_dir or source.get("data_dir"))
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
                     sparse=masks is not None)
    path = ckpt.create_run_dir(runs_dir, f"{source['dataset'].split(':')[0]}-"
                               f"{source['arch']}-{config.method}", out)
    run = ckpt.Run(path=path, manifest={
        **{k: original.manifest[k] for k in ("schema", "dataset", "model")},
        "kind": config.method,
        "status": "running",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": ckpt.versions(),
        "config": {**source, "forget": plan.spec, "unlearn": config.to_dict()},
        "split": save_run_split(path, plan, "train",
                                dataset=dataset_section(source["dataset"], data, plan),
                                request=request),
        "parent": str(original.path.resolve()),
        "timings": {},
    })
    if masks is not None:
        save_masks(path / MASKS, masks)
        run.manifest["model"] = {**run.manifest["model"], "masks": MASKS}
        run.manifest["pruning"] = {"mask_source": str(mask or original.path),
                                   "sparsity": sparsity(masks)}
    run.write_manifest()
    ctx = UnlearnContext(
        defender=defender, info=data.info, train=to_device(data.train, device), plan=plan,
        device=device, masks=masks, cache_dir=original.path / "attackers",
        augment=bool(source.get("augment", True)),
        attacker_path=_attacker_file(attacker), progress=progress,
        log_record=lambda record: ckpt.append_log(path / ckpt.LOG, record),
    )
    log.info("unlearning %s (forget %s, %d samples) with %s on %s -> %s", original.name, plan.spec,
             len(plan.forget), config.method, device, path)
    started = time.perf_counter()
    try:
        summary: dict[str, Any] = get_method(config.method)(ctx, config)
    except BaseException as exc:
        run.manifest.update(status="failed", error=str(exc) or type(exc).__name__)
        run.write_manifest()
        raise
    run.manifest["timings"]["unlearn_seconds"] = time.perf_counter() - started
    ckpt.save_model(path / ckpt.MODEL, defender)
    run.manifest.update(status="complete", summary=summary)
    run.write_manifest()
    log.info("unlearned in %.1f s -> %s", run.manifest["timings"]["unlearn_seconds"], path)
    return run


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
