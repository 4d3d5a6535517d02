"""SVC membership-inference attacks (reference spec §5.2–5.4).

Five attacks, one per feature of a model's softmax output:

=============  ==============================================================
``correctness`` 1 if the arg-max class is the label, else 0
``confidence``  p_y, the probability of the true label
``entropy``     −Σ_c p_c log p_c (0·log 0 = 0)
``m_entropy``   modified entropy (Song & Mittal 2021):
                −(1−p_y) log p_y − Σ_{c≠y} p_c log(1−p_c), logs floored at 1e-30
``prob``        the whole probability vector (C columns, C from the model)
=============  ==============================================================

For each feature one ``sklearn.svm.SVC(C=3, kernel="rbf", gamma="auto")`` is
fitted, without feature scaling, on shadow-train rows labelled 1 (member) and
shadow-test rows labelled 0 (non-member). Its score is the mean over the target
sets present of: the fraction of target-train rows predicted member and the
fraction of target-test rows predicted non-member.

``reference_compat=True`` swaps the modified entropy for the reference code's
formula, which is wrong but is what the published numbers used: with L the set
of labels occurring in the evaluated set, −Σ_{c∈L} (1−p_c) log p_c −
Σ_{c∉L} p_c log p_c, where log 0 is replaced by log 1e-30. In class-wise
forgetting it makes the feature depend on which classes a set contains.

``max_samples`` is this package's addition: an RBF SVC costs roughly quadratic time in
its training rows, so each shadow set larger than ``max_samples`` is cut to that many rows,
stratified by label (each class keeps its share, largest remainders rounding) and drawn
without replacement from ``numpy.random.default_rng`` seeded by ``seed`` (one child stream
per shadow set, rows kept in stored order). :func:`dau.evaluate` caps at
:data:`DEFAULT_MAX_SAMPLES` rows per side; ``None`` uses every row, as the reference does.
Features are computed on the whole set first, so the reference-compatible label set L does
not change. The rows used are recorded in the result (``n_shadow_train`` …).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from sklearn.svm import SVC

from dau.errors import ConfigError, DataError
from dau.eval.accuracy import Predictions

__all__ = [
    "DEFAULT_MAX_SAMPLES",
    "MIA_FEATURES",
    "entropy",
    "forget_efficacy",
    "mia_features",
    "modified_entropy",
    "modified_entropy_reference",
    "svc_mia",
    "training_privacy",
]

logger = logging.getLogger(__name__)

MIA_FEATURES: tuple[str, ...] = ("correctness", "confidence", "entropy", "m_entropy", "prob")
"""The five attack names, in the reference's order; also the keys of a result."""

_LOG_FLOOR = 1e-30

DEFAULT_MAX_SAMPLES = 10_000
"""Rows per side :func:`dau.evaluate` fits each attack on (the test sets of CIFAR, SVHN's
excepted, and (Fashion-)MNIST have 10,000 rows, so their protocol is unchanged)."""


def entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy of each row, ``[N, C] -> [N]``; terms with p = 0 count 0."""
    probs = np.asarray(probs, dtype=np.float64)
    safe = np.where(probs > 0, probs, 1.0)
    return np.asarray(-np.sum(np.where(probs > 0, probs * np.log(safe), 0.0), axis=1))


def modified_entropy(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Song & Mittal's modified entropy of each row, ``[N, C], [N] -> [N]``.

    −(1−p_y) log p_y − Σ_{c≠y} p_c log(1−p_c), every log taken of max(x, 1e-30).
    Small for a confident correct prediction, large for a confident wrong one.
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    n = probs.shape[0]
    is_label = np.zeros(probs.shape, dtype=bool)
    is_label[np.arange(n), labels] = True
    log_p = np.log(np.maximum(probs, _LOG_FLOOR))
    log_1mp = np.log(np.maximum(1.0 - probs, _LOG_FLOOR))
    terms = np.where(is_label, (1.0 - probs) * log_p, probs * log_1mp)
    return np.asarray(-terms.sum(axis=1))


def modified_entropy_reference(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The reference code's "modified entropy", reproduced bug for bug.

    With L the set of label values occurring anywhere in ``labels``:
    −Σ_{c∈L} (1−p_c) log p_c − Σ_{c∉L} p_c log p_c, where log p is replaced by
    log 1e-30 only where p is exactly 0 (as the reference does).
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    log_p = np.where(probs > 0, np.log(np.where(probs > 0, probs, 1.0)), np.log(_LOG_FLOOR))
    in_label_set = np.zeros(probs.shape[1], dtype=bool)
    in_label_set[np.unique(labels)] = True
    weights = np.where(in_label_set[None, :], 1.0 - probs, probs)
    return np.asarray(-np.sum(weights * log_p, axis=1))


def mia_features(pred: Predictions, *, reference_compat: bool = False) -> dict[str, np.ndarray]:
    """The five attack features of a set, each a float64 array ``[N, d]``.

    ``d`` is 1 for every feature except ``prob`` (``d = C``).
    """
    probs, labels = pred.probs, pred.labels
    n = len(pred)
    confidence = probs[np.arange(n), labels] if n else np.zeros(0)
    m_entropy = (
        modified_entropy_reference(probs, labels)
        if reference_compat
        else modified_entropy(probs, labels)
    )
    return {
        "correctness": pred.correct.astype(np.float64).reshape(n, 1),
        "confidence": np.asarray(confidence, dtype=np.float64).reshape(n, 1),
        "entropy": entropy(probs).reshape(n, 1),
        "m_entropy": m_entropy.reshape(n, 1),
        "prob": np.array(probs, dtype=np.float64).reshape(n, -1),
    }


def check_max_samples(max_samples: Any) -> None:
    """Raise ConfigError unless ``max_samples`` is None or a positive integer."""
    if max_samples is None:
        return
    if isinstance(max_samples, bool) or not isinstance(max_samples, (int, np.integer)):
        raise ConfigError(f"max_samples must be a positive integer or None, got {max_samples!r}")
    if max_samples < 1:
        raise ConfigError(f"max_samples must be a positive integer or None, got {max_samples}")


def _subsample(labels: np.ndarray, max_samples: int | None,
               rng: np.random.Generator) -> np.ndarray | None:
    """Sorted positions of a label-stratified subset of ``max_samples`` rows, or None
    when the set is not larger than that."""
    n = len(labels)
    if max_samples is None or n <= max_samples:
        return None
    classes, counts = np.unique(labels, return_counts=True)
    share = counts * (max_samples / n)
    take = np.floor(share).astype(np.int64)
    extra = max_samples - int(take.sum())
    take[np.argsort(-(share - take), kind="stable")[:extra]] += 1
    keep = [rng.choice(np.flatnonzero(labels == c), size=int(k), replace=False)
            for c, k in zip(classes, take, strict=True)]
    return np.sort(np.concatenate(keep))


def svc_mia(
    shadow_train: Predictions,
    shadow_test: Predictions,
    target_train: Predictions | None = None,
    target_test: Predictions | None = None,
    *,
    reference_compat: bool = False,
    max_samples: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Run the five SVC membership-inference attacks.

    Args:
        shadow_train: known members (SVC class 1).
        shadow_test: known non-members (SVC class 0).
        target_train: members to score (fraction predicted member), or None.
        target_test: non-members to score (fraction predicted non-member), or None.
        reference_compat: use the reference's buggy modified entropy.
        max_samples: cut each shadow set to at most this many rows (seeded,
            stratified by label); None uses every row, as the reference does.
        seed: seed of that subset.

    Returns:
        ``{feature: score}`` for the five :data:`MIA_FEATURES` (each in [0, 1],
        the mean over the target sets present), plus the row counts actually used:
        ``n_shadow_train``, ``n_shadow_test``, ``n_target_train``, ``n_target_test``.

    Raises:
        DataError: a shadow set is missing or empty (the SVC would see one class
            only), no target set has rows, or the sets disagree on the class count.
        ConfigError: ``max_samples`` is not a positive integer or None.
    """
    check_max_samples(max_samples)
    for name, pred in (("shadow_train", shadow_train), ("shadow_test", shadow_test)):
        if not isinstance(pred, Predictions):
            raise DataError(f"{name} must be Predictions, got {type(pred).__name__}")
        if len(pred) == 0:
            raise DataError(
                f"{name} is empty: the attack SVC needs both members (shadow_train) "
                "and non-members (shadow_test) to learn from"
            )
    targets = {"train": target_train, "test": target_test}
    for name, target in targets.items():
        if target is not None and not isinstance(target, Predictions):
            raise DataError(
                f"target_{name} must be Predictions or None, got {type(target).__name__}"
            )
    present = {name: t for name, t in targets.items() if t is not None and len(t)}
    if not present:
        raise DataError("svc_mia needs at least one non-empty target set (target_train/test)")
    num_classes = shadow_train.num_classes
    for name, pred in (
        ("shadow_test", shadow_test),
        *((f"target_{k}", v) for k, v in present.items()),
    ):
        if pred.num_classes != num_classes:
            raise DataError(
                f"{name} has {pred.num_classes} classes but shadow_train has {num_classes}"
            )

    seeds = np.random.SeedSequence(seed).spawn(2)
    keep_train = _subsample(shadow_train.labels, max_samples, np.random.default_rng(seeds[0]))
    keep_test = _subsample(shadow_test.labels, max_samples, np.random.default_rng(seeds[1]))

    feats_train = mia_features(shadow_train, reference_compat=reference_compat)
    feats_test = mia_features(shadow_test, reference_compat=reference_compat)
    feats_targets = {
        name: mia_features(pred, reference_compat=reference_compat)
        for name, pred in present.items()
    }
    n_train = len(shadow_train) if keep_train is None else len(keep_train)
    n_test = len(shadow_test) if keep_test is None else len(keep_test)
    labels = np.concatenate([np.ones(n_train), np.zeros(n_test)])

    result: dict[str, float] = {}
    for feature in MIA_FEATURES:
        x_train = feats_train[feature] if keep_train is None else feats_train[feature][keep_train]
        x_test = feats_test[feature] if keep_test is None else feats_test[feature][keep_test]
        clf = SVC(C=3, kernel="rbf", gamma="auto")
        clf.fit(np.concatenate([x_train, x_test], axis=0), labels)
        scores = []
        if "train" in feats_targets:
            scores.append(float(clf.predict(feats_targets["train"][feature]).mean()))
        if "test" in feats_targets:
            scores.append(1.0 - float(clf.predict(feats_targets["test"][feature]).mean()))
        result[feature] = float(np.mean(scores))
        logger.debug("svc_mia %s: %.4f", feature, result[feature])

    result["n_shadow_train"] = n_train
    result["n_shadow_test"] = n_test
    result["n_target_train"] = len(present["train"]) if "train" in present else 0
    result["n_target_test"] = len(present["test"]) if "test" in present else 0
    return result


