"""Evaluation of an (unlearned) classifier: accuracies, SVC membership inference, tables.

:func:`evaluate` is the one call most users need; the pieces it is built from
(:func:`predict`, :func:`svc_mia`, :func:`forget_efficacy`,
:func:`training_privacy`, :func:`gap`, :func:`format_table`) are re-exported here.
"""

from __future__ import annotations

import difflib
import logging
import math
from collections.abc import Mapping
from typing import Any

import torch

from dau.errors import ConfigError, DataError
from dau.eval.accuracy import Predictions, predict
from dau.eval.mia import (
    DEFAULT_MAX_SAMPLES,
    MIA_FEATURES,
    check_max_samples,
    entropy,
    forget_efficacy,
    mia_features,
    modified_entropy,
    modified_entropy_reference,
    svc_mia,
    training_privacy,
)
from dau.eval.report import GAP_METRICS, METRIC_ORDER, format_table, gap

__all__ = [
    "GAP_METRICS",
    "METRIC_ORDER",
    "MIA_FEATURES",
    "SET_NAMES",
    "Predictions",
    "entropy",
    "evaluate",
    "forget_efficacy",
    "format_table",
    "gap",
    "mia_features",
    "modified_entropy",
    "modified_entropy_reference",
    "predict",
    "svc_mia",
    "training_privacy",
]

logger = logging.getLogger(__name__)

SET_NAMES: tuple[str, ...] = ("train", "retain", "forget", "val", "test")
"""The set names :func:`evaluate` understands."""

_COUNT_KEYS = ("n_shadow_train", "n_shadow_test", "n_target_train", "n_target_test")


def _percent(value: float) -> float | None:
    return None if math.isnan(value) else value


def _split_mia(result: dict[str, float]) -> tuple[dict[str, float], dict[str, int]]:
    scores = {k: float(result[k]) for k in MIA_FEATURES}
    counts = {k: int(result[k]) for k in _COUNT_KEYS}
    return scores, counts


