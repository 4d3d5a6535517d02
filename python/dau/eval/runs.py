"""Evaluate run directories: rebuild their split, load their model, compute the metrics.

A run's manifest holds everything needed (dataset, split, architecture), so a run
made days ago on another machine is judged on exactly the data it was made with.
Comparing against a reference run (normally retrain-from-scratch) is refused when
the two were made on different splits, and judging a run is refused when the dataset no
longer matches its split file (content digests, re-planned index sets): the error lists
every difference.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from dau.checkpoint import Run
from dau.errors import SplitMismatchError
from dau.eval.mia import DEFAULT_MAX_SAMPLES

__all__ = ["evaluate_run", "evaluation_sets", "resolve_plan", "run_cost"]

log = logging.getLogger(__name__)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b))


def resolve_plan(run: Run, *, labels: Any, num_classes: int, reference: Run | None = None,
                 forget: str | None = None) -> Any:
    """The split to judge ``run`` on.

    A run trained on the whole training split (an original model) can be judged
    for any forget set over that split: ``forget`` re-plans it, and a ``reference``
    lends its own. Any other run must be judged on the split it was made with.
    """
    from dau.data.splits import plan_split

    plan = run.load_plan()
    trained_on_train = (
        run.kind == "original" and run.manifest.get("split", {}).get("trained_on") == "train"
    )
    if forget is not None:
        new = plan_split(labels, num_classes, forget, plan.seed, plan.val_fraction)
        if new.fingerprint != plan.fingerprint and not trained_on_train:
            raise SplitMismatchError(
                f"--forget: run {run.name} is a {run.kind} run made for forget set "
                f"{plan.spec!r}; it can only be judged on that split"
            )
        if not (_same(new.train, plan.train) and _same(new.val, plan.val)):
            raise SplitMismatchError(
                f"--forget: re-planning {run.name}'s split gives other train/validation sets; "
                "the dataset has changed since the run was made"
            )
        plan = new
    if reference is not None:
        ref_data = reference.manifest.get("dataset", {}).get("name")
        own_data = run.manifest.get("dataset", {}).get("name")
        if ref_data != own_data:
            raise SplitMismatchError(
                f"--reference: {reference.name} was made on dataset {ref_data!r}, "
                f"{run.name} on {own_data!r}"
            )
        ref_plan = reference.load_plan()
        if ref_plan.fingerprint != plan.fingerprint:
            adoptable = (
                trained_on_train
                and forget is None
                and _same(ref_plan.train, plan.train)
                and _same(ref_plan.val, plan.val)
            )
            if not adoptable:
                raise SplitMismatchError(
                    f"--reference: {reference.name} was made on split {ref_plan.fingerprint[:12]} "
                    f"(forget {ref_plan.spec!r}, seed {ref_plan.seed}) but {run.name} on "
                    f"{plan.fingerprint[:12]} (forget {plan.spec!r}, seed {plan.seed}); "
                    "compare runs made on the same split"
                )
            plan = ref_plan
    return plan


def evaluation_sets(
    run: Run,
    *,
    reference: Run | None = None,
    forget: str | None = None,
    data_dir: str | None = None,
    drop_forgotten_classes: bool = True,
) -> tuple[Any, dict[str, Any]]:
    """The split plan ``run`` is judged on and its retain, forget, val and test sets.

    The dataset is checked against the run's split file first. For class-wise
    forgetting the forgotten classes are dropped from the test set unless
    ``drop_forgotten_classes`` is False.
    """
    from dau.checkpoint import SPLIT
    from dau.data import load_dataset
    from dau.data.splits import check_dataset

    config = run.config
    dataset = load_dataset(config["dataset"], data_dir or config.get("data_dir"))
    check_dataset(run.path / SPLIT, dataset, f"run {run.name}")
    plan = resolve_plan(run, reference=reference, forget=forget,
                        labels=dataset.train.labels, num_classes=dataset.info.num_classes)
    test_idx = plan.test_indices(dataset.test.labels.numpy(), drop_forgotten_classes)
    train = dataset.train
    sets = {  # the training split is retain ∪ forget: its accuracy is derived, not re-predicted
        "retain": train.subset(plan.retain),
        "forget": train.subset(plan.forget),
        "val": train.subset(plan.val),
        "test": dataset.test.subset(test_idx),
    }
    return plan, sets


def run_cost(run: Run) -> dict[str, Any] | None:
    """What the run cost (:mod:`dau.compute`): ``seconds`` and defender images of this request,
    and ``one_time_seconds``, the setup it paid or reused (a cached attacker's pretraining)."""
    compute = run.manifest.get("compute")
    if not compute:
        timings = run.manifest.get("timings", {})
        seconds = timings.get("unlearn_seconds", timings.get("train_seconds"))
        return None if seconds is None else {"seconds": float(seconds), "one_time_seconds": None}
    request, setup = compute["request"], compute["setup"]
    reused = compute.get("reused_setup") or {}
    return {"seconds": request["seconds"],
            "forward_images": request["forward_images"],
            "backward_images": request["backward_images"],
            "one_time_seconds": setup["seconds"] + float(reused.get("seconds", 0.0)),
            "one_time_forward_images": setup["forward_images"]
            + float(reused.get("forward_images", 0.0)),
            "one_time_reused": bool(reused)}


def evaluate_run(
    run: Run,
    *,
    reference: Run | None = None,
    forget: str | None = None,
    device: str = "auto",
    batch_size: int = 512,
    mia: bool = True,
    reference_compat: bool = False,
    max_mia_samples: int | None = DEFAULT_MAX_SAMPLES,
    data_dir: str | None = None,
    drop_forgotten_classes: bool = True,
    progress: bool = True,
    scores: bool = False,
) -> dict[str, Any]:
    """All metrics of one run (see ``dau.eval.evaluate``, ``scores`` too) plus its identity
    and RTE.

    For class-wise forgetting the forgotten classes are dropped from the test set
    (as the reference does) unless ``drop_forgotten_classes`` is False.
    """
    from dau.config import resolve_device
    from dau.eval import evaluate

    device = resolve_device(device)
    plan, sets = evaluation_sets(run, reference=reference, forget=forget, data_dir=data_dir,
                                 drop_forgotten_classes=drop_forgotten_classes)
    model = run.load_model(device)
    log.info("evaluating %s on split %s (forget %s)", run.name, plan.fingerprint[:12], plan.spec)
    metrics = evaluate(
        model,
        sets,
        batch_size=batch_size,
        device=device,
        mia=mia,
        reference_compat=reference_compat,
        max_mia_samples=max_mia_samples,
        seed=plan.seed,
        progress=progress,
        scores=scores,
    )
    accuracy, counts = metrics["accuracy"], metrics["n_samples"]
    parts = [(accuracy.get(k), counts.get(k, 0)) for k in ("retain", "forget")]
    total = sum(n for _, n in parts)
    counts["train"] = total
    accuracy["train"] = (
        sum(a * n for a, n in parts if a is not None and n) / total if total else None
    )
    timings = run.manifest.get("timings", {})
    metrics["RTE"] = timings.get("unlearn_seconds", timings.get("train_seconds"))
    metrics["cost"] = run_cost(run)
    metrics.update(
        run=str(run.path),
        name=run.name,
        kind=run.kind,
        split={"fingerprint": plan.fingerprint, "spec": plan.spec, "seed": plan.seed},
    )
    return metrics
