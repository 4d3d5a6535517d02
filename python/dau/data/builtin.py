"""The generated datasets: ``synthetic`` and scikit-learn's ``digits``.

``digits``
    scikit-learn's bundled 8×8 digits (1 797 images, values 0–16 scaled to 0–255), split
    per class into train/test by a seeded legacy ``numpy.random.RandomState`` (stable across
    NumPy versions); options ``test_fraction=0.2``, ``seed=0``.
``synthetic``
    Seeded class-prototype images plus noise, any shape; options ``num_classes=10``,
    ``channels=3``, ``size=32``, ``train=2000``, ``test=500``, ``seed=0``. Also written as
    ``"synthetic:classes=10,channels=1,size=16,train=500,test=100,seed=3"``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dau.data.registry import int_option, register_dataset
from dau.data.types import Dataset, DatasetInfo, ImageData, channel_stats
from dau.errors import ConfigError

__all__ = ["stratified_split", "synthetic_arrays"]

# ---------------------------------------------------------------------------------------------
# Synthetic data (also used by dau.data.formats)
# ---------------------------------------------------------------------------------------------


def synthetic_arrays(
    *, num_classes: int, channels: int, size: int, n_train: int, n_test: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seeded images with learnable class structure: ``(x_train, y_train, x_test, y_test)``.

    Each class has a smooth random prototype (a 4×4 per-channel grid of normal values,
    bilinearly upsampled to ``size``×``size``). A sample is its class prototype with a random
    contrast, circularly shifted by up to ``size // 8`` pixels, plus a brightness offset and
    pixel noise, on a grey background; images are ``uint8 [N, C, size, size]`` and labels
    ``int64 [N]``, balanced over the classes in random order. The prototypes, the training
    set and the test set come from independent streams spawned from ``seed`` (NumPy's
    ``SeedSequence``/PCG64), so the test set does not depend on ``n_train``.
    """
    seq = np.random.SeedSequence(seed)
    proto_rng, train_rng, test_rng = (np.random.default_rng(s) for s in seq.spawn(3))
    grid = min(4, size)
    coarse = proto_rng.standard_normal((num_classes, channels, grid, grid))
    protos = torch.nn.functional.interpolate(
        torch.from_numpy(coarse), size=(size, size), mode="bilinear", align_corners=False
    ).numpy()
    protos -= protos.mean(axis=(1, 2, 3), keepdims=True)
    protos /= protos.std(axis=(1, 2, 3), keepdims=True) + 1e-8

    def sample(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.permutation(np.arange(n, dtype=np.int64) % num_classes)
        shift = size // 8
        dy = rng.integers(-shift, shift + 1, size=n)
        dx = rng.integers(-shift, shift + 1, size=n)
        contrast = rng.uniform(0.75, 1.25, size=(n, 1, 1, 1))
        brightness = rng.normal(0.0, 12.0, size=(n, 1, 1, 1))
        noise = rng.normal(0.0, 40.0, size=(n, channels, size, size))
        rows = (np.arange(size)[None, :] - dy[:, None]) % size  # [n, size]
        cols = (np.arange(size)[None, :] - dx[:, None]) % size
        chosen = protos[labels]  # [n, C, H, W]
        shifted = chosen[np.arange(n)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
        shifted = shifted.transpose(0, 3, 1, 2)  # advanced indexing put C last
        x = 128.0 + 50.0 * contrast * shifted + brightness + noise
        return np.clip(np.rint(x), 0, 255).astype(np.uint8), labels

    x_train, y_train = sample(train_rng, n_train)
    x_test, y_test = sample(test_rng, n_test)
    return x_train, y_train, x_test, y_test


@register_dataset("synthetic")
def _load_synthetic(
    *,
    data_dir: Path | None,
    download: bool | None,
    num_classes: int = 10,
    channels: int = 3,
    size: int = 32,
    train: int = 2000,
    test: int = 500,
    seed: int = 0,
) -> Dataset:
    name = "synthetic"
    num_classes = int_option(name, "num_classes", num_classes, 2, 10_000)
    channels = int_option(name, "channels", channels, 1, 64)
    size = int_option(name, "size", size, 2, 1024)
    train = int_option(name, "train", train, 1)
    test = int_option(name, "test", test, 0)
    seed = int_option(name, "seed", seed, 0, 2**63 - 1)
    x_tr, y_tr, x_te, y_te = synthetic_arrays(
        num_classes=num_classes, channels=channels, size=size, n_train=train, n_test=test,
        seed=seed,
    )
    train_data = ImageData(torch.from_numpy(x_tr), torch.from_numpy(y_tr))
    mean, std = channel_stats(train_data.images)
    info = DatasetInfo(
        name=name, num_classes=num_classes, channels=channels, height=size, width=size,
        mean=mean, std=std, class_names=tuple(f"class_{i}" for i in range(num_classes)),
        hflip=False, crop_padding=size // 8,
        source=(f"synthetic(num_classes={num_classes}, channels={channels}, size={size}, "
                f"train={train}, test={test}, seed={seed})"),
    )
    return Dataset(info, train_data, ImageData(torch.from_numpy(x_te), torch.from_numpy(y_te)))


# ---------------------------------------------------------------------------------------------
# scikit-learn digits
# ---------------------------------------------------------------------------------------------


def stratified_split(
    labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Ascending train and test positions, ``round(test_fraction * count)`` of each class in test.

    Classes are visited in ascending order with one ``numpy.random.RandomState(seed)``; the
    test positions of a class are the first ones of ``rng.permutation(count)``.
    """
    rng = np.random.RandomState(seed)
    test_parts = []
    for cls in np.unique(labels):
        where = np.flatnonzero(labels == cls)
        k = round(test_fraction * len(where))
        test_parts.append(where[rng.permutation(len(where))[:k]])
    test = np.sort(np.concatenate(test_parts)) if test_parts else np.zeros(0, np.int64)
    mask = np.ones(len(labels), dtype=bool)
    mask[test] = False
    return np.flatnonzero(mask), test


@register_dataset("digits")
def _load_digits(
    *, data_dir: Path | None, download: bool | None, test_fraction: float = 0.2, seed: int = 0
) -> Dataset:
    from sklearn.datasets import load_digits  # here, not at the top: scikit-learn is slow to import

    name = "digits"
    if (not isinstance(test_fraction, (int, float)) or isinstance(test_fraction, bool)
            or not 0.0 < float(test_fraction) < 1.0):
        raise ConfigError(
            f"dataset 'digits': option 'test_fraction' must be a number in (0, 1); "
            f"got {test_fraction!r}"
        )
    seed = int_option(name, "seed", seed, 0, 2**32 - 1)
    bunch = load_digits()
    values = np.asarray(bunch.images, dtype=np.float64)  # [1797, 8, 8], 0..16
    images = np.clip(np.rint(values * (255.0 / 16.0)), 0, 255).astype(np.uint8)[:, None]
    labels = np.asarray(bunch.target, dtype=np.int64)
    train_idx, test_idx = stratified_split(labels, float(test_fraction), seed)
    train = ImageData(torch.from_numpy(images[train_idx]), torch.from_numpy(labels[train_idx]))
    test = ImageData(torch.from_numpy(images[test_idx]), torch.from_numpy(labels[test_idx]))
    mean, std = channel_stats(train.images)
    info = DatasetInfo(
        name=name, num_classes=10, channels=1, height=8, width=8, mean=mean, std=std,
        class_names=tuple(str(i) for i in range(10)), hflip=False, crop_padding=1,
        source=f"sklearn.datasets.load_digits (test_fraction={test_fraction}, seed={seed})",
    )
    return Dataset(info, train, test)