def forget_efficacy(
    retain: Predictions,
    forget: Predictions,
    test: Predictions,
    *,
    reference_compat: bool = False,
    max_samples: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """MIA-Efficacy (spec §5.3): the fraction of forget rows predicted non-member.

    The SVC learns members from the first ``len(test)`` retain rows (stored
    order) and non-members from the test set, then scores the forget set.
    Higher means more forgetting; the papers report ``100 * result["confidence"]``.
    """
    if len(forget) == 0:
        raise DataError("the forget set is empty: forget efficacy is undefined")
    return svc_mia(
        retain[: len(test)],
        test,
        None,
        forget,
        reference_compat=reference_compat,
        max_samples=max_samples,
        seed=seed,
    )


def training_privacy(
    retain: Predictions,
    test: Predictions,
    *,
    reference_compat: bool = False,
    max_samples: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Training privacy (spec §5.4): balanced MIA accuracy on held-out retain vs test.

    With ``n = len(test) // 2``: shadow_train = retain[:n], target_train =
    retain[n:], shadow_test = test[:n], target_test = test[n:] (stored order).
    About 0.5 means the model leaks little about its training data.
    """
    n = len(test) // 2
    if n == 0:
        raise DataError(f"training privacy needs at least 2 test rows, got {len(test)}")
    return svc_mia(
        retain[:n],
        test[:n],
        retain[n:],
        test[n:],
        reference_compat=reference_compat,
        max_samples=max_samples,
        seed=seed,
    )
