"""Split planning: validation, train, forget and retain positions of a training set.

A thin, typed layer over :mod:`dau._native` (Rust). The plan is deterministic: the same
labels, spec, seed and validation fraction give the same :class:`SplitPlan` (and the same
``fingerprint``) on every platform. See ``python/dau/_native.pyi`` for the algorithm.

Forget specs: ``random:N``, ``random:P%``, ``class:K``, ``classes:K1,K2``, ``indices:FILE``
(a text file of positions in the full training set), ``none``, and the deletion requests
``fingerprints:FILE``, ``ids:FILE``, ``files:PATH`` (:func:`request_kind`; resolved by
content, see :mod:`dau.data.requests`).

The split file (``split.json``, written by ``dau split plan`` and into every run directory) is
the Rust manifest (spec, seed, counts, the four index arrays and their fingerprint) with two
more sections: ``dataset`` (name, fingerprint algorithm, the train and test digests, one
content digest per index set and the forget set's sample fingerprints) and, for a request,
``request`` (its provenance and every item's resolution). :func:`verify_split` re-plans the
split on a dataset and says what differs.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from dau import _native
from dau._atomic import atomic_write
from dau._native import SplitPlan
from dau.data.fingerprints import ALGORITHM, LAYOUT, dataset_fingerprints, digest, from_hex, to_hex
from dau.errors import ConfigError, SplitError, SplitMismatchError
from dau.runfiles import SPLIT

__all__ = [
    "DEFAULT_VAL_FRACTION",
    "REQUEST_KINDS",
    "SplitPlan",
    "as_labels",
    "check_dataset",
    "dataset_section",
    "load_plan",
    "load_split",
    "parse_forget_option",
    "plan_split",
    "request_kind",
    "save_plan",
    "save_run_split",
    "save_split",
    "verify_split",
]

SETS = ("val", "train", "forget", "retain")
REQUEST_KINDS = ("fingerprints", "ids", "files")

DEFAULT_VAL_FRACTION: float = _native.DEFAULT_VAL_FRACTION

log = logging.getLogger(__name__)


def as_labels(labels: Any, name: str = "labels") -> npt.NDArray[np.int64]:
    """``labels`` (a NumPy array, a torch tensor or a sequence of ints) as a contiguous 1-D
    int64 NumPy array; no copy when it already is one.

    Raises :class:`~dau.errors.SplitError` for anything that is not a 1-D array of integers.
    """
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(labels, torch.Tensor):
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise SplitError(f"{name} must hold integers, got a tensor of dtype {labels.dtype}")
        labels = labels.detach().to("cpu").numpy()
    try:
        array = np.asarray(labels)
    except (TypeError, ValueError) as exc:
        raise SplitError(f"{name} must be a 1-D array of integers: {exc}") from None
    if array.ndim != 1:
        raise SplitError(f"{name} must be a 1-D array, got shape {array.shape}")
    if array.dtype.kind not in "iu":
        if array.size == 0 and array.dtype.kind == "f":
            array = array.astype(np.int64)  # np.asarray([]) is float64
        else:
            raise SplitError(f"{name} must hold integers, got dtype {array.dtype}")
    if array.dtype == np.uint64 and array.size and int(array.max()) > np.iinfo(np.int64).max:
        raise SplitError(f"{name}: value {int(array.max())} does not fit in int64")
    return np.ascontiguousarray(array, dtype=np.int64)


def request_kind(spec: str) -> str | None:
    """``"fingerprints"``, ``"ids"`` or ``"files"`` for a request spec; None for other specs."""
    kind, sep, _ = spec.strip().partition(":")
    return kind.strip() if sep and kind.strip() in REQUEST_KINDS else None


def plan_split(
    labels: Any,
    num_classes: int,
    forget: str,
    seed: int,
    val_fraction: float = DEFAULT_VAL_FRACTION,
) -> SplitPlan:
    """Plan the split of a training set with these ``labels`` (NumPy array or torch tensor
    of integer classes in ``[0, num_classes)``).

    Raises :class:`~dau.errors.SplitError` with a message that says what to fix.
    """
    return _native.plan_split(as_labels(labels), num_classes, forget, seed, val_fraction)


def save_plan(plan: SplitPlan, path: str | os.PathLike[str]) -> Path:
    """Write the plan's JSON manifest to ``path`` atomically (a temporary file in the same
    directory, then :func:`os.replace`); returns the path."""
    target = Path(path)
    text = plan.to_json()
    with atomic_write(target, "w", encoding="utf-8") as f:
        f.write(text)
        f.write("\n")
    return target


def dataset_section(name: str, dataset: Any, plan: SplitPlan) -> dict[str, Any]:
    """The ``dataset`` section of a split file: what the plan's positions hold, by content."""
    fps = dataset_fingerprints(dataset)
    info = dataset.info
    return {
        "name": name, "fingerprint_algorithm": ALGORITHM, "layout": LAYOUT,
        "shape": [info.channels, info.height, info.width],
        "num_train": len(fps.train), "num_test": len(fps.test),
        "train_digest": digest(fps.train), "test_digest": digest(fps.test),
        "set_digests": {s: digest(fps.train[getattr(plan, s)]) for s in SETS},
        "forget_fingerprints": to_hex(fps.train[plan.forget]),
    }


