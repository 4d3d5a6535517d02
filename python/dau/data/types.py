"""The in-memory dataset types: :class:`DatasetInfo`, :class:`ImageData`, :class:`Dataset`.

A dataset is held fully in memory: ``images`` is a ``torch.uint8`` tensor ``[N, C, H, W]``
(channels first, always 4-D; grayscale has ``C = 1``) and ``labels`` is ``torch.int64 [N]``.
Nothing here normalises: models normalise inside with :attr:`DatasetInfo.mean` and
:attr:`DatasetInfo.std`. Imports nothing of dau but :mod:`dau.errors`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dau.errors import DataError

__all__ = ["Dataset", "DatasetInfo", "ImageData", "as_index", "channel_stats", "describe"]


@dataclass(frozen=True)
class DatasetInfo:
    """What a model and the augmentation need to know about a dataset.

    ``mean``/``std`` are per channel on the [0, 1] scale. ``hflip`` says whether a
    horizontal flip keeps an image's class (not for digits); ``crop_padding`` is the zero
    padding of the random-crop augmentation (0 disables it). ``source`` is where the data
    was read from (a directory, or a description for generated data); ``spec`` the string
    :func:`~dau.data.load_dataset` loads it from again (set by the registry).
    """

    name: str
    num_classes: int
    channels: int
    height: int
    width: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]
    hflip: bool
    crop_padding: int
    source: str
    spec: str | None = None  # the dataset spec that loads it again (None: built in Python)


@dataclass(frozen=True, eq=False)
class ImageData:
    """Images ``uint8 [N, C, H, W]`` and their labels ``int64 [N]``, on one device."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        images, labels = self.images, self.labels
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
            raise DataError(
                "ImageData: images must be a torch.uint8 tensor [N, C, H, W]; got "
                f"{describe(images)}"
            )
        if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64 or labels.dim() != 1:
            raise DataError(
                f"ImageData: labels must be a torch.int64 tensor [N]; got {describe(labels)}"
            )
        if images.shape[0] != labels.shape[0]:
            raise DataError(
                f"ImageData: {images.shape[0]} images but {labels.shape[0]} labels; "
                "they must be equal"
            )
        if images.device != labels.device:
            raise DataError(
                f"ImageData: images on {images.device} but labels on {labels.device}"
            )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def shape(self) -> tuple[int, ...]:
        """``(C, H, W)`` of every image."""
        return tuple(self.images.shape[1:])

    def subset(self, indices: torch.Tensor | np.ndarray | Sequence[int]) -> ImageData:
        """The samples at ``indices`` (positions, in that order; repeats allowed).

        A boolean mask of length ``len(self)`` selects the samples where it is true.
        """
        idx = as_index(indices, len(self), self.images.device, what="subset indices")
        return ImageData(self.images.index_select(0, idx), self.labels.index_select(0, idx))


@dataclass(frozen=True, eq=False)
class Dataset:
    """A dataset: its :class:`DatasetInfo` and its train and test parts, each an
    :class:`ImageData` in memory or a :class:`~dau.data.streaming.StreamData` read from disk."""

    info: DatasetInfo
    train: Any  # ImageData | StreamData
    test: Any

    def __post_init__(self) -> None:
        want = (self.info.channels, self.info.height, self.info.width)
        for part in ("train", "test"):
            shape = tuple(getattr(self, part).shape)
            if shape != want:
                raise DataError(
                    f"dataset {self.info.name!r}: {part} images have shape {shape}, "
                    f"expected {want} (C, H, W)"
                )

    @property
    def streamed(self) -> bool:
        """Whether the parts are read from disk batch by batch (not held in memory)."""
        return not isinstance(self.train, ImageData)


def describe(x: object) -> str:
    if isinstance(x, torch.Tensor):
        return f"{x.dtype} tensor of shape {tuple(x.shape)}"
    if isinstance(x, np.ndarray):
        return f"numpy {x.dtype} array of shape {x.shape}"
    return type(x).__name__


def as_index(
    indices: torch.Tensor | np.ndarray | Sequence[int], length: int, device: torch.device,
    *, what: str,
) -> torch.Tensor:
    """Positions as an int64 tensor on ``device``, checked to lie in ``[0, length)``."""
    if isinstance(indices, torch.Tensor):
        idx = indices
    else:
        arr = np.asarray(indices)
        if arr.size == 0:
            arr = arr.astype(np.int64)
        idx = torch.from_numpy(np.ascontiguousarray(arr))
    if idx.dim() != 1:
        raise DataError(f"{what} must be 1-D; got {describe(idx)}")
    if idx.dtype == torch.bool:
        if idx.shape[0] != length:
            raise DataError(
                f"{what}: a boolean mask must have length {length}; got {idx.shape[0]}"
            )
        idx = torch.nonzero(idx, as_tuple=False).flatten()
    elif idx.dtype.is_floating_point or idx.dtype.is_complex:
        raise DataError(f"{what} must be integers; got {describe(idx)}")
    idx = idx.to(device=device, dtype=torch.int64)
    if idx.numel():
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= length:
            raise DataError(
                f"{what} must lie in [0, {length}); got values from {lo} to {hi}"
            )
    return idx


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images on the [0, 1] scale, rounded to 4 places."""
    x = images.to(torch.float64).div_(255.0).transpose(0, 1).reshape(images.shape[1], -1)
    mean = tuple(round(float(v), 4) for v in x.mean(dim=1))
    std = tuple(round(max(float(v), 1e-4), 4) for v in x.std(dim=1, correction=0))
    return mean, std
