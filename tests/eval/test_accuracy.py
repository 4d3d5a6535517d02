"""predict / Predictions: agreement with a manual forward pass, modes, empty sets, bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from dau.errors import ConfigError, DataError
from dau.eval import Predictions, predict


class TinyNet(nn.Module):
    """(logits, features) for float images in [0, 1]; normalisation inside, like dau models."""

    def __init__(self, num_classes: int = 4) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1))
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(4 * 6 * 6, num_classes)
        self.seen_training: list[bool] = []

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.seen_training.append(self.training)
        features = self.drop(torch.relu(self.conv(x - self.mean))).flatten(1)
        return self.fc(features), features


def make_set(n: int, num_classes: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 6, 6), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, num_classes, (n,), generator=gen)
    return images, labels


@pytest.fixture
def model() -> TinyNet:
    torch.manual_seed(0)
    return TinyNet()


def test_predict_matches_manual_forward(model: TinyNet) -> None:
    images, labels = make_set(37)
    pred = predict(model, images, labels, batch_size=8, device="cpu", progress=False)

    model.eval()
    with torch.no_grad():
        logits, _ = model(images.float() / 255.0)
    expected = torch.softmax(logits, dim=1).numpy()

    assert pred.probs.dtype == np.float64 and pred.labels.dtype == np.int64
    assert pred.probs.shape == (37, 4)
    np.testing.assert_allclose(pred.probs, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(pred.labels, labels.numpy())
    manual_acc = 100.0 * (expected.argmax(1) == labels.numpy()).mean()
    assert pred.accuracy == pytest.approx(manual_acc)
    assert len(pred) == 37 and pred.num_classes == 4


def test_batch_size_does_not_change_the_result(model: TinyNet) -> None:
    images, labels = make_set(20)
    a = predict(model, images, labels, batch_size=3, progress=False)
    b = predict(model, images, labels, batch_size=100, progress=False)
    np.testing.assert_allclose(a.probs, b.probs, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("training", [True, False])
def test_runs_in_eval_mode_and_restores_mode(model: TinyNet, training: bool) -> None:
    model.train(training)
    images, labels = make_set(10)
    predict(model, images, labels, batch_size=4, progress=False)
    assert model.seen_training and not any(model.seen_training)
    assert model.training is training
    assert all(m.training is training for m in model.modules())


def test_no_gradients_are_recorded(model: TinyNet) -> None:
    images, labels = make_set(5)
    predict(model, images, labels, progress=False)
    assert all(p.grad is None for p in model.parameters())


def test_empty_set(model: TinyNet) -> None:
    images, labels = make_set(0)
    pred = predict(model, images, labels, progress=False)
    assert len(pred) == 0
    assert pred.probs.shape == (0, 4)  # class count learned from an empty forward
    assert math.isnan(pred.accuracy)
    assert pred.correct.shape == (0,)


def test_accuracy_closed_form() -> None:
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    pred = Predictions(probs, np.array([0, 1, 1, 0]))
    assert pred.accuracy == pytest.approx(50.0)
    np.testing.assert_array_equal(pred.correct, [True, True, False, False])


def test_predictions_are_read_only_copies_and_sliceable() -> None:
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    labels = np.array([0, 1, 1])
    pred = Predictions(probs, labels)
    probs[0, 0] = 0.0
    assert pred.probs[0, 0] == 0.9
    with pytest.raises(ValueError):
        pred.probs[0, 0] = 1.0
    head = pred[:2]
    assert isinstance(head, Predictions) and len(head) == 2
    np.testing.assert_array_equal(head.labels, [0, 1])


@pytest.mark.parametrize(
    ("probs", "labels", "match"),
    [
        (np.ones((3, 2)) / 2, np.array([0, 1]), "3 rows but there are 2 labels"),
        (np.ones(3), np.array([0, 1, 1]), "2-D"),
        (np.ones((2, 2)) / 2, np.array([0, 2]), r"\[0, 2\)"),
        (np.ones((2, 2)) / 2, np.array([-1, 0]), r"\[0, 2\)"),
        (np.array([[np.nan, 1.0]]), np.array([0]), "NaN"),
        (np.ones((2, 2)) / 2, np.array([0.0, 1.0]), "integers"),
    ],
)
def test_predictions_reject_bad_arrays(probs: np.ndarray, labels: np.ndarray, match: str) -> None:
    with pytest.raises(DataError, match=match):
        Predictions(probs, labels)


def test_predict_rejects_bad_inputs(model: TinyNet) -> None:
    images, labels = make_set(6)
    with pytest.raises(DataError, match="6 images but 5 labels"):
        predict(model, images, labels[:5], progress=False)
    with pytest.raises(DataError, match=r"\[N, C, H, W\]"):
        predict(model, images[0], labels[:1], progress=False)
    with pytest.raises(DataError, match="integer"):
        predict(model, images, labels.float(), progress=False)
    with pytest.raises(DataError, match="uint8"):
        predict(model, images.to(torch.int32), labels, progress=False)
    with pytest.raises(DataError, match=r"\[0, 4\)"):
        predict(model, images, -labels - 1, progress=False)  # the reference's marked labels
    with pytest.raises(ConfigError, match="batch_size"):
        predict(model, images, labels, batch_size=0, progress=False)
    with pytest.raises(ConfigError, match=r"model\.to"):
        predict(model, images, labels, device="meta", progress=False)


def test_model_returning_wrong_shape_is_reported() -> None:
    class Flat(nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return x.flatten(), x

    images, labels = make_set(3)
    with pytest.raises(DataError, match="logits"):
        predict(Flat(), images, labels, progress=False)
