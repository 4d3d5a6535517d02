"""SVC membership inference: closed-form features, separable shadow sets, evaluate()."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from dau.errors import ConfigError, DataError
from dau.eval import (
    MIA_FEATURES,
    Predictions,
    entropy,
    evaluate,
    forget_efficacy,
    mia_features,
    modified_entropy,
    modified_entropy_reference,
    svc_mia,
    training_privacy,
)

LOG_FLOOR = math.log(1e-30)


# ---------------------------------------------------------------- features, closed form


def test_entropy_closed_form() -> None:
    probs = np.array([[0.25, 0.25, 0.25, 0.25], [1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0]])
    np.testing.assert_allclose(entropy(probs), [math.log(4), 0.0, math.log(2)], atol=1e-12)


def test_modified_entropy_song_mittal() -> None:
    p = [0.7, 0.2, 0.1]
    got = modified_entropy(np.array([p, p]), np.array([0, 1]))
    want_y0 = -(0.3 * math.log(0.7)) - 0.2 * math.log(0.8) - 0.1 * math.log(0.9)
    want_y1 = -(0.8 * math.log(0.2)) - 0.7 * math.log(0.3) - 0.1 * math.log(0.9)
    np.testing.assert_allclose(got, [want_y0, want_y1], rtol=1e-12)


def test_modified_entropy_extremes_use_the_log_floor() -> None:
    one_hot = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    got = modified_entropy(one_hot, np.array([0, 1]))
    # right and certain: 0; certain and wrong: -1*log(1e-30) for p_y=0 and -1*log(1e-30) for 1-p_0=0
    np.testing.assert_allclose(got, [0.0, -2 * LOG_FLOOR], rtol=1e-12)
    assert np.all(np.isfinite(got))


def test_reference_formula_uses_the_label_set_of_the_whole_set() -> None:
    p = [0.7, 0.2, 0.1]
    # L = {0}: -(1-p0) log p0 - p1 log p1 - p2 log p2
    only_zero = modified_entropy_reference(np.array([p]), np.array([0]))
    want = -(0.3 * math.log(0.7)) - 0.2 * math.log(0.2) - 0.1 * math.log(0.1)
    np.testing.assert_allclose(only_zero, [want], rtol=1e-12)
    # Same row, but the set also contains label 1 (L = {0, 1}): the row's value changes.
    both = modified_entropy_reference(np.array([p, p]), np.array([0, 1]))
    want_both = -(0.3 * math.log(0.7)) - 0.8 * math.log(0.2) - 0.1 * math.log(0.1)
    np.testing.assert_allclose(both, [want_both, want_both], rtol=1e-12)
    # ... whereas the correct formula of row 0 does not depend on the other rows.
    assert modified_entropy(np.array([p, p]), np.array([0, 1]))[0] == pytest.approx(
        modified_entropy(np.array([p]), np.array([0]))[0]
    )
    assert modified_entropy(np.array([p]), np.array([0]))[0] != pytest.approx(want)


def test_reference_formula_replaces_log_zero_only() -> None:
    probs = np.array([[1.0, 0.0]])
    got = modified_entropy_reference(probs, np.array([1]))  # L = {1}
    # c=1 in L: -(1-0)*log(1e-30); c=0 not in L: -1*log(1) = 0
    np.testing.assert_allclose(got, [-LOG_FLOOR], rtol=1e-12)


@pytest.mark.parametrize("num_classes", [3, 100])
def test_mia_features_shapes_follow_the_class_count(num_classes: int) -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(num_classes), size=5)
    labels = rng.integers(0, num_classes, 5)
    feats = mia_features(Predictions(probs, labels))
    assert set(feats) == set(MIA_FEATURES)
    for name in ("correctness", "confidence", "entropy", "m_entropy"):
        assert feats[name].shape == (5, 1)
    assert feats["prob"].shape == (5, num_classes)
    np.testing.assert_allclose(feats["confidence"][:, 0], probs[np.arange(5), labels])
    np.testing.assert_array_equal(feats["correctness"][:, 0], probs.argmax(1) == labels)
    compat = mia_features(Predictions(probs, labels), reference_compat=True)
    np.testing.assert_allclose(compat["m_entropy"][:, 0], modified_entropy_reference(probs, labels))
    np.testing.assert_allclose(compat["entropy"], feats["entropy"])


# ---------------------------------------------------------------- attacks


def rows(
    n: int, p_label: float, *, correct: bool, num_classes: int = 3, start: int = 0
) -> Predictions:
    """n rows, labels cycling over the classes; p_label goes to the label (or to the next class)."""
    labels = (np.arange(n) + start) % num_classes
    rest = (1.0 - p_label) / (num_classes - 1)
    probs = np.full((n, num_classes), rest)
    winner = labels if correct else (labels + 1) % num_classes
    probs[np.arange(n), winner] = p_label
    if not correct:
        probs[np.arange(n), labels] = rest / 2
        probs[np.arange(n), (labels + 2) % num_classes] = 1.0 - p_label - rest / 2
    return Predictions(probs, labels)


MEMBERS = rows(30, 0.95, correct=True)
NON_MEMBERS = rows(30, 0.6, correct=False)


def test_separable_shadow_sets_give_perfect_scores() -> None:
    member_like = rows(12, 0.95, correct=True, start=1)
    non_member_like = rows(12, 0.6, correct=False, start=2)
    as_forget = svc_mia(MEMBERS, NON_MEMBERS, None, non_member_like)
    assert {k: as_forget[k] for k in MIA_FEATURES} == dict.fromkeys(MIA_FEATURES, 1.0)
    remembered = svc_mia(MEMBERS, NON_MEMBERS, None, member_like)
    assert {k: remembered[k] for k in MIA_FEATURES} == dict.fromkeys(MIA_FEATURES, 0.0)
    both = svc_mia(MEMBERS, NON_MEMBERS, member_like, non_member_like)
    assert {k: both[k] for k in MIA_FEATURES} == dict.fromkeys(MIA_FEATURES, 1.0)
    half = svc_mia(MEMBERS, NON_MEMBERS, non_member_like, non_member_like)
    assert {k: half[k] for k in MIA_FEATURES} == dict.fromkeys(MIA_FEATURES, 0.5)
    assert (both["n_shadow_train"], both["n_shadow_test"]) == (30, 30)
    assert (both["n_target_train"], both["n_target_test"]) == (12, 12)


def test_forget_efficacy_uses_the_first_len_test_retain_rows() -> None:
    # retain = 30 member-like rows, then 200 non-member-like ones the attack must not see.
    tail = rows(200, 0.6, correct=False)
    retain = Predictions(
        np.concatenate([MEMBERS.probs, tail.probs]), np.concatenate([MEMBERS.labels, tail.labels])
    )
    forget = rows(9, 0.95, correct=True)
    result = forget_efficacy(retain, forget, NON_MEMBERS)
    assert result["confidence"] == 0.0  # the forget rows look like members: nothing forgotten
    assert result["n_shadow_train"] == len(NON_MEMBERS) == 30
    assert (result["n_target_train"], result["n_target_test"]) == (0, 9)
    forgotten = forget_efficacy(retain, rows(9, 0.6, correct=False), NON_MEMBERS)
    assert forgotten["confidence"] == 1.0


def test_reference_compat_changes_only_m_entropy_in_class_wise_forgetting() -> None:
    # Shadow sets hold all three labels; the forget set only label 0 and looks like members.
    forget = Predictions(np.tile([0.95, 0.025, 0.025], (10, 1)), np.zeros(10, dtype=np.int64))
    members = rows(30, 0.95, correct=True)
    non_members = rows(30, 0.4, correct=True)
    correct = forget_efficacy(members, forget, non_members)
    compat = forget_efficacy(members, forget, non_members, reference_compat=True)
    assert correct["m_entropy"] == 0.0  # correct formula: same value as the members
    assert compat["m_entropy"] == 1.0  # buggy formula: label set {0} turns it into a non-member
    for name in ("correctness", "confidence", "entropy", "prob"):
        assert correct[name] == compat[name]


class RandomNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 4 * 4, 5)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = x.flatten(1)
        return 4.0 * self.fc(features - 0.5), features


def image_set(n: int, seed: int, num_classes: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 4, 4), dtype=torch.uint8, generator=gen)
    return images, torch.randint(0, num_classes, (n,), generator=gen)


def test_training_privacy_is_about_half_without_membership_signal() -> None:
    torch.manual_seed(0)
    model = RandomNet()
    from dau.eval import predict

    retain = predict(model, *image_set(500, 1), progress=False)
    test = predict(model, *image_set(300, 2), progress=False)
    result = training_privacy(retain, test)
    assert (result["n_shadow_train"], result["n_shadow_test"]) == (150, 150)
    assert (result["n_target_train"], result["n_target_test"]) == (350, 150)
    for name in MIA_FEATURES:
        assert 0.4 <= result[name] <= 0.6, (name, result[name])


def test_training_privacy_detects_a_leaking_model() -> None:
    retain = rows(40, 0.95, correct=True)
    test = rows(40, 0.6, correct=False)
    result = training_privacy(retain, test)
    assert result["confidence"] == 1.0


def test_max_samples_subsamples_deterministically() -> None:
    rng = np.random.default_rng(1)

    def noisy(n: int, alpha: float) -> Predictions:
        return Predictions(rng.dirichlet([alpha, 1, 1], size=n), rng.integers(0, 3, n))

    retain, test, forget = noisy(300, 5.0), noisy(200, 1.0), noisy(50, 3.0)
    a = forget_efficacy(retain, forget, test, max_samples=40, seed=3)
    b = forget_efficacy(retain, forget, test, max_samples=40, seed=3)
    assert a == b
    assert (a["n_shadow_train"], a["n_shadow_test"], a["n_target_test"]) == (40, 40, 50)
    full = forget_efficacy(retain, forget, test, max_samples=1000)
    assert (full["n_shadow_train"], full["n_shadow_test"]) == (200, 200)
    assert full == forget_efficacy(retain, forget, test)
    others = [forget_efficacy(retain, forget, test, max_samples=40, seed=s) for s in range(4, 9)]
    assert any(o != a for o in others)  # the seed picks the subset


def test_max_samples_keeps_each_class_share() -> None:
    """The cap is stratified: every class keeps its share of the shadow set (largest
    remainders), whatever the seed."""
    from dau.eval.mia import _subsample

    labels = np.repeat(np.arange(4), [500, 300, 150, 50])  # shares 0.5, 0.3, 0.15, 0.05
    for seed in range(5):
        keep = _subsample(labels, 101, np.random.default_rng(seed))
        assert keep is not None and len(keep) == 101 and len(np.unique(keep)) == 101
        assert np.all(np.diff(keep) > 0)  # stored order
        counts = np.bincount(labels[keep], minlength=4)
        np.testing.assert_array_equal(np.abs(counts - np.array([50.5, 30.3, 15.15, 5.05])) < 1,
                                      True)
    assert _subsample(labels, 1000, np.random.default_rng(0)) is None


def test_bad_inputs_give_clear_errors() -> None:
    empty = Predictions(np.zeros((0, 3)), np.zeros(0, dtype=np.int64))
    with pytest.raises(DataError, match="shadow_train is empty"):
        svc_mia(empty, NON_MEMBERS, None, MEMBERS)
    with pytest.raises(DataError, match="shadow_test is empty"):
        svc_mia(MEMBERS, empty, None, MEMBERS)
    with pytest.raises(DataError, match="target"):
        svc_mia(MEMBERS, NON_MEMBERS, None, None)
    with pytest.raises(DataError, match="target"):
        svc_mia(MEMBERS, NON_MEMBERS, empty, empty)
    with pytest.raises(DataError, match="classes"):
        svc_mia(MEMBERS, rows(5, 0.6, correct=False, num_classes=4), None, MEMBERS)
    with pytest.raises(DataError, match="Predictions"):
        svc_mia(MEMBERS.probs, NON_MEMBERS, None, MEMBERS)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="forget set is empty"):
        forget_efficacy(MEMBERS, empty, NON_MEMBERS)
    with pytest.raises(DataError, match="2 test rows"):
        training_privacy(MEMBERS, NON_MEMBERS[:1])
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match="max_samples"):
            svc_mia(MEMBERS, NON_MEMBERS, None, MEMBERS, max_samples=bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------- evaluate()


@pytest.fixture
def model() -> RandomNet:
    torch.manual_seed(0)
    return RandomNet()


def test_evaluate_full(model: RandomNet) -> None:
    sets = {
        "train": image_set(90, 10),
        "retain": image_set(80, 11),
        "forget": image_set(10, 12),
        "val": image_set(20, 13),
        "test": image_set(40, 14),
    }
    result = evaluate(model, sets, batch_size=32, progress=False)
    json.dumps(result, allow_nan=False)  # plain JSON
    from dau.eval import predict

    acc = {k: predict(model, *v, progress=False).accuracy for k, v in sets.items()}
    assert result["accuracy"] == pytest.approx(acc)
    assert result["UA"] == pytest.approx(100.0 - acc["forget"])
    assert result["RA"] == pytest.approx(acc["retain"])
    assert result["TA"] == pytest.approx(acc["test"])
    assert result["VA"] == pytest.approx(acc["val"])
    assert set(result["mia_forget_efficacy"]) == set(MIA_FEATURES)
    assert set(result["mia_training_privacy"]) == set(MIA_FEATURES)
    assert result["MIA"] == pytest.approx(100 * result["mia_forget_efficacy"]["confidence"])
    assert result["privacy"] == pytest.approx(100 * result["mia_training_privacy"]["confidence"])
    for value in (
        *result["mia_forget_efficacy"].values(),
        *result["mia_training_privacy"].values(),
    ):
        assert 0.0 <= value <= 1.0
    assert result["n_samples"] == {"train": 90, "retain": 80, "forget": 10, "val": 20, "test": 40}
    assert result["mia_samples"]["forget_efficacy"] == {
        "n_shadow_train": 40,
        "n_shadow_test": 40,
        "n_target_train": 0,
        "n_target_test": 10,
    }
    assert result["mia_samples"]["training_privacy"] == {
        "n_shadow_train": 20,
        "n_shadow_test": 20,
        "n_target_train": 60,
        "n_target_test": 20,
    }


@pytest.mark.parametrize("forget_rows", [None, 0])
def test_evaluate_without_forget_rows(model: RandomNet, forget_rows: int | None) -> None:
    sets = {"retain": image_set(60, 1), "test": image_set(30, 2)}
    if forget_rows is not None:
        sets["forget"] = image_set(forget_rows, 3)
    result = evaluate(model, sets, progress=False)
    json.dumps(result, allow_nan=False)
    assert result["UA"] is None and result["MIA"] is None
    assert result["mia_forget_efficacy"] is None
    assert result["mia_training_privacy"] is not None and result["privacy"] is not None
    assert result["RA"] is not None and result["VA"] is None
    if forget_rows == 0:
        assert result["accuracy"]["forget"] is None and result["n_samples"]["forget"] == 0


def test_evaluate_options(model: RandomNet) -> None:
    sets = {"retain": image_set(60, 1), "forget": image_set(8, 3), "test": image_set(30, 2)}
    no_mia = evaluate(model, sets, mia=False, progress=False)
    assert no_mia["MIA"] is None and no_mia["UA"] is not None
    capped = evaluate(model, sets, max_mia_samples=12, seed=5, progress=False)
    assert capped["mia_samples"]["forget_efficacy"]["n_shadow_train"] == 12
    assert capped["mia_options"] == {"reference_compat": False, "max_samples": 12, "seed": 5}
    with pytest.raises(ConfigError, match="max_samples"):
        evaluate(model, sets, mia=False, max_mia_samples=0, progress=False)
    with pytest.raises(ConfigError, match="did you mean 'retain'"):
        evaluate(model, {"retian": image_set(4, 1)}, progress=False)
    with pytest.raises(DataError, match="pair"):
        evaluate(model, {"test": image_set(4, 1)[0]}, progress=False)  # type: ignore[dict-item]
