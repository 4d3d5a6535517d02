"""The Python API on a user's own model and data: :func:`unlearn`, :func:`evaluate`,
:func:`import_model`; the ``dau`` command is a layer over these and the run drivers.

``model`` is any ``nn.Module`` returning logits (or dau's ``(logits, features)``);
``data`` a :class:`~dau.data.Dataset` (in memory or streamed) or a dataset spec string
(``"fashion-mnist"``, ``"imagefolder:root=photos"``). Nothing is written until
:meth:`UnlearnResult.save`, which makes a normal run directory.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dau import _native
from dau import checkpoint as ckpt
from dau.config import UnlearnConfig, resolve_device
from dau.data import Dataset, load_dataset
from dau.data.loaders import iterate_batches, to_device
from dau.data.requests import plan_forget
from dau.data.splits import dataset_section, plan_split, save_run_split
from dau.errors import CheckpointError, ConfigError, DauError
from dau.eval import evaluate as evaluate_sets
from dau.eval.mia import DEFAULT_MAX_SAMPLES
from dau.eval.report import gap
from dau.methods import get_method
from dau.methods._registry import UnlearnContext
from dau.methods.defaults import resolve
from dau.methods.optim import apply_masks_
from dau.methods.run import require_kernels_for
from dau.methods.run import unlearn as unlearn_run
from dau.models import create_model, place_model
from dau.models.adapt import (
    FeatureClassifier,
    as_defender,
    build_classifier,
    load_state_dict,
    state_mismatch,
)
from dau.pruning import MASKS, load_masks, match_masks, save_masks

__all__ = ["UnlearnResult", "evaluate", "import_model", "unlearn"]

log = logging.getLogger(__name__)


def _dataset(data: Any, data_dir: str | None = None) -> Any:

    if isinstance(data, str):
        return load_dataset(data, data_dir)
    if not isinstance(data, Dataset):
        raise ConfigError(f"data: expected a dau.data.Dataset or a dataset spec such as "
                          f"'fashion-mnist'; got {type(data).__name__}")
    return data


def _example(dataset: Any) -> torch.Tensor:
    """Two training images as float [0, 1] (what the defender is fed), for probing a model."""

    if len(dataset.train) == 0:
        raise ConfigError("data: the training set is empty")
    n = min(2, len(dataset.train))
    x, _ = next(iterate_batches(dataset.train, torch.arange(n), n, augment=False,
                                device="cpu"))
    return x


def _defender(model: nn.Module, dataset: Any, *, feature_layer: str | None,
              mean: Sequence[float] | None, std: Sequence[float] | None) -> nn.Module:

    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    return as_defender(model, _example(dataset).to(device),
                       num_classes=dataset.info.num_classes, feature_layer=feature_layer,
                       mean=mean, std=std)


def _model_section(defender: nn.Module, info: Any, arch: str | None,
                   masks: Mapping[str, torch.Tensor] | None) -> dict[str, Any]:

    section: dict[str, Any] = {"arch": arch, "width": 1.0, "num_classes": info.num_classes,
                               "in_channels": info.channels, "mean": None, "std": None,
                               "masks": "masks.safetensors" if masks else "none"}
    if isinstance(defender, FeatureClassifier):
        section.update(feature_layer=defender.feature_layer, capture=defender.capture)
        norm = defender.normalize
        if not isinstance(norm, nn.Identity):
            section.update(mean=norm.mean.flatten().tolist(), std=norm.std.flatten().tolist())
    return section


def _plan(dataset: Any, forget: Any, seed: int, val_fraction: float,
          metadata: str | None, id_column: str | None) -> tuple[Any, dict[str, Any] | None]:

    if isinstance(forget, _native.SplitPlan):
        if forget.num_samples != len(dataset.train):
            raise ConfigError(f"forget: the split plan is for {forget.num_samples} training "
                              f"samples; the data has {len(dataset.train)}")
        return forget, None
    if not isinstance(forget, str):
        raise ConfigError(f"forget: expected a spec such as 'random:10%', 'class:3', "
                          f"'files:request.txt', or a SplitPlan; got {type(forget).__name__}")
    return plan_forget(dataset, forget, seed, val_fraction, metadata=metadata,
                       id_column=id_column)


@dataclass
class UnlearnResult:
    """What :func:`unlearn` returns: the unlearned ``model`` (the module you passed, changed
    in place), the ``split`` it forgot, the resolved ``config``, the method's ``summary``,
    the per-step ``records``, ``timings``, its ``compute`` (:mod:`dau.compute`: one-time
    setup vs this request) and the deletion ``request`` resolution."""

    model: nn.Module
    defender: nn.Module
    split: Any
    config: UnlearnConfig
    dataset: Any
    summary: dict[str, Any]
    records: list[dict[str, Any]]
    timings: dict[str, float]
    compute: dict[str, Any] = field(default_factory=dict)
    request: dict[str, Any] | None = None
    masks: dict[str, torch.Tensor] | None = None
    arch: str | None = None
    run: ckpt.Run | None = field(default=None, repr=False)

    @classmethod
    def from_run(cls, run: ckpt.Run | str | Path, device: str = "cpu") -> UnlearnResult:
        """The result an unlearning run directory holds (its model loaded on ``device``)."""


        run = run if isinstance(run, ckpt.Run) else ckpt.load_run(run)
        if "unlearn" not in run.config or run.manifest.get("status") != "complete":
            raise CheckpointError(f"{run.path} is not a complete unlearning run")
        defender = run.load_model(device)
        masks = (load_masks(run.path / MASKS, defender)
                 if run.manifest["model"].get("masks", "none") != "none" else None)
        log_file = run.path / ckpt.LOG
        records = ([json.loads(line) for line in log_file.read_text().splitlines() if line]
                   if log_file.exists() else [])
        return cls(model=defender.model if isinstance(defender, FeatureClassifier) else defender,
                   defender=defender, split=run.load_plan(),
                   config=UnlearnConfig.from_dict(run.config["unlearn"]),
                   dataset=_dataset(run.config["dataset"], run.config.get("data_dir")),
                   summary=dict(run.manifest.get("summary", {})), records=records,
                   timings=dict(run.manifest.get("timings", {})),
                   compute=dict(run.manifest.get("compute", {})),
                   request=run.manifest["split"].get("request"), masks=masks,
                   arch=run.manifest["model"].get("arch"), run=run)

    def save(self, path: str | Path) -> ckpt.Run:
        """Write a complete run directory at ``path`` (new or empty; nothing is overwritten):
        ``dau eval``, ``dau export`` and ``--reference`` work on it when its data and
        architecture can be rebuilt by name (a dataset spec, ``arch=``)."""

        if self.run is not None:
            raise CheckpointError(f"this result is already the run {self.run.path}")
        info = self.dataset.info
        spec = info.spec
        out = ckpt.create_run_dir(".", "unused", path)
        try:
            manifest = {
                "schema": ckpt.SCHEMA, "kind": self.config.method, "status": "complete",
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": ckpt.versions(),
                "config": {"dataset": spec, "arch": self.arch, "seed": self.split.seed,
                           "val_fraction": self.split.val_fraction, "forget": self.split.spec,
                           "unlearn": self.config.to_dict()},
                "dataset": {"name": info.name, "num_classes": info.num_classes,
                            "source": str(info.source), "num_train": len(self.dataset.train),
                            "num_test": len(self.dataset.test)},
                "model": _model_section(self.defender, info, self.arch, self.masks),
                "split": save_run_split(out, self.split, "train",
                                        dataset=dataset_section(spec or info.name, self.dataset,
                                                                self.split),
                                        request=self.request),
                "parent": None, "timings": dict(self.timings), "compute": self.compute,
                "summary": self.summary,
            }
            if self.masks:
                save_masks(out / MASKS, self.masks)
            for record in self.records:
                ckpt.append_log(out / ckpt.LOG, record)
            ckpt.save_model(out / ckpt.MODEL, self.defender)
            run = ckpt.Run(path=out, manifest=manifest)
            run.write_manifest()  # last: a directory without it is not a run
        except BaseException:
            log.error("saving the run to %s failed; the directory is incomplete", out)
            raise
        self.run = run
        return run


def unlearn(
    model: nn.Module | str | Path,
    data: Any = None,
    *,
    forget: Any,
    method: str = "dau",
    config: UnlearnConfig | None = None,
    device: str = "auto",
    seed: int = 1,
    val_fraction: float = 0.1,
    feature_layer: str | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    masks: Mapping[str, torch.Tensor] | None = None,
    arch: str | None = None,
    metadata: str | None = None,
    id_column: str | None = None,
    progress: bool = True,
    runs_dir: str | Path = "runs",
    out: str | Path | None = None,
    **options: Any,
) -> UnlearnResult:
    """Make ``model`` forget ``forget`` of ``data`` with ``method``; the model changes in place.

    Args:
        model: any classifier returning logits (its features are found at the input of the
            layer producing them, or at ``feature_layer``), or dau's ``(logits, features)``;
            or an original (or pruned) run directory, unlearned as ``dau unlearn --model``
            does into a new run under ``runs_dir`` (or ``out``), with its own data and split.
        data: a :class:`dau.data.Dataset` (``dau.data.image_folder(...)``, ...) or a spec.
        forget: ``random:10%``, ``class:3``, a deletion request (``files:``, ``ids:``,
            ``fingerprints:``) or a ``SplitPlan``; planned with ``seed`` and
            ``val_fraction`` (the validation set is held out of the training split).
        method: a registered method (``dau.list_methods()``); ``config`` or ``options``
            (fields of :class:`dau.UnlearnConfig`) set its hyper-parameters.
        mean: per-channel means to normalise with inside the model, with ``std`` (leave both
            out when the model or the data's transform already normalises).
        std: per-channel standard deviations, with ``mean``.
        masks: pruning masks by parameter name (of ``model``): pruned weights stay zero.
        arch: how ``dau`` can rebuild the model by name (``torchvision:resnet18``), recorded
            when the result is saved.

    Example:
        >>> result = dau.unlearn(model, dau.data.image_folder("photos"), forget="class:2")
        >>> result.save("runs/forget-class-2")
    """

    if config is None:
        config = UnlearnConfig(method=method, device=device, seed=seed, **options)
    elif options:
        config = config.replace(**options)
    if isinstance(model, (str, Path)):

        if data is not None or masks is not None:
            raise ConfigError("data/masks: a run directory brings its own data and masks")
        run = unlearn_run(config, forget=forget, model=model, runs_dir=runs_dir, out=out,
                          progress=progress, metadata=metadata, id_column=id_column)
        return UnlearnResult.from_run(run, device=resolve_device(config.device))
    dataset = _dataset(data)
    get_method(config.method)
    device = resolve_device(config.device)
    require_kernels_for(config, device)
    plan, request = _plan(dataset, forget, seed, val_fraction, metadata, id_column)
    if len(plan.forget) == 0:
        raise DauError(f"forget: {plan.spec!r} selects no sample; nothing to unlearn")
    defender = place_model(_defender(model, dataset, feature_layer=feature_layer, mean=mean,
                                     std=std), device)
    own_masks = _masks_for(defender, masks, device)
    config = resolve(config, dataset.info.name, bool(plan.forgotten_classes),
                     sparse=own_masks is not None)
    ctx = UnlearnContext(defender=defender, info=dataset.info,
                         train=to_device(dataset.train, device), plan=plan, device=device,
                         masks=own_masks, progress=progress)
    summary = get_method(config.method)(ctx, config)
    return UnlearnResult(model=model, defender=defender, split=plan, config=config,
                         dataset=dataset, summary=summary, records=ctx.records,
                         timings={"unlearn_seconds": ctx.elapsed()}, compute=ctx.compute(),
                         request=request, masks=own_masks, arch=arch)


def _masks_for(defender: nn.Module, masks: Mapping[str, torch.Tensor] | None,
               device: str) -> dict[str, torch.Tensor] | None:
    """``masks`` keyed by the defender's parameter names, on ``device``, applied."""

    if not masks:
        return None
    out = {k: v.to(device=device, dtype=torch.float32)
           for k, v in match_masks(masks, defender, "masks").items()}
    apply_masks_(defender, out)
    return out


def evaluate(
    model: nn.Module | UnlearnResult,
    data: Any = None,
    *,
    forget: Any = None,
    reference: nn.Module | UnlearnResult | None = None,
    seed: int = 1,
    val_fraction: float = 0.1,
    device: str = "auto",
    batch_size: int = 512,
    mia: bool = True,
    max_mia_samples: int | None = None,
    drop_forgotten_classes: bool = True,
    feature_layer: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """UA, RA, TA, VA, MIA-efficacy and training privacy of ``model`` on a split of ``data``
    (see :func:`dau.eval.evaluate`), and the gaps to ``reference`` when given.

    ``model`` may be an :class:`UnlearnResult` (its data and split are used unless given).
    ``forget`` is a spec or a ``SplitPlan`` (``result.split``).
    """

    if isinstance(model, UnlearnResult):
        data = model.dataset if data is None else data
        forget = model.split if forget is None else forget
        model = model.defender
    if data is None or forget is None:
        raise ConfigError("evaluate: give data and forget (or an UnlearnResult)")
    dataset = _dataset(data)
    plan, _ = _plan(dataset, forget, seed, val_fraction, None, None)
    device = resolve_device(device)
    test_idx = plan.test_indices(dataset.test.labels.numpy(), drop_forgotten_classes)
    sets = {"retain": dataset.train.subset(plan.retain),
            "forget": dataset.train.subset(plan.forget),
            "val": dataset.train.subset(plan.val), "test": dataset.test.subset(test_idx)}
    cap = DEFAULT_MAX_SAMPLES if max_mia_samples is None else max_mia_samples

    def judge(net: nn.Module | UnlearnResult) -> dict[str, Any]:
        net = net.defender if isinstance(net, UnlearnResult) else net
        defender = place_model(_defender(net, dataset, feature_layer=feature_layer, mean=None,
                                         std=None), device)
        return evaluate_sets(defender, sets, batch_size=batch_size, device=device, mia=mia,
                             max_mia_samples=cap or None, seed=plan.seed, progress=progress)

    result = judge(model)
    result["split"] = {"fingerprint": plan.fingerprint, "spec": plan.spec, "seed": plan.seed}
    if reference is not None:
        result["reference"] = judge(reference)
        result["gap"] = gap(result, result["reference"])
    return result


def import_model(
    weights: str | Path | Mapping[str, torch.Tensor] | nn.Module,
    data: Any,
    *,
    arch: str,
    out: str | Path | None = None,
    runs_dir: str | Path = "runs",
    seed: int = 1,
    val_fraction: float = 0.1,
    feature_layer: str | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    data_dir: str | None = None,
) -> ckpt.Run:
    """Make a complete *original* run of a model trained elsewhere, so ``dau unlearn`` and
    ``dau eval`` work on it: ``arch`` (``torchvision:NAME``, ``timm:NAME``,
    ``import:MODULE:CALLABLE`` or a dau architecture) built for ``data``'s classes, the
    ``weights`` (a safetensors file or ``weights_only`` state dict, a state dict, or a module)
    loaded strictly, checked by a forward pass on the data, and the split planned."""

    dataset = _dataset(data, data_dir)
    info = dataset.info
    if info.spec is None:
        raise ConfigError("data: an imported model's run must name its data by a spec "
                          "(e.g. 'imagefolder:root=photos') so dau can reload it")
    if ":" in arch:
        model = build_classifier(arch, num_classes=info.num_classes, in_channels=info.channels)
    else:
        model = create_model(arch, num_classes=info.num_classes, in_channels=info.channels,
                             mean=info.mean, std=info.std)
    if isinstance(weights, nn.Module):
        state = weights.state_dict()
    elif isinstance(weights, Mapping):
        state = dict(weights)
    else:
        state = load_state_dict(weights)
    problem = state_mismatch(model.state_dict(), state)
    if problem is not None:
        raise CheckpointError(f"weights: they do not fit --arch {arch} with "
                              f"{info.num_classes} classes: {problem}")
    model.load_state_dict(state, strict=True)
    defender = _defender(model, dataset, feature_layer=feature_layer, mean=mean, std=std)
    plan = plan_split(dataset.train.labels, info.num_classes, "none", seed, val_fraction)
    path = ckpt.create_run_dir(runs_dir, f"{info.name}-{arch.replace(':', '-')}-imported", out)
    section = _model_section(defender, info, arch, None)
    if ":" not in arch:
        section.update(mean=list(info.mean), std=list(info.std))
    run = ckpt.Run(path=path, manifest={
        "schema": ckpt.SCHEMA, "kind": "original", "status": "complete",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": ckpt.versions(),
        "config": {"dataset": info.spec, "data_dir": data_dir, "arch": arch, "width": 1.0,
                   "seed": seed, "val_fraction": val_fraction, "forget": "none",
                   "augment": True, "imported_from": None if not isinstance(weights, (str, Path))
                   else str(Path(weights).resolve())},
        "dataset": {"name": info.name, "num_classes": info.num_classes,
                    "source": str(info.source), "num_train": len(dataset.train),
                    "num_test": len(dataset.test)},
        "model": section,
        "split": save_run_split(path, plan, "train",
                                dataset=dataset_section(info.spec, dataset, plan)),
        "parent": None, "timings": {},
    })
    ckpt.save_model(path / ckpt.MODEL, defender)
    run.write_manifest()
    log.info("imported %s as %s", arch, path)
    return run
