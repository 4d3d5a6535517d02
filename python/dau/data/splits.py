"""Split planning: validation, train, forget and retain positions of a training set.

A thin, typed layer over :mod:`dau._native` (Rust). The plan is deterministic: the same
labels, spec, seed and validation fraction give the same :class:`SplitPlan` (and the same
``fingerprint``) on every platform. See ``python/dau/_native.pyi`` for the algorithm.

Forget specs: ``random:N``, ``random:P%``, ``class:K``, ``classes:K1,K2``, ``indices:FILE``
(a text file of positions in the full training set) and ``none``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from dau import _native
from dau._native import SplitPlan
from dau.checkpoint import atomic_write
from dau.errors import ConfigError, SplitError

__all__ = [
    "DEFAULT_VAL_FRACTION",
    "SplitPlan",
    "as_labels",
    "load_plan",
    "parse_forget_option",
    "plan_split",
    "save_plan",
    "save_run_split",
]

DEFAULT_VAL_FRACTION: float = _native.DEFAULT_VAL_FRACTION


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


def save_run_split(run_dir: str | os.PathLike[str], plan: SplitPlan, trained_on: str) -> dict[str, Any]:
    """Write ``split.json`` into a run directory; return the manifest's ``split`` section."""
    from dau.checkpoint import SPLIT

    save_plan(plan, Path(run_dir) / SPLIT)
    return {"file": SPLIT, "fingerprint": plan.fingerprint, "spec": plan.spec, "seed": plan.seed,
            "val_fraction": plan.val_fraction, "counts": plan.counts(), "trained_on": trained_on}


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