def evaluate(
    model: torch.nn.Module,
    sets: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    *,
    batch_size: int = 512,
    device: str | torch.device | None = "cpu",
    mia: bool = True,
    reference_compat: bool = False,
    max_mia_samples: int | None = DEFAULT_MAX_SAMPLES,
    seed: int = 0,
    progress: bool = True,
    scores: bool = False,
) -> dict[str, Any]:
    """Accuracies and membership-inference metrics of ``model`` on named sets.

    Args:
        model: returns ``(logits, features)``; must already be on ``device``.
        sets: maps names among :data:`SET_NAMES` to ``(images uint8 [N,C,H,W],
            labels int64 [N])`` pairs or dataset parts (``ImageData``, streamed
            ``StreamData``). Any may be missing; ``forget`` may be empty.
        batch_size: rows per forward pass.
        device: where to run (None: the model's device).
        mia: run the SVC attacks (needs ``retain`` and ``test``).
        reference_compat: use the reference's buggy modified entropy.
        max_mia_samples: cap on each MIA shadow set, stratified by label (see
            :mod:`dau.eval.mia`); None fits on every row, as the reference does.
        seed: seed of that cap's subsample.
        progress: progress on stderr (:mod:`dau.progress`).
        scores: also return ``scores``: ``{set: {"confidence", "entropy", "m_entropy":
            float64 arrays [N]}}``, each sample's attack scores (for
            :func:`dau.plots.plot_membership`; arrays, not JSON).

    Returns:
        A JSON-serialisable dict:

        * ``accuracy``: ``{set: top-1 % or None if empty}`` for each set given;
        * ``UA`` (100 − forget acc.), ``RA`` (retain), ``TA`` (test), ``VA`` (val):
          percent, or None when the set is missing or empty;
        * ``mia_forget_efficacy``: ``{correctness, confidence, entropy, m_entropy,
          prob}`` fractions in [0, 1] (spec §5.3), or None when ``mia`` is off or
          forget/retain/test is missing or empty;
        * ``MIA``: 100 × the confidence entry of it (MIA-Efficacy), or None;
        * ``mia_training_privacy``: the same five keys (spec §5.4), or None;
        * ``privacy``: 100 × its confidence entry, or None;
        * ``n_samples``: ``{set: N}``;
        * ``mia_samples``: ``{"forget_efficacy": counts, "training_privacy":
          counts}`` with ``n_shadow_train``, ``n_shadow_test``, ``n_target_train``,
          ``n_target_test`` (the rows the attacks used; None where not run);
        * ``mia_options``: ``{reference_compat, max_samples, seed}``.
    """
    if not isinstance(sets, Mapping):
        raise ConfigError("sets must map set names to (images, labels) pairs")
    for name in sets:
        if name not in SET_NAMES:
            close = difflib.get_close_matches(str(name), SET_NAMES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"unknown set name {name!r}{hint}; expected some of {', '.join(SET_NAMES)}"
            )

    check_max_samples(max_mia_samples)
    max_mia_samples = None if max_mia_samples is None else int(max_mia_samples)

    preds: dict[str, Predictions] = {}
    for name in SET_NAMES:
        if name not in sets:
            continue
        pair: Any = sets[name]
        images: Any
        labels: Any
        if hasattr(pair, "labels") and hasattr(pair, "subset"):  # a dataset part
            images, labels = pair, None
        elif not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise DataError(f"sets[{name!r}] must be an (images, labels) pair or a dataset "
                            "part (ImageData, StreamData)")
        else:
            images, labels = pair
        logger.debug("predicting %s (%d rows)", name, len(images))
        preds[name] = predict(
            model,
            images,
            labels,
            batch_size=batch_size,
            device=device,
            progress=progress,
            desc=f"predict {name}",
        )

    def acc(name: str) -> float | None:
        pred = preds.get(name)
        return None if pred is None else _percent(pred.accuracy)

    forget_acc = acc("forget")
    result: dict[str, Any] = {
        "accuracy": {name: acc(name) for name in preds},
        "UA": None if forget_acc is None else 100.0 - forget_acc,
        "RA": acc("retain"),
        "TA": acc("test"),
        "VA": acc("val"),
        "mia_forget_efficacy": None,
        "MIA": None,
        "mia_training_privacy": None,
        "privacy": None,
        "n_samples": {name: len(pred) for name, pred in preds.items()},
        "mia_samples": {"forget_efficacy": None, "training_privacy": None},
        "mia_options": {
            "reference_compat": bool(reference_compat),
            "max_samples": max_mia_samples,
            "seed": int(seed),
        },
    }
    if scores:
        result["scores"] = {name: {k: v.ravel() for k, v in mia_features(
            pred, reference_compat=reference_compat).items()
            if k in ("confidence", "entropy", "m_entropy")} for name, pred in preds.items()}
    if not mia:
        return result

    options: dict[str, Any] = {
        "reference_compat": reference_compat,
        "max_samples": max_mia_samples,
        "seed": seed,
    }
    retain, test, forget = preds.get("retain"), preds.get("test"), preds.get("forget")
    if retain is None or test is None or len(retain) == 0 or len(test) == 0:
        logger.info("no MIA: it needs non-empty retain and test sets")
        return result

    if forget is not None and len(forget) > 0:
        fractions, counts = _split_mia(forget_efficacy(retain, forget, test, **options))
        result["mia_forget_efficacy"] = fractions
        result["MIA"] = 100.0 * fractions["confidence"]
        result["mia_samples"]["forget_efficacy"] = counts
    else:
        logger.info("no forget efficacy: the forget set is missing or empty")

    if len(test) >= 2:
        fractions, counts = _split_mia(training_privacy(retain, test, **options))
        result["mia_training_privacy"] = fractions
        result["privacy"] = 100.0 * fractions["confidence"]
        result["mia_samples"]["training_privacy"] = counts
    else:
        logger.info("no training privacy: it needs at least 2 test rows")
    return result