def save_split(path: str | os.PathLike[str], plan: SplitPlan, *,
               dataset: dict[str, Any] | None = None,
               request: dict[str, Any] | None = None) -> Path:
    """Write the split file: the plan's manifest plus the ``dataset`` and ``request`` sections
    (see the module docstring), atomically."""
    if dataset is None and request is None:
        return save_plan(plan, path)
    doc = json.loads(plan.to_json())
    if dataset is not None:
        doc["dataset"] = dataset
    if request is not None:
        doc["request"] = request
    target = Path(path)
    with atomic_write(target, "w", encoding="utf-8") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    return target


def load_split(path: str | os.PathLike[str]) -> tuple[SplitPlan, dict[str, Any]]:
    """The plan of a split file (verified as :func:`load_plan` does) and the whole document."""
    plan = load_plan(path)
    return plan, json.loads(Path(path).read_text(encoding="utf-8"))


def save_run_split(run_dir: str | os.PathLike[str], plan: SplitPlan, trained_on: str, *,
                   dataset: dict[str, Any] | None = None,
                   request: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``split.json`` into a run directory; return the manifest's ``split`` section."""
    save_split(Path(run_dir) / SPLIT, plan, dataset=dataset, request=request)
    section = {"file": SPLIT, "fingerprint": plan.fingerprint, "spec": plan.spec,
               "seed": plan.seed, "val_fraction": plan.val_fraction, "counts": plan.counts(),
               "forgotten_classes": plan.forgotten_classes, "trained_on": trained_on}
    if dataset is not None:
        section["dataset_digest"] = dataset["train_digest"]
        section["forget_digest"] = dataset["set_digests"]["forget"]
    if request is not None:
        section["request"] = {k: request[k] for k in ("spec", "source", "items", "summary")
                              if k in request}
    return section


def _positions(values: np.ndarray, limit: int = 8) -> str:
    shown = ", ".join(str(int(v)) for v in values[:limit])
    return shown + (", ..." if len(values) > limit else "")


def _replan(plan: SplitPlan, doc: dict[str, Any], dataset: Any) -> tuple[SplitPlan | None, str]:
    """The plan ``dataset`` gives for the file's spec, or None and why it cannot be re-made."""
    labels, num_classes = dataset.train.labels, dataset.info.num_classes
    spec = plan.spec
    if request_kind(spec) is not None:
        stored = doc.get("dataset", {}).get("forget_fingerprints")
        if stored is None:
            return None, "the request cannot be re-resolved: the file records no forget fingerprints"
        _, positions = _native.resolve_fingerprints(dataset_fingerprints(dataset).train,
                                                    from_hex(stored))
        replanned, _ = _native.plan_split_request(as_labels(labels), num_classes, spec,
                                                  plan.seed, np.unique(positions),
                                                  plan.val_fraction)
        return replanned, ""
    if spec.startswith("indices:") and not Path(spec.split(":", 1)[1]).exists():
        return None, f"the indices file of {spec!r} is gone; only val/train were re-planned"
    return plan_split(labels, num_classes, spec, plan.seed, plan.val_fraction), ""


def verify_split(plan: SplitPlan, doc: dict[str, Any], dataset: Any) -> tuple[list[str], list[str]]:
    """Check that ``dataset`` still matches a split file: the same samples (by content digest),
    labels that re-plan to the same index sets, the same forget content.

    Returns ``(differences, notes)``: each difference says precisely what differs; notes say
    what could not be checked.
    """
    diffs: list[str] = []
    notes: list[str] = []
    n = len(dataset.train)
    if plan.num_samples != n:
        return [f"training samples: the split has {plan.num_samples}, the dataset {n}"], notes
    if plan.num_classes != dataset.info.num_classes:
        diffs.append(f"classes: the split has {plan.num_classes}, the dataset "
                     f"{dataset.info.num_classes}")
        return diffs, notes
    section = doc.get("dataset")
    if section is not None:
        fps = dataset_fingerprints(dataset)
        shape = [dataset.info.channels, dataset.info.height, dataset.info.width]
        if section.get("shape") != shape:
            diffs.append(f"image shape: the split has {section.get('shape')}, the dataset {shape}")
        if section.get("train_digest") != digest(fps.train):
            changed = [s for s in SETS
                       if section.get("set_digests", {}).get(s) != digest(fps.train[getattr(plan, s)])]
            diffs.append("training-set content differs (digest "
                         f"{str(section.get('train_digest'))[:12]} vs {digest(fps.train)[:12]}); "
                         f"sets whose content changed: {', '.join(changed) or 'none (order only)'}")
            stored = section.get("forget_fingerprints")
            if stored is not None and "forget" in changed:
                forget = plan.forget
                now = np.array(to_hex(fps.train[forget]))
                moved = forget[now != np.array(stored)]
                _, where = _native.resolve_fingerprints(fps.train, from_hex(stored))
                found = len(np.unique(where))
                diffs.append(f"forget set: {len(moved)} of {len(forget)} positions hold other "
                             f"content now ({_positions(moved)}); {len(stored) - found} of its "
                             "samples are no longer anywhere in the dataset")
        if section.get("test_digest") != digest(fps.test):
            diffs.append(f"test-set content differs (digest {str(section.get('test_digest'))[:12]}"
                         f" vs {digest(fps.test)[:12]})")
    else:
        notes.append("the split file records no dataset fingerprints (made before dau recorded "
                     "them); only the re-planned index sets are compared")
    try:
        replanned, why = _replan(plan, doc, dataset)
    except SplitError as exc:
        diffs.append(f"re-planning {plan.spec!r} on this dataset fails: {exc}")
        return diffs, notes
    if replanned is None:
        notes.append(why)
        replanned = plan_split(dataset.train.labels, plan.num_classes, "none", plan.seed,
                               plan.val_fraction)
        compared: tuple[str, ...] = ("val", "train")
    else:
        compared = SETS
    for s in compared:
        a, b = getattr(plan, s), getattr(replanned, s)
        if not np.array_equal(a, b):
            only_file, only_now = np.setdiff1d(a, b), np.setdiff1d(b, a)
            diffs.append(f"{s} set: {len(a)} positions in the split, {len(b)} re-planned; "
                         f"{len(only_file)} only in the split ({_positions(only_file)}), "
                         f"{len(only_now)} only re-planned ({_positions(only_now)})")
    if compared == SETS and not diffs and replanned.fingerprint != plan.fingerprint:
        diffs.append(f"split fingerprint {plan.fingerprint[:12]} re-plans to "
                     f"{replanned.fingerprint[:12]}")
    return diffs, notes


def check_dataset(path: str | os.PathLike[str], dataset: Any, what: str) -> SplitPlan:
    """Load a split file and raise :class:`SplitMismatchError` listing every difference when
    ``dataset`` no longer matches it; returns the plan."""
    plan, doc = load_split(path)
    diffs, notes = verify_split(plan, doc, dataset)
    for note in notes:
        log.info("%s: %s", what, note)
    if diffs:
        raise SplitMismatchError(f"{what}: the dataset does not match {str(path)!r}: "
                                 + "; ".join(diffs))
    return plan


def load_plan(path: str | os.PathLike[str]) -> SplitPlan:
    """Read a manifest written by :func:`save_plan`, verifying its fingerprint.

    Raises :class:`~dau.errors.SplitError` (naming ``path``) when the file cannot be read or
    is not a valid split manifest, and :class:`~dau.errors.SplitMismatchError` when its index
    arrays do not match its fingerprint.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SplitError(f"cannot read split manifest {str(path)!r}: {exc}") from None
    try:
        return SplitPlan.from_json(text)
    except SplitError as exc:
        raise type(exc)(f"{str(path)!r}: {exc}") from None


def parse_forget_option(forget: str | None, klass: int | None) -> str:
    """The forget spec of the CLI options ``--forget SPEC`` and ``--class K``.

    ``--class 3`` gives ``"class:3"``; neither gives ``"none"``; both is a
    :class:`~dau.errors.ConfigError`. The spec itself is checked when the split is planned.
    """
    if forget is not None and klass is not None:
        raise ConfigError(f"--forget {forget!r} and --class {klass} both choose the forget set; give one")
    if klass is not None:
        if isinstance(klass, bool) or not isinstance(klass, int):
            raise ConfigError(f"--class must be an integer class number, got {klass!r}")
        return f"class:{klass}"
    if forget is None:
        return "none"
    spec = forget.strip()
    if not spec:
        raise ConfigError("--forget must not be empty; use 'none' to forget nothing")
    return spec
